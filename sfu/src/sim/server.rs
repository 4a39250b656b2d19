//! The server's media worker ([`WorkerCore`], the production code) as a node of the virtual
//! network, with the calls a signaling session makes on it: join, publish offer, routing,
//! subscribe answers. Replies come back at once (the core answers a command while handling
//! it); events queue per participant, as the sessions' channels do.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::BytesMut;
use tokio::sync::{mpsc, oneshot};

use super::Node;
use crate::api::{Command, MediaEvent, ParticipantId, SfuError, Subscription, TrackSource};
use crate::metrics::SfuMetrics;
use crate::udp::{Flushed, SendQueue};
use crate::worker::{Output, WorkerCore};

/// What the core sent, in order, for the network to take.
#[derive(Default, Clone)]
struct Outbox(Arc<Mutex<VecDeque<(SocketAddr, BytesMut)>>>);

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(SocketAddr, BytesMut)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Output for Outbox {
    fn send_udp(&mut self, queue: &mut SendQueue) -> Flushed {
        let mut out = self.lock();
        let mut f = Flushed::default();
        for (to, d) in queue.take() {
            f.sent += 1;
            f.bytes += d.len() as u64;
            out.push_back((to, d));
        }
        f
    }

    // No ICE-TCP on the virtual network (yet): every stream is refused.
    fn tcp_adopt(&mut self, _: usize, _: mio::net::TcpStream) -> std::io::Result<()> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    fn tcp_read(&mut self, _: usize, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    fn tcp_write(&mut self, _: usize, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    fn tcp_unsent(&self, _: usize) -> usize {
        0
    }

    fn tcp_close(&mut self, _: usize) {}
}

/// A media server with one worker on the virtual network.
pub struct SimServer {
    pub core: WorkerCore,
    addr: SocketAddr,
    outbox: Outbox,
    events: HashMap<ParticipantId, mpsc::Receiver<MediaEvent>>,
    /// The registry the worker's metrics are in (for tests that read a counter).
    pub registry: prometheus::Registry,
}

impl SimServer {
    pub fn new(now: Instant, addr: SocketAddr) -> Self {
        let registry = prometheus::Registry::new();
        let metrics = SfuMetrics::new(&registry).expect("metrics register in a fresh registry");
        let outbox = Outbox::default();
        let core = WorkerCore::new(
            0,
            addr,
            None,
            metrics.for_worker(0),
            Box::new(outbox.clone()),
            now,
        )
        .expect("a worker core builds");
        Self {
            core,
            addr,
            outbox,
            events: HashMap::new(),
            registry,
        }
    }

    /// Runs one command and returns its reply (the core replies while handling it).
    fn call<T>(
        &mut self,
        now: Instant,
        make: impl FnOnce(oneshot::Sender<Result<T, SfuError>>) -> Command,
    ) -> Result<T, SfuError> {
        let (tx, mut rx) = oneshot::channel();
        self.core.handle_command(now, make(tx));
        self.core.process(now);
        rx.try_recv()
            .unwrap_or_else(|e| panic!("the core did not reply at once: {e}"))
    }

    pub fn join(&mut self, now: Instant, who: ParticipantId, room: &str) {
        let (events, rx) = mpsc::channel(256);
        self.events.insert(who, rx);
        let room = room.to_owned();
        self.call(now, |reply| Command::Join {
            room,
            participant: who,
            events,
            reply,
        })
        .expect("join");
    }

    /// A publish offer (sources declared by kind); returns the answer's SDP.
    pub fn publish(&mut self, now: Instant, who: ParticipantId, sdp: &str) -> String {
        let sdp = sdp.to_owned();
        let sources: Vec<(String, TrackSource)> = Vec::new();
        self.call(now, |reply| Command::PublishOffer {
            participant: who,
            sdp,
            sources,
            reply,
        })
        .expect("publish answer")
    }

    /// Routing: `who` receives exactly `subscriptions`.
    pub fn set_receives(&mut self, now: Instant, who: ParticipantId, subs: Vec<Subscription>) {
        self.core.handle_command(
            now,
            Command::SetReceives {
                participant: who,
                subscriptions: subs,
            },
        );
        self.core.process(now);
    }

    pub fn subscribe_answer(
        &mut self,
        now: Instant,
        who: ParticipantId,
        revision: u64,
        sdp: String,
    ) -> Result<(), SfuError> {
        self.call(now, |reply| Command::SubscribeAnswer {
            participant: who,
            revision,
            sdp,
            reply,
        })
    }

    pub fn leave(&mut self, now: Instant, who: ParticipantId) {
        self.core
            .handle_command(now, Command::Leave { participant: who });
        self.core.process(now);
    }

    /// The events queued for `who` since the last call.
    pub fn events(&mut self, who: ParticipantId) -> Vec<MediaEvent> {
        let mut out = Vec::new();
        if let Some(rx) = self.events.get_mut(&who) {
            while let Ok(e) = rx.try_recv() {
                out.push(e);
            }
        }
        out
    }

    /// A counter or gauge of the worker's metrics by name and labels (summed over series).
    pub fn metric(&mut self, name: &str) -> f64 {
        self.core.metrics_mut().flush();
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric().iter())
            .map(|m| m.get_counter().value() + m.get_gauge().value())
            .sum()
    }
}

impl Node for SimServer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: BytesMut) {
        self.core.handle_datagram(now, from, &bytes);
        self.core.process(now);
    }

    fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.outbox.lock().pop_front()
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.core.process(now);
    }
}
