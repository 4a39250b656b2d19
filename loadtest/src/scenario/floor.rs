//! Town hall with a floor holder: the chair grants the floor to one point over the real
//! protocol (`grant_floor`), then the run checks who receives that point's camera — every other
//! point, at the best layer its link allows — and that the chair keeps the others as thumbnails
//! (the lowest layer).

use std::time::{Duration, Instant};

use signaling::protocol::{ClientMessage, PROTOCOL_VERSION};

use super::measure::{LayerView, Tracked};
use super::report::FloorReport;
use crate::layers::kbps;
use crate::point::{Point, PointStats};
use crate::stats::Summary;

/// The grant as it happened.
#[derive(Debug, Clone)]
pub(super) struct FloorRun {
    /// Point code and participant id of the holder.
    pub code: String,
    pub participant: String,
    pub sent_at: Instant,
    /// When the chair's `room_state` named the holder.
    pub confirmed_at: Option<Instant>,
    /// Window-start bytes of the holder's camera at each point (by tracked index).
    pub base_bytes: Vec<u64>,
}

/// Sends `grant_floor` from the chair and waits (up to `timeout`) for the chair's `room_state`
/// to name the holder, then for every other point to receive a keyframe of its camera.
pub(super) async fn grant(
    chair: &Point,
    code: String,
    participant: String,
    tracked: &[Tracked],
    timeout: Duration,
) -> FloorRun {
    let sent_at = Instant::now();
    chair
        .send(ClientMessage::GrantFloor {
            v: PROTOCOL_VERSION,
            point: code.clone(),
        })
        .await;
    let deadline = sent_at + timeout;
    let mut run = FloorRun {
        code,
        participant,
        sent_at,
        confirmed_at: None,
        base_bytes: Vec::new(),
    };
    // Polled: the point's signaling task owns the socket; 50 ms bounds the latency error.
    while Instant::now() < deadline {
        if chair.snapshot().floor.as_deref() == Some(run.code.as_str()) {
            run.confirmed_at = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if run.confirmed_at.is_none() {
        return run;
    }
    while Instant::now() < deadline {
        let waiting = tracked
            .iter()
            .filter_map(|t| t.point.as_ref())
            .filter(|p| p.participant != run.participant)
            .filter(|p| holder_keyframe_at(&p.snapshot(), &run.participant).is_none())
            .count();
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    run
}

impl FloorRun {
    /// Remembers what each point had received of the holder's camera when the window starts.
    pub fn start_window(&mut self, tracked: &[Tracked]) {
        self.base_bytes = tracked
            .iter()
            .map(|t| {
                t.point.as_ref().map_or(0, |p| {
                    holder_streams(&p.snapshot(), &self.participant)
                        .map(|s| s.bytes)
                        .sum()
                })
            })
            .collect();
    }

    pub fn report(
        &self,
        tracked: &[Tracked],
        chair: &PointStats,
        view: &LayerView,
        window_s: f64,
    ) -> FloorReport {
        let mut r = FloorReport {
            holder: self.code.clone(),
            granted: self.confirmed_at.is_some(),
            grant_latency_s: self
                .confirmed_at
                .map(|c| c.saturating_duration_since(self.sent_at).as_secs_f64()),
            points_per_layer: vec![0; view.ladder.len()],
            ..Default::default()
        };
        let (mut first, mut rates) = (Vec::new(), Vec::new());
        for (i, t) in tracked.iter().enumerate() {
            let Some((snap, _)) = &t.last else { continue };
            let is_holder = t
                .point
                .as_ref()
                .is_some_and(|p| p.participant == self.participant);
            if is_holder || t.left_early {
                continue;
            }
            r.points_expected += 1;
            let Some(at) = holder_keyframe_at(snap, &self.participant) else {
                continue;
            };
            r.points_receiving += 1;
            first.push(at.saturating_duration_since(self.sent_at).as_secs_f64());
            let bytes: u64 = holder_streams(snap, &self.participant)
                .map(|s| s.bytes)
                .sum();
            let base = self.base_bytes.get(i).copied().unwrap_or(0);
            rates.push(kbps(bytes.saturating_sub(base), window_s));
            if let Some(l) = holder_streams(snap, &self.participant)
                .filter_map(|s| s.layers.current())
                .max()
                && let Some(n) = r.points_per_layer.get_mut(l)
            {
                *n += 1;
            }
        }
        r.first_keyframe_s = Summary::of(&first);
        r.kbps = Summary::of(&rates);
        for st in chair.streams.values() {
            if st.kind.as_deref() != Some("video") {
                continue;
            }
            if st.stream_id == self.participant {
                r.chair_holder_layer = st.layers.current().map(|l| view.ladder.label(l));
            } else {
                r.chair_thumbnails += 1;
                r.chair_thumbnails_on_lowest += usize::from(st.layers.current() == Some(0));
            }
        }
        r
    }
}

fn holder_streams<'a>(
    s: &'a PointStats,
    holder: &'a str,
) -> impl Iterator<Item = &'a crate::point::StreamStats> + 'a {
    s.streams
        .values()
        .filter(move |st| st.kind.as_deref() == Some("video") && st.stream_id == holder)
}

/// When the first keyframe of the holder's camera reached this point.
fn holder_keyframe_at(s: &PointStats, holder: &str) -> Option<Instant> {
    holder_streams(s, holder)
        .filter_map(|st| st.first_keyframe_at)
        .min()
}
