//! What one publisher packet means for one downtrack: ignore it, ask for a keyframe, skip it
//! (closing its number), or forward it with a rewrite. The per-downtrack half of the fan-out
//! (issue 12: behaviour on the nouns, as LiveKit's `Forwarder.GetTranslationParams`): pure
//! state transitions on the downtrack, so the worker's loop only builds and writes the packet,
//! and the rules are unit-tested without peers or sockets.

use std::time::Instant;

use super::track::DownTrack;
use crate::forwarder::{Drop, Rewrite};
use crate::vp8::Descriptor;

/// One packet of a published track, as each of its downtracks sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Incoming<'a> {
    /// The simulcast layer it came on.
    pub rank: u8,
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    /// Where a downtrack may start or change layer: any audio packet, a video keyframe's start.
    pub switch_point: bool,
    pub keyframe_start: bool,
    pub vp8: Option<&'a Descriptor>,
    /// It carries redundant audio (RFC 2198) from a RED publisher.
    pub red: bool,
}

/// What [`DownTrack::decide`] says of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing for this subscriber now: another layer, paused, not bound yet, a late packet,
    /// or a connection not up (its number closed over, nothing owed).
    Ignore,
    /// Not forwarded: the switch or start it waits for needs a keyframe from the publisher.
    WantsKeyframe,
    /// Skipped before it was numbered (a temporal layer above the cap, a RED packet without a
    /// primary for a subscriber without RED); a number reserved earlier may be owed as padding.
    Skip { fill: Option<Rewrite> },
    /// Forwarded with this rewrite. `switched_from`: this packet moved the downtrack onto its
    /// layer, from this one (`None`: it started).
    Forward {
        rewrite: Rewrite,
        switched_from: Option<Option<u8>>,
    },
}

