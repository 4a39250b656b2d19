//! Simulcast layers as the load generator sends and sees them, kept pure so it is unit-tested.
//!
//! The publisher sends up to three layers with rids `q`, `h`, `f`, lowest first (the server
//! ranks layers by their order in the offer's `a=simulcast:send` line), each at its own bitrate
//! and with its own resolution written into every VP8 keyframe header. The server forwards one
//! layer at a time per subscriber on one SSRC, switching at keyframes only, so a receiver tells
//! which layer it gets from the dimensions of each keyframe: [`LayerTracker`] turns those
//! keyframes into time on each layer, switches up and down, first frame per layer and bytes per
//! layer per second.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stats::Series;

/// The most layers a publisher sends.
pub const MAX_LAYERS: usize = 3;

/// Rids, lowest quality first: the order of `a=simulcast:send` is the server's ranking.
pub const RIDS: [&str; MAX_LAYERS] = ["q", "h", "f"];

/// Resolutions of the layers, lowest first, distinct so a receiver can tell them apart.
pub const RESOLUTIONS: [(u16, u16); MAX_LAYERS] = [(320, 180), (640, 360), (1280, 720)];

/// The default ladder of `--simulcast`, kbit/s per layer.
pub const DEFAULT_KBPS: [u32; MAX_LAYERS] = [150, 500, 1_200];

/// One layer a publisher sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerSpec {
    /// Empty for a single (non-simulcast) stream.
    pub rid: String,
    pub kbps: u32,
    pub width: u16,
    pub height: u16,
}

/// The layers a publisher sends, lowest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Ladder(pub Vec<LayerSpec>);

impl Ladder {
    /// Parses `--layers`: 1 to 3 comma-separated kbit/s values, positive and increasing; layer
    /// `i` gets rid [`RIDS`]`[i]` and resolution [`RESOLUTIONS`]`[i]`.
    pub fn parse(s: &str) -> Result<Ladder, String> {
        let mut kbps = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let v: u32 = part.parse().map_err(|_| {
                format!("--layers: {part:?} is not a whole number of kbit/s (e.g. 150,500,1200)")
            })?;
            kbps.push(v);
        }
        Ladder::simulcast(&kbps)
    }

    /// A simulcast ladder from kbit/s per layer, lowest first.
    pub fn simulcast(kbps: &[u32]) -> Result<Ladder, String> {
        if kbps.is_empty() || kbps.len() > MAX_LAYERS {
            return Err(format!(
                "--layers takes 1 to {MAX_LAYERS} bitrates (got {})",
                kbps.len()
            ));
        }
        if kbps.contains(&0) {
            return Err("--layers: every bitrate must be positive".into());
        }
        if kbps.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "--layers must increase from the lowest layer to the highest (got {kbps:?})"
            ));
        }
        Ok(Ladder(
            kbps.iter()
                .enumerate()
                .map(|(i, &k)| LayerSpec {
                    rid: RIDS[i].to_owned(),
                    kbps: k,
                    width: RESOLUTIONS[i].0,
                    height: RESOLUTIONS[i].1,
                })
                .collect(),
        ))
    }

    /// One stream without rid (no simulcast) at these dimensions.
    pub fn single(kbps: u32, width: u16, height: u16) -> Ladder {
        Ladder(vec![LayerSpec {
            rid: String::new(),
            kbps,
            width,
            height,
        }])
    }

    pub fn is_simulcast(&self) -> bool {
        self.0.iter().any(|l| !l.rid.is_empty())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The layer whose resolution a keyframe carries, if any.
    pub fn layer_of(&self, dims: (u16, u16)) -> Option<usize> {
        self.0.iter().position(|l| (l.width, l.height) == dims)
    }

    /// How reports name layer `i`: its rid, or its resolution for a single stream.
    pub fn label(&self, i: usize) -> String {
        self.0.get(i).map_or_else(String::new, |l| {
            if l.rid.is_empty() {
                format!("{}x{}", l.width, l.height)
            } else {
                l.rid.clone()
            }
        })
    }
}

/// Width and height from a VP8 keyframe's RTP payload (RFC 7741 descriptor, then the frame tag,
/// start code and dimensions of RFC 6386 §9.1), or `None` when the packet does not start a
/// keyframe or is too short.
pub fn vp8_keyframe_dims(payload: &[u8]) -> Option<(u16, u16)> {
    let o = vp8_start_of_keyframe(payload)?;
    let h = payload.get(o + 3..o + 10)?;
    if h[..3] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    Some((
        u16::from_le_bytes([h[3], h[4]]) & 0x3FFF,
        u16::from_le_bytes([h[5], h[6]]) & 0x3FFF,
    ))
}

/// Offset of the VP8 frame header when this payload starts a keyframe (S bit, partition 0,
/// frame tag bit 0 clear).
pub fn vp8_start_of_keyframe(p: &[u8]) -> Option<usize> {
    if p.len() <= 4 || p[0] & 0x10 == 0 || p[0] & 0x07 != 0 {
        return None;
    }
    let o = vp8_header_offset(p)?;
    (p.get(o)? & 1 == 0).then_some(o)
}

