//! What a subscriber received, per SSRC: packets, sequence gaps, keyframes with their
//! resolution, and per virtual second the packets, bytes and frames of each temporal layer —
//! what a test needs to say "this subscriber got 640x360 at full frame rate from second 3 on".

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use rtc::peer_connection::event::RTCTrackEventInit;
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpReceiverId;

use super::vp8;

/// A silence between two packets of a stream longer than this is noted (issue 11: no audio
/// gap over 100 ms).
pub const LONG_GAP: Duration = Duration::from_millis(100);

/// One virtual second of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Second {
    pub packets: u64,
    pub bytes: u64,
    /// Frames started (first packet of a picture) per temporal layer id.
    pub frames_by_tid: [u64; 4],
    /// Transit times this second, up to a constant (arrival minus the RTP timestamp's time),
    /// in ms, summed: queueing on the way shows as their rise ([`Second::transit_ms`]).
    transit_sum_ms: f64,
}

impl Second {
    /// The mean transit time of the second's packets, up to a constant, in ms (the load
    /// generator's per-second audio delay is the same mean).
    pub fn transit_ms(&self) -> Option<f64> {
        (self.packets > 0).then(|| self.transit_sum_ms / self.packets as f64)
    }
}

/// One received SSRC.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    pub rid: Option<String>,
    /// Its receiver negotiated VP8 (else: audio).
    pub video: bool,
    pub packets: u64,
    pub bytes: u64,
    /// Sequence numbers skipped (sum of forward jumps beyond one); a late packet does not
    /// undo its gap but counts in `late`.
    pub gaps: u64,
    pub late: u64,
    /// Packets whose sequence number had already arrived (a repair that was not needed).
    pub duplicates: u64,
    /// Keyframes: (virtual time since the recorder began, width, height).
    pub keyframes: Vec<(Duration, u16, u16)>,
    /// By whole virtual second since the recorder began.
    pub seconds: BTreeMap<u64, Second>,
    /// Silences over [`LONG_GAP`] between arrivals: (when it ended, how long).
    pub long_gaps: Vec<(Duration, Duration)>,
    /// VP8 packets whose PictureID differs from that of an earlier packet with the same RTP
    /// timestamp: a payload that is not of the frame its header says (a wrong repair would).
    pub foreign: u64,
    /// RTP timestamp → PictureID of the frames seen lately (cleared as it grows).
    pictures: HashMap<u32, u16>,
    last_arrival: Option<Duration>,
    first_ts: Option<u32>,
    last_seq: Option<u16>,
    /// Which sequence numbers arrived (one bit each; reset as numbers wrap around).
    seen: Vec<u64>,
}

impl StreamStats {
    /// The resolution of the last keyframe.
    pub fn resolution(&self) -> Option<(u16, u16)> {
        self.keyframes.last().map(|&(_, w, h)| (w, h))
    }

    /// Temporal layers seen in seconds `from..to`.
    pub fn tids_in(&self, from: u64, to: u64) -> Vec<u8> {
        (0..4u8)
            .filter(|&t| {
                self.seconds
                    .range(from..to)
                    .any(|(_, s)| s.frames_by_tid[usize::from(t)] > 0)
            })
            .collect()
    }

    /// Bit rate over seconds `from..to`.
    pub fn bitrate_in(&self, from: u64, to: u64) -> f64 {
        let bytes: u64 = self.seconds.range(from..to).map(|(_, s)| s.bytes).sum();
        bytes as f64 * 8.0 / (to - from).max(1) as f64
    }
}

#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    pub streams: BTreeMap<u32, StreamStats>,
    /// Payload types that carry VP8 (parsed for keyframes and temporal layers).
    vp8_pts: HashSet<u8>,
    receivers: HashMap<String, RTCRtpReceiverId>,
    receiver_of_ssrc: HashMap<u32, RTCRtpReceiverId>,
}