impl DownTrack {
    /// Decides for `p`. `connected`: the subscriber's connection is up. `red_primary_missing`
    /// is asked only for a RED packet to a subscriber without RED (the caller computes the
    /// primary once per packet).
    pub(crate) fn decide(
        &mut self,
        now: Instant,
        p: &Incoming<'_>,
        connected: bool,
        red_primary_missing: impl FnOnce() -> bool,
    ) -> Decision {
        let Some(bound) = self.bound else {
            return Decision::Ignore;
        };
        // Not routed to this subscriber now, or paused for its link.
        if !self.active || self.target.is_none() {
            return Decision::Ignore;
        }
        // Another layer, unless it is the one this downtrack is switching to and this is where
        // that layer's keyframe starts.
        let switching = self.current != Some(p.rank);
        if switching {
            if self.target != Some(p.rank) {
                return Decision::Ignore;
            }
            if !p.switch_point {
                return Decision::WantsKeyframe;
            }
        }
        if !connected {
            self.forwarder.skip(p.ssrc, p.seq, p.ts);
            return Decision::Ignore;
        }
        // A RED packet without a usable primary has nothing for a subscriber without RED:
        // skipped before it is numbered, so the subscriber sees no sequence hole.
        if p.red && bound.red_payload_type.is_none() && red_primary_missing() {
            return Decision::Skip {
                fill: self.forwarder.skip(p.ssrc, p.seq, p.ts),
            };
        }
        // A temporal layer above the downtrack's cap: dropped before it is numbered, its
        // picture taking no PictureID either.
        if let Some(desc) = p.vp8
            && let Some(tid) = desc.tid
            && !self
                .temporal
                .forward(tid, desc.frame_start, desc.layer_sync, p.keyframe_start)
        {
            self.vp8.skip_picture(desc);
            return Decision::Skip {
                fill: self.forwarder.skip(p.ssrc, p.seq, p.ts),
            };
        }
        match self
            .forwarder
            .forward(now, p.ssrc, p.seq, p.ts, p.keyframe_start)
        {
            Ok(rewrite) => {
                let switched_from = switching.then_some(self.current);
                self.current = Some(p.rank);
                Decision::Forward {
                    rewrite,
                    switched_from,
                }
            }
            Err(Drop::AwaitingKeyframe) => Decision::WantsKeyframe,
            Err(Drop::StaleSource | Drop::TooLate) => Decision::Ignore,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ParticipantId;
    use crate::forwarder::Forwarder;
    use crate::worker::track::Bound;

    fn video_downtrack(current: Option<u8>, target: Option<u8>) -> DownTrack {
        DownTrack {
            active: true,
            paused_at: None,
            subscriber: ParticipantId(2),
            conn: 0,
            sender_id: Default::default(),
            transceiver: Default::default(),
            ssrc: 7,
            offered_in: Some(1),
            bound: Some(Bound {
                payload_type: 96,
                red_payload_type: None,
                audio_level_id: None,
            }),
            forwarder: Forwarder::new(true, 90_000, 1000, 5000),
            vp8: Default::default(),
            max_rank: 2,
            priority: 0,
            current,
            frame_open: false,
            target,
            floor: Default::default(),
            temporal: Default::default(),
            pinned: None,
        }
    }

    fn packet(rank: u8, seq: u16, keyframe: bool) -> Incoming<'static> {
        Incoming {
            rank,
            ssrc: 100 + u32::from(rank),
            seq,
            ts: u32::from(seq) * 3000,
            switch_point: keyframe,
            keyframe_start: keyframe,
            vp8: None,
            red: false,
        }
    }

    fn forwarded_seq(d: Decision) -> Option<u16> {
        match d {
            Decision::Forward { rewrite, .. } => Some(rewrite.seq),
            _ => None,
        }
    }

    #[test]
    fn a_switch_waits_for_the_target_layers_keyframe_and_numbering_continues() {
        let now = Instant::now();
        let mut d = video_downtrack(None, Some(0));
        // Starting: a delta frame asks for a keyframe; the keyframe starts it.
        assert_eq!(
            d.decide(now, &packet(0, 10, false), true, || false),
            Decision::WantsKeyframe
        );
        let first = d.decide(now, &packet(0, 11, true), true, || false);
        assert!(matches!(
            first,
            Decision::Forward {
                switched_from: Some(None),
                ..
            }
        ));
        let a = forwarded_seq(first).unwrap();
        assert_eq!(
            forwarded_seq(d.decide(now, &packet(0, 12, false), true, || false)),
            Some(a.wrapping_add(1))
        );
        // The allocator picks layer 1: layer 0 flows until layer 1's keyframe, other layers
        // are ignored, and a delta frame of layer 1 asks for its keyframe.
        d.target = Some(1);
        assert_eq!(
            d.decide(now, &packet(2, 50, true), true, || false),
            Decision::Ignore
        );
        assert_eq!(
            d.decide(now, &packet(1, 30, false), true, || false),
            Decision::WantsKeyframe
        );
        assert_eq!(
            forwarded_seq(d.decide(now, &packet(0, 13, false), true, || false)),
            Some(a.wrapping_add(2))
        );
        let switched = d.decide(now, &packet(1, 31, true), true, || false);
        assert!(matches!(
            switched,
            Decision::Forward {
                switched_from: Some(Some(0)),
                ..
            }
        ));
        assert_eq!(
            forwarded_seq(switched),
            Some(a.wrapping_add(3)),
            "no gap at the switch"
        );
        assert_eq!(d.current, Some(1));
        // The old layer's late packets are not forwarded any more.
        assert_eq!(
            d.decide(now, &packet(0, 14, false), true, || false),
            Decision::Ignore
        );
    }

    #[test]
    fn paused_unbound_or_unconnected_downtracks_forward_nothing() {
        let now = Instant::now();
        let mut paused = video_downtrack(Some(0), None);
        assert_eq!(
            paused.decide(now, &packet(0, 1, true), true, || false),
            Decision::Ignore
        );
        let mut unbound = video_downtrack(None, Some(0));
        unbound.bound = None;
        assert_eq!(
            unbound.decide(now, &packet(0, 1, true), true, || false),
            Decision::Ignore
        );
        let mut inactive = video_downtrack(None, Some(0));
        inactive.active = false;
        assert_eq!(
            inactive.decide(now, &packet(0, 1, true), true, || false),
            Decision::Ignore
        );
        // Not connected: nothing goes out, and the packet's number is closed over, so the
        // first packet once connected follows without a hole.
        let mut d = video_downtrack(None, Some(0));
        let a = forwarded_seq(d.decide(now, &packet(0, 1, true), true, || false)).unwrap();
        assert_eq!(
            d.decide(now, &packet(0, 2, false), false, || false),
            Decision::Ignore
        );
        assert_eq!(
            forwarded_seq(d.decide(now, &packet(0, 3, false), true, || false)),
            Some(a.wrapping_add(1))
        );
    }

    #[test]
    fn a_red_packet_without_a_primary_is_skipped_for_a_subscriber_without_red_only() {
        let now = Instant::now();
        let red = |seq| Incoming {
            red: true,
            vp8: None,
            ..packet(0, seq, true)
        };
        let mut plain = video_downtrack(None, Some(0));
        let a = forwarded_seq(plain.decide(now, &red(1), true, || false)).unwrap();
        assert!(matches!(
            plain.decide(now, &red(2), true, || true),
            Decision::Skip { .. }
        ));
        assert_eq!(
            forwarded_seq(plain.decide(now, &red(3), true, || false)),
            Some(a.wrapping_add(1))
        );
        let mut with_red = video_downtrack(None, Some(0));
        with_red.bound = Some(Bound {
            payload_type: 111,
            red_payload_type: Some(63),
            audio_level_id: None,
        });
        let asked = std::cell::Cell::new(false);
        let d = with_red.decide(now, &red(1), true, || {
            asked.set(true);
            true
        });
        assert!(matches!(d, Decision::Forward { .. }), "RED goes out as RED");
        assert!(!asked.get(), "its primary is not looked for");
    }
}