/// Length of the RFC 7741 payload descriptor.
pub fn vp8_header_offset(p: &[u8]) -> Option<usize> {
    let mut at = 1;
    if *p.first()? & 0x80 != 0 {
        let x = *p.get(at)?;
        at += 1;
        if x & 0x80 != 0 {
            at += if p.get(at)? & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1;
        }
        if x & 0x30 != 0 {
            at += 1;
        }
    }
    Some(at)
}

/// What one received video stream went through, layer by layer. Packets before the first
/// keyframe of a known layer belong to no layer (nothing decodable yet).
#[derive(Debug, Clone, Default)]
pub struct LayerTracker {
    /// Layer of the last keyframe and since when.
    current: Option<(usize, Instant)>,
    /// Closed time on each layer (the open interval is added by [`LayerTracker::time_on`]).
    closed: [Duration; MAX_LAYERS],
    pub switches_up: u64,
    pub switches_down: u64,
    /// First keyframe of each layer (its first packet's arrival).
    pub first_keyframe_at: [Option<Instant>; MAX_LAYERS],
    pub keyframes: [u64; MAX_LAYERS],
    /// Keyframes with dimensions outside the ladder.
    pub unknown_keyframes: u64,
    /// Payload bytes attributed to each layer: total, and per second since the epoch.
    pub bytes: [u64; MAX_LAYERS],
    pub series: [Series; MAX_LAYERS],
    /// Every change of layer (the first keyframe of a known layer included): when, and to which.
    pub history: Vec<(Instant, usize)>,
}

impl LayerTracker {
    /// A keyframe began arriving; `layer` is what its dimensions say (`None`: not in the ladder,
    /// which leaves the current layer as it was).
    pub fn on_keyframe(&mut self, now: Instant, layer: Option<usize>) {
        let Some(layer) = layer.filter(|l| *l < MAX_LAYERS) else {
            self.unknown_keyframes += 1;
            return;
        };
        self.keyframes[layer] += 1;
        if self.first_keyframe_at[layer].is_none() {
            self.first_keyframe_at[layer] = Some(now);
        }
        match self.current {
            Some((c, _)) if c == layer => {}
            Some((c, since)) => {
                self.closed[c] += now.saturating_duration_since(since);
                if layer > c {
                    self.switches_up += 1;
                } else {
                    self.switches_down += 1;
                }
                self.current = Some((layer, now));
                self.history.push((now, layer));
            }
            None => {
                self.current = Some((layer, now));
                self.history.push((now, layer));
            }
        }
    }

    /// When this stream was on `layer` at `from` or later: `from` itself if it was on it then,
    /// else its first switch to it after `from`; `None` if it never was.
    pub fn on_layer_since(&self, layer: usize, from: Instant) -> Option<Instant> {
        let before = self.history.iter().rev().find(|(at, _)| *at <= from);
        if before.is_some_and(|(_, l)| *l == layer) {
            return Some(from);
        }
        self.history
            .iter()
            .find(|(at, l)| *at > from && *l == layer)
            .map(|(at, _)| *at)
    }

    /// Payload bytes arrived; they belong to the layer of the last keyframe.
    pub fn on_bytes(&mut self, epoch: Instant, now: Instant, bytes: usize) {
        if let Some((c, _)) = self.current {
            self.bytes[c] += bytes as u64;
            self.series[c].add(epoch, now, bytes);
        }
    }

    pub fn current(&self) -> Option<usize> {
        self.current.map(|(c, _)| c)
    }

    /// Time on `layer` up to `now`, the current interval included.
    pub fn time_on(&self, layer: usize, now: Instant) -> Duration {
        let open = match self.current {
            Some((c, since)) if c == layer => now.saturating_duration_since(since),
            _ => Duration::ZERO,
        };
        self.closed.get(layer).copied().unwrap_or_default() + open
    }

    pub fn switches(&self) -> u64 {
        self.switches_up + self.switches_down
    }
}

