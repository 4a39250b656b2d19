//! Coalescing of keyframe requests towards one publisher track.
//!
//! Every subscriber that joins, loses packets or switches layers asks for a keyframe; a join
//! storm of 300 points would otherwise make the publisher send 300 keyframes, each several times
//! a normal frame, on the uplink that can least afford it. At most one request per track leaves
//! per interval; requests inside the interval are remembered and sent when it ends.

use std::time::{Duration, Instant};

pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Default)]
pub struct KeyframeRequests {
    last_sent: Option<Instant>,
    pending: bool,
}

impl KeyframeRequests {
    /// A subscriber wants a keyframe. Returns true when a request should go to the publisher now.
    pub fn request(&mut self, now: Instant) -> bool {
        match self.last_sent {
            Some(at) if now.saturating_duration_since(at) < KEYFRAME_REQUEST_INTERVAL => {
                self.pending = true;
                false
            }
            _ => {
                self.last_sent = Some(now);
                self.pending = false;
                true
            }
        }
    }

    /// When a deferred request is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.pending, self.last_sent) {
            (true, Some(at)) => Some(at + KEYFRAME_REQUEST_INTERVAL),
            _ => None,
        }
    }

    /// Returns true when the deferred request should go now.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        match self.poll_timeout() {
            Some(due) if now >= due => {
                self.last_sent = Some(now);
                self.pending = false;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_of_requests_sends_one_per_interval() {
        let t0 = Instant::now();
        let mut k = KeyframeRequests::default();
        assert!(k.request(t0));
        let mut sent = 1;
        // 300 requests over one second, every 3.3 ms.
        for i in 1..300u64 {
            let now = t0 + Duration::from_micros(i * 3_333);
            if k.handle_timeout(now) {
                sent += 1;
            }
            if k.request(now) {
                sent += 1;
            }
        }
        let end = t0 + Duration::from_millis(1_500);
        if k.handle_timeout(end) {
            sent += 1;
        }
        assert!((2..=3).contains(&sent), "sent {sent}");
        assert_eq!(k.poll_timeout(), None, "nothing left pending");
    }

    #[test]
    fn a_request_inside_the_interval_is_deferred_not_lost() {
        let t0 = Instant::now();
        let mut k = KeyframeRequests::default();
        assert!(k.request(t0));
        assert!(!k.request(t0 + Duration::from_millis(100)));
        assert_eq!(k.poll_timeout(), Some(t0 + KEYFRAME_REQUEST_INTERVAL));
        assert!(!k.handle_timeout(t0 + Duration::from_millis(499)));
        assert!(k.handle_timeout(t0 + Duration::from_millis(500)));
        assert_eq!(k.poll_timeout(), None);
        // After the interval a new request goes at once.
        assert!(k.request(t0 + Duration::from_millis(1_001)));
    }
}
