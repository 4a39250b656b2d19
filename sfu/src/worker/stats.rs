//! Per-participant link statistics, gathered from `rtc`'s stats every few seconds: what a chair
//! needs to see at a glance (is that commune's link good?) and what an operator graphs.

use std::time::{Duration, Instant};

use rtc::statistics::StatsSelector;

use super::WorkerCore;
use crate::api::{MediaEvent, ParticipantId};

pub(super) const STATS_INTERVAL: Duration = Duration::from_secs(2);

impl WorkerCore {
    pub(super) fn collect_link_stats(&mut self, now: Instant) {
        let ids: Vec<ParticipantId> = self.participants.keys().copied().collect();
        for id in ids {
            let (publish, subscribe, (prev_rx, prev_lost)) = {
                let p = &self.participants[&id];
                (p.publish, p.subscribe, p.upstream)
            };
            // Downstream: the subscriber's receiver reports on what we send it (loss after
            // retransmissions), and its estimator (loss before them, and the estimate).
            let (rtt, down_loss) = match subscribe.and_then(|k| self.conns.get_mut(k)) {
                Some(conn) => {
                    if let Some(s) = conn.estimate.as_ref().map(|e| e.snapshot())
                        && s.feedback > 0
                    {
                        self.metrics.link_estimate.observe(s.target_bps);
                        let (reported, missing) = conn.allocation.loss_seen;
                        let d_reported = s.reported.saturating_sub(reported);
                        if d_reported > 0 {
                            let d_missing = s.missing.saturating_sub(missing);
                            self.metrics
                                .link_loss_before_nack
                                .observe(d_missing as f64 / d_reported as f64);
                        }
                        conn.allocation.loss_seen = (s.reported, s.missing);
                    }
                    if let Some(n) = &conn.nacks {
                        let requested = n.requested.load(std::sync::atomic::Ordering::Relaxed);
                        let refused = n.refused.load(std::sync::atomic::Ordering::Relaxed);
                        let (seen_requested, seen_refused) = conn.allocation.nacks_seen;
                        self.metrics.nacked_packets += requested.saturating_sub(seen_requested);
                        self.metrics.nack_refused += refused.saturating_sub(seen_refused);
                        conn.allocation.nacks_seen = (requested, refused);
                    }
                    self.metrics.link_loss.observe(conn.reported_loss);
                    (conn.rtt, std::mem::take(&mut conn.reported_loss))
                }
                None => (None, 0.0),
            };
            // Upstream: gaps in what the participant publishes, over this interval.
            let mut up_loss = 0.0;
            if let Some(conn) = publish.and_then(|k| self.conns.get_mut(k)) {
                let report = conn.pc.get_stats(now, StatsSelector::None);
                let (rx, lost) =
                    report
                        .inbound_rtp_streams()
                        .fold((0u64, 0i64), |(rx, lost), s| {
                            (
                                rx + s.received_rtp_stream_stats.packets_received,
                                lost + s.received_rtp_stream_stats.packets_lost,
                            )
                        });
                let d_rx = rx.saturating_sub(prev_rx) as f64;
                let d_lost = (lost - prev_lost).max(0) as f64;
                if d_rx + d_lost > 0.0 {
                    up_loss = d_lost / (d_rx + d_lost);
                }
                if let Some(p) = self.participants.get_mut(&id) {
                    p.upstream = (rx, lost);
                }
            }
            if publish.is_none() && subscribe.is_none() {
                continue;
            }
            let loss = up_loss.max(down_loss).clamp(0.0, 1.0);
            let over_tcp = [publish, subscribe]
                .into_iter()
                .flatten()
                .any(|k| self.conns.get(k).is_some_and(|c| c.over_tcp));
            if let Some(r) = rtt {
                self.metrics.link_rtt.observe(r);
            }
            self.notify(
                id,
                MediaEvent::LinkQuality {
                    rtt_ms: rtt.map(|r| (r * 1000.0).round() as u32),
                    loss: loss as f32,
                    over_tcp,
                },
            );
        }
    }
}
