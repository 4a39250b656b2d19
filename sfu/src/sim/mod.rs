//! A deterministic virtual-time harness: client peers and a network, no sockets, no clock.
//!
//! # Layout
//! - [`net`]: the virtual network (links with a bottleneck rate, a drop-tail queue, delay and
//!   seeded random loss) between fake addresses.
//! - `vp8`: synthetic VP8 frames (RFC 7741 descriptors, keyframe headers with dimensions) and a
//!   per-layer frame generator.
//!
//! Time is `epoch + offset`: [`Clock`] reads the real clock once, for the epoch, and only ever
//! moves forward when the driver jumps to the next deadline.

pub mod net;
pub mod vp8;

use std::time::{Duration, Instant};

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
