//! A deterministic virtual-time harness: client peers and a network, no sockets, no clock.
//!
//! # Layout
//! - [`net`]: the virtual network (links with a bottleneck rate, a drop-tail queue, delay and
//!   seeded random loss) between fake addresses.
//! - [`vp8`]: synthetic VP8 frames (RFC 7741 descriptors, keyframe headers with dimensions) and
//!   a per-layer frame generator.
//! - [`peer`]: [`peer::SimPeer`], a client on `rtc` (publisher or subscriber), or a server-like
//!   ICE-lite peer for tests that need no server; [`publish`] is a publisher's media (Opus and
//!   VP8 simulcast, keyframes on request), [`record`] what a receiver saw.
//! - [`engine`]: a client's Chromium-like codecs, feedback and candidates.
//! - [`transport_numbers`]: the transport-wide sequence numbers a client receives.
//! - [`tcp`]: virtual TCP streams for ICE-TCP (RFC 6544, RFC 4571 framing): the server's
//!   passive candidate, a client's active one.
//! - [`Node`] and [`progress`]: anything with an address that takes datagrams and timeouts,
//!   and the loop that moves virtual time to the next deadline.
//!
//! Time is `epoch + offset`: [`Clock`] reads the real clock once, for the epoch, and only ever
//! moves forward when the driver jumps to the next deadline.

pub mod engine;
pub mod grid;
pub mod lines;
pub mod meeting;
pub mod net;
pub mod peer;
pub mod publish;
pub mod record;
pub mod server;
pub mod tcp;
pub mod transport_numbers;
pub mod vp8;

#[cfg(test)]
mod core_tests;
#[cfg(test)]
mod grid_tests;
#[cfg(test)]
mod icetcp_tests;
#[cfg(test)]
mod lines_tests;
#[cfg(test)]
mod meeting_tests;
#[cfg(test)]
mod relay_tests;
#[cfg(test)]
mod selftest;
#[cfg(test)]
mod write_path_tests;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use net::Net;

/// Virtual time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
    now: Instant,
}

impl Clock {
    pub fn new() -> Self {
        // The one real clock read: `Instant` has no other constructor.
        let epoch = Instant::now();
        Self { epoch, now: epoch }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Virtual time since the epoch.
    pub fn elapsed(&self) -> Duration {
        self.now - self.epoch
    }

    /// Moves to `to`; never backwards (a deadline already past runs now).
    pub fn advance_to(&mut self, to: Instant) {
        self.now = self.now.max(to);
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// A sans-I/O endpoint on the virtual network: a client peer, or the server's worker core.
pub trait Node {
    /// The address datagrams to this node are sent to.
    fn addr(&self) -> SocketAddr;
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: BytesMut);
    /// The next datagram to send: (destination, bytes).
    fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)>;
    fn poll_timeout(&mut self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
}

/// What a [`progress`] run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Times the clock moved.
    pub steps: u64,
    pub datagrams: u64,
    /// Datagrams for an address no node has (a test usually wants none).
    pub unroutable: u64,
}

/// A node that asks for a timeout at the same instant this many times in a row is spinning.
const SPIN_LIMIT: u32 = 10_000;

/// Runs the nodes and the network until `until`: flush every node's output into the network,
/// deliver what has arrived, run the timeouts that are due, then jump the clock to the next
/// deadline (a delivery or a node's timeout). No sleeping: virtual time moves only here.
pub fn progress(
    clock: &mut Clock,
    net: &mut Net,
    nodes: &mut [&mut dyn Node],
    until: Instant,
) -> Progress {
    let mut p = Progress::default();
    let mut spins = 0;
    loop {
        let now = clock.now();
        for n in nodes.iter_mut() {
            let from = n.addr();
            while let Some((to, bytes)) = n.poll_transmit() {
                net.send(now, from, to, bytes);
            }
        }
        let due = net.deliver_due(now);
        let mut worked = !due.is_empty();
        for (from, to, bytes) in due {
            p.datagrams += 1;
            match nodes.iter_mut().find(|n| n.addr() == to) {
                Some(n) => n.handle_datagram(now, from, bytes),
                None => p.unroutable += 1,
            }
        }
        for n in nodes.iter_mut() {
            if n.poll_timeout().is_some_and(|t| t <= now) {
                n.handle_timeout(now);
                worked = true;
            }
        }
        if worked {
            spins += 1;
            assert!(
                spins < SPIN_LIMIT,
                "a node keeps asking for a timeout at {now:?}"
            );
            continue;
        }
        let next = nodes
            .iter_mut()
            .filter_map(|n| n.poll_timeout())
            .chain(net.next_delivery())
            .min();
        match next {
            Some(t) if t <= until => {
                clock.advance_to(t);
                p.steps += 1;
                spins = 0;
            }
            _ => {
                clock.advance_to(until);
                return p;
            }
        }
    }
}
