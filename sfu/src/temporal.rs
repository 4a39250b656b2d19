//! Which temporal layers of its simulcast layer a downtrack forwards.
//!
//! Chromium's VP8 simulcast sends three temporal layers in each simulcast layer (TID 0 at a
//! quarter of the frame rate, TID 1 another quarter, TID 2 the other half; about 40 / 20 / 40 %
//! of the bitrate). Dropping the top ones is the cheapest step down there is: immediate, no
//! keyframe, the picture keeps its size at half or a quarter of the frame rate. So the allocator
//! sheds temporal layers before it steps down a simulcast layer, and uses them as finer rungs
//! (`allocator::temporal_caps`); this filter applies its cap to the packets:
//! - a lower cap applies at the next frame start (a frame is never cut in half);
//! - a higher cap applies one layer at a time, from a frame of the added layer marked layer sync
//!   (Y: it depends on base-layer frames only), or from a keyframe: a frame of a layer we did
//!   not forward may reference another frame of that layer, which the subscriber never got.
//!
//! The packets dropped take no sequence number (`forwarder::Forwarder::skip`) and their
//! pictures no PictureID (`vp8::Munger::skip_picture`), so the subscriber sees no loss.

/// Every temporal layer.
pub const ALL: u8 = u8::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemporalFilter {
    /// The cap the allocator wants.
    target: u8,
    /// The cap in force.
    applied: u8,
}

impl Default for TemporalFilter {
    fn default() -> Self {
        Self {
            target: ALL,
            applied: ALL,
        }
    }
}

impl TemporalFilter {
    /// The highest temporal layer to forward from now on (`None`: all).
    pub fn set_target(&mut self, cap: Option<u8>) {
        self.target = cap.unwrap_or(ALL);
    }

    pub fn target(&self) -> Option<u8> {
        (self.target != ALL).then_some(self.target)
    }

    /// Whether a packet of temporal layer `tid` goes out. `frame_start`: the first packet of a
    /// frame; `layer_sync`: its Y bit; `keyframe`: it starts a keyframe.
    pub fn forward(
        &mut self,
        tid: u8,
        frame_start: bool,
        layer_sync: bool,
        keyframe: bool,
    ) -> bool {
        if frame_start {
            if keyframe || self.target < self.applied {
                self.applied = self.target;
            } else if self.target > self.applied && tid == self.applied + 1 && layer_sync {
                // One layer at a time: a frame of the layer above may reference this one's.
                self.applied = tid;
            }
        }
        tid <= self.applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chromium's three-layer pattern, one packet per frame: (tid, layer sync).
    const PATTERN: [(u8, bool); 8] = [
        (0, false),
        (2, true),
        (1, true),
        (2, false),
        (0, false),
        (2, true),
        (1, false),
        (2, false),
    ];

    fn run(f: &mut TemporalFilter, frames: usize) -> Vec<u8> {
        (0..frames)
            .map(|i| PATTERN[i % 8])
            .filter(|&(tid, sync)| f.forward(tid, true, sync, false))
            .map(|(tid, _)| tid)
            .collect()
    }

    #[test]
    fn a_lower_cap_drops_the_top_layer_at_the_next_frame() {
        let mut f = TemporalFilter::default();
        assert_eq!(run(&mut f, 4), vec![0, 2, 1, 2]);
        f.set_target(Some(1));
        assert_eq!(run(&mut f, 8), vec![0, 1, 0, 1]);
        f.set_target(Some(0));
        assert_eq!(run(&mut f, 8), vec![0, 0]);
    }

    #[test]
    fn a_frame_is_never_cut_and_a_raise_waits_for_layer_sync() {
        let mut f = TemporalFilter::default();
        f.set_target(Some(0));
        assert!(f.forward(0, true, false, false));
        assert!(!f.forward(2, true, true, false));
        // Raised in the middle of a dropped frame: its later packets stay dropped.
        f.set_target(None);
        assert!(!f.forward(2, false, false, false));
        // TL1 without layer sync cannot be added, nor TL2 before TL1; synced frames can, one
        // layer at a time.
        assert!(!f.forward(1, true, false, false));
        assert!(f.forward(0, true, false, false));
        assert!(!f.forward(2, true, true, false), "TL2 before TL1");
        assert!(f.forward(1, true, true, false), "TL1 marked sync");
        assert!(!f.forward(2, true, false, false));
        assert!(f.forward(2, true, true, false), "TL2 marked sync");
        assert!(f.forward(1, true, false, false));
        assert!(f.forward(2, true, false, false));
        assert_eq!(f.target(), None);
    }

    #[test]
    fn dropped_temporal_layers_leave_no_hole_in_sequence_numbers_or_picture_ids() {
        use crate::forwarder::Forwarder;
        use crate::vp8::{Munger, Rewrites, parse};
        use bytes::Bytes;
        let t0 = std::time::Instant::now();
        let (mut fwd, mut munger, mut rw) = (
            Forwarder::new(true, 90_000, 500, 0),
            Munger::default(),
            Rewrites::default(),
        );
        let mut filter = TemporalFilter::default();
        filter.set_target(Some(1));
        let mut sent = Vec::new();
        let mut seq = 1000u16;
        // 16 frames of two packets each, Chromium's 0, 2, 1, 2 pattern; frame 0 a keyframe.
        for frame in 0..16u16 {
            let (tid, sync) = PATTERN[usize::from(frame % 8)];
            for part in 0..2u8 {
                let payload = Bytes::from(vec![
                    if part == 0 { 0x90 } else { 0x80 },
                    0xE0,
                    0x80,
                    frame as u8 + 40,
                    (frame / 4) as u8,
                    tid << 6 | if sync { 0x20 } else { 0 },
                    if frame == 0 { 0x00 } else { 0x01 },
                ]);
                let d = parse(&payload).unwrap();
                let ts = u32::from(frame) * 4500;
                let keyframe = frame == 0 && part == 0;
                if filter.forward(tid, d.frame_start, d.layer_sync, keyframe) {
                    let r = fwd.forward(t0, 7, seq, ts, keyframe).unwrap();
                    let o = munger.offsets(&d, r.switched);
                    rw.clear();
                    let pid = parse(&rw.get(&payload, &d, o))
                        .unwrap()
                        .picture_id
                        .unwrap()
                        .0;
                    sent.push((r.seq, pid, tid));
                } else {
                    munger.skip_picture(&d);
                    assert_eq!(fwd.skip(7, seq, ts), None, "the newest: nothing to fill");
                }
                seq = seq.wrapping_add(1);
            }
        }
        assert!(sent.iter().all(|&(_, _, tid)| tid <= 1));
        assert_eq!(sent.len(), 16, "TID 2 is half the frames");
        for w in sent.windows(2) {
            assert_eq!(w[1].0, w[0].0.wrapping_add(1), "sequence numbers: {sent:?}");
            assert!(
                w[1].1 == w[0].1 || w[1].1 == w[0].1 + 1,
                "picture ids: {sent:?}"
            );
        }
    }

    #[test]
    fn a_keyframe_applies_any_cap_at_once() {
        let mut f = TemporalFilter::default();
        f.set_target(Some(0));
        assert!(f.forward(0, true, false, false));
        f.set_target(Some(2));
        assert!(f.forward(0, true, false, true));
        assert!(f.forward(2, true, false, false));
    }
}