/// kbit/s of `bytes` over `seconds` (0 for an empty window).
pub fn kbps(bytes: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        0.0
    } else {
        bytes as f64 * 8.0 / 1_000.0 / seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::vp8_frame;

    #[test]
    fn ladders_are_validated() {
        let l = Ladder::parse("150,500,1200").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(
            l.0.iter().map(|l| l.rid.as_str()).collect::<Vec<_>>(),
            ["q", "h", "f"]
        );
        assert_eq!((l.0[2].width, l.0[2].height), (1280, 720));
        assert!(l.is_simulcast());
        assert_eq!(Ladder::parse(" 200 ").unwrap().0[0].rid, "q");
        for bad in [
            "", "0,100", "500,150", "100,100", "1,2,3,4", "a,b", "-5", "1.5",
        ] {
            assert!(Ladder::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Ladder::parse("500,150").unwrap_err().contains("increase"));
        assert!(!Ladder::single(800, 640, 360).is_simulcast());
    }

    #[test]
    fn layers_are_read_from_keyframe_headers() {
        let ladder = Ladder::parse("150,500,1200").unwrap();
        for (i, (w, h)) in RESOLUTIONS.iter().enumerate() {
            let packets = vp8_frame(7, true, 3_000, *w, *h);
            let dims = vp8_keyframe_dims(&packets[0]).expect("keyframe start");
            assert_eq!(dims, (*w, *h));
            assert_eq!(ladder.layer_of(dims), Some(i));
            // Only the first packet of the frame carries the header.
            assert_eq!(vp8_keyframe_dims(&packets[1]), None);
        }
        let delta = vp8_frame(8, false, 3_000, 1280, 720);
        assert_eq!(
            vp8_keyframe_dims(&delta[0]),
            None,
            "a delta frame has no size"
        );
        assert_eq!(ladder.layer_of((800, 600)), None);
        // A truncated keyframe start (descriptor and tag only) is not misread.
        let short = &vp8_frame(9, true, 3_000, 320, 180)[0][..8];
        assert_eq!(vp8_keyframe_dims(short), None);
    }

    #[test]
    fn descriptor_variants_are_skipped() {
        // X=1 with I (one-byte picture id), L and T/K present: 1 + 1 + 1 + 1 + 1 = 5 bytes.
        let mut p = vec![0x90, 0xE0, 0x05, 0x00, 0x00];
        p.extend_from_slice(&[0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a]);
        p.extend_from_slice(&640u16.to_le_bytes());
        p.extend_from_slice(&360u16.to_le_bytes());
        assert_eq!(vp8_keyframe_dims(&p), Some((640, 360)));
        // No extension byte at all.
        let mut p = vec![0x10];
        p.extend_from_slice(&[0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a]);
        p.extend_from_slice(&(320u16 | 0x4000).to_le_bytes()); // scaling bits are masked
        p.extend_from_slice(&180u16.to_le_bytes());
        assert_eq!(vp8_keyframe_dims(&p), Some((320, 180)));
    }

    #[test]
    fn switches_and_time_per_layer() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut t = LayerTracker::default();
        t.on_bytes(t0, at(0), 100); // before any keyframe: no layer
        assert_eq!(t.bytes, [0, 0, 0]);
        t.on_keyframe(at(500), Some(0));
        t.on_bytes(t0, at(600), 1_000);
        t.on_keyframe(at(1_500), Some(0)); // same layer: not a switch
        t.on_keyframe(at(2_000), Some(2)); // up
        t.on_bytes(t0, at(2_100), 5_000);
        t.on_keyframe(at(3_000), None); // unknown size: stays on 2
        t.on_keyframe(at(4_000), Some(1)); // down
        t.on_bytes(t0, at(4_500), 2_000);
        assert_eq!((t.switches_up, t.switches_down, t.switches()), (1, 1, 2));
        assert_eq!(t.unknown_keyframes, 1);
        assert_eq!(t.keyframes, [2, 1, 1]);
        assert_eq!(t.current(), Some(1));
        assert_eq!(t.time_on(0, at(5_000)), Duration::from_millis(1_500));
        assert_eq!(t.time_on(2, at(5_000)), Duration::from_millis(2_000));
        assert_eq!(t.time_on(1, at(5_000)), Duration::from_millis(1_000));
        assert_eq!(
            t.first_keyframe_at,
            [Some(at(500)), Some(at(4_000)), Some(at(2_000))]
        );
        assert_eq!(t.bytes, [1_000, 2_000, 5_000]);
        assert_eq!(t.series[0].bytes_per_second, vec![1_000]);
        assert_eq!(t.series[2].bytes_per_second, vec![0, 0, 5_000]);
        assert_eq!(t.series[1].bytes_per_second, vec![0, 0, 0, 0, 2_000]);
        // Time on all layers is the time since the first keyframe.
        let total: Duration = (0..MAX_LAYERS).map(|l| t.time_on(l, at(5_000))).sum();
        assert_eq!(total, Duration::from_millis(4_500));
        // When it was on a layer after some instant.
        assert_eq!(t.on_layer_since(2, at(100)), Some(at(2_000)));
        assert_eq!(
            t.on_layer_since(2, at(2_500)),
            Some(at(2_500)),
            "on it then"
        );
        assert_eq!(t.on_layer_since(2, at(4_000)), None, "left it for good");
        assert_eq!(t.on_layer_since(1, at(0)), Some(at(4_000)));
        assert_eq!(t.on_layer_since(0, at(0)), Some(at(500)));
    }

    #[test]
    fn per_layer_bitrate_and_mean_series() {
        assert_eq!(kbps(125_000, 2.0), 500.0);
        assert_eq!(kbps(10, 0.0), 0.0);
    }
}