impl Recorder {
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            streams: BTreeMap::new(),
            vp8_pts: HashSet::new(),
            receivers: HashMap::new(),
            receiver_of_ssrc: HashMap::new(),
        }
    }

    /// A track opened (on its first packet).
    pub fn open(&mut self, init: &RTCTrackEventInit, vp8_pt: Option<u8>) {
        self.vp8_pts.extend(vp8_pt);
        self.receivers
            .insert(init.track_id.clone(), init.receiver_id);
        self.receiver_of_ssrc.insert(init.ssrc, init.receiver_id);
        let s = self.streams.entry(init.ssrc).or_default();
        s.rid = init.rid.clone();
        s.video = vp8_pt.is_some();
    }

    pub fn receiver_of(&self, ssrc: u32) -> Option<RTCRtpReceiverId> {
        self.receiver_of_ssrc.get(&ssrc).copied()
    }

    pub fn record(&mut self, now: Instant, track_id: &str, packet: &rtp::Packet) {
        let h = &packet.header;
        if let Some(&r) = self.receivers.get(track_id) {
            self.receiver_of_ssrc.entry(h.ssrc).or_insert(r);
        }
        let since = now.saturating_duration_since(self.start);
        let s = self.streams.entry(h.ssrc).or_default();
        s.packets += 1;
        s.bytes += packet.payload.len() as u64;
        if s.seen.is_empty() {
            s.seen = vec![0; 1 << 10];
        }
        let (word, bit) = (usize::from(h.sequence_number >> 6), h.sequence_number & 63);
        if s.seen[word] & (1 << bit) != 0 {
            s.duplicates += 1;
        }
        s.seen[word] |= 1 << bit;
        // Forget the numbers half the space ahead, so they count afresh after a wrap.
        let ahead = usize::from(h.sequence_number.wrapping_add(0x8000) >> 6);
        s.seen[ahead] = 0;
        if let Some(last) = s.last_seq {
            let step = h.sequence_number.wrapping_sub(last);
            if step == 0 || step >= 0x8000 {
                s.late += 1;
            } else {
                s.gaps += u64::from(step - 1);
                s.last_seq = Some(h.sequence_number);
            }
        } else {
            s.last_seq = Some(h.sequence_number);
        }
        if let Some(last) = s.last_arrival
            && since - last > LONG_GAP
        {
            s.long_gaps.push((since, since - last));
        }
        s.last_arrival = Some(since);
        let clock = if s.video { 90_000.0 } else { 48_000.0 };
        let stamp = f64::from(
            h.timestamp
                .wrapping_sub(*s.first_ts.get_or_insert(h.timestamp)) as i32,
        );
        let transit = since.as_secs_f64() * 1e3 - stamp / clock * 1e3;
        let second = s.seconds.entry(since.as_secs()).or_default();
        second.transit_sum_ms += transit;
        second.packets += 1;
        second.bytes += packet.payload.len() as u64;
        if !self.vp8_pts.contains(&h.payload_type) {
            return;
        }
        let Some(parsed) = vp8::parse(&packet.payload) else {
            return;
        };
        let descriptor = crate::vp8::parse(&packet.payload);
        if let Some((picture, ..)) = descriptor.as_ref().and_then(|d| d.picture_id) {
            if s.pictures.len() > 4096 {
                s.pictures.clear();
            }
            if *s.pictures.entry(h.timestamp).or_insert(picture) != picture {
                s.foreign += 1;
            }
        }
        let frame_start = descriptor.is_some_and(|d| d.frame_start);
        if frame_start {
            second.frames_by_tid[usize::from(parsed.tid.unwrap_or(0) & 3)] += 1;
        }
        if let Some((w, h)) = parsed.keyframe {
            s.keyframes.push((since, w, h));
        }
    }

    /// The stream a rid arrived on (simulcast receivers).
    pub fn by_rid(&self, rid: &str) -> Option<(u32, &StreamStats)> {
        self.streams
            .iter()
            .find(|(_, s)| s.rid.as_deref() == Some(rid))
            .map(|(ssrc, s)| (*ssrc, s))
    }
}
