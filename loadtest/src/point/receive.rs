//! What a point records about each stream it receives: packets, sequence gaps, keyframes and
//! the simulcast layer each keyframe announces, frames and freezes, audio gaps.

use std::time::Instant;

use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

use super::{SharedStats, lock};
use crate::layers::{Ladder, LayerTracker, vp8_keyframe_dims, vp8_start_of_keyframe};
use crate::red::RedRecovery;
use crate::stats::{DelayTracker, FreezeDetector, GapDetector, SeqTracker, Series};

/// Per received stream (one remote SSRC).
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    pub kind: Option<String>,
    /// The sender's participant id (msid stream id).
    pub stream_id: String,
    pub packets: u64,
    pub bytes: u64,
    pub first_seq: Option<u16>,
    pub last_seq: Option<u16>,
    /// Packets whose sequence number was not last+1 (gaps or reordering).
    pub discontinuities: u64,
    pub keyframes: u64,
    pub payload_types: Vec<u8>,
    pub first_packet_at: Option<Instant>,
    pub first_keyframe_at: Option<Instant>,
    /// When the first keyframe was complete (every packet from its start to its marker).
    pub first_complete_keyframe_at: Option<Instant>,
    /// Gaps at arrival, filled later (NACK), never filled.
    pub seq: SeqTracker,
    /// Frames (marker packets of a new timestamp) and freezes; video only.
    pub freezes: FreezeDetector,
    /// Audio packets more than 60 ms apart.
    pub audio_gaps: GapDetector,
    /// The payload type this stream's subscriber accepted for RED (`None`: no RED).
    pub red_payload_type: Option<u8>,
    /// Audio: RED packets, frames recovered from redundancy, gaps on the recovered stream.
    pub red: RedRecovery,
    /// Audio: one-way delay above the lowest seen (the chair's timestamps follow its schedule).
    pub delay: DelayTracker,
    /// Payload bytes per second since the scenario's epoch.
    pub series: Series,
    /// Video: when each frame's first packet arrived and its delay since the publisher stamped
    /// it (ms, one clock: [`crate::media::vp8_send_stamp`]); the first 100,000 frames.
    pub send_delay_ms: Vec<(Instant, f64)>,
    /// Keyframes whose dimensions differ from the previous keyframe's (a simulcast layer
    /// switch seen by the receiver).
    pub layer_switches: u64,
    pub dimensions: Option<(u16, u16)>,
    /// Which simulcast layer (by keyframe resolution) arrived when, and how much of each.
    pub layers: LayerTracker,
    /// When each keyframe began arriving (the first 10,000).
    pub keyframe_times: Vec<Instant>,
    last_frame_ts: Option<u32>,
    /// The first keyframe being assembled: its timestamp, first and last extended sequence.
    pending_key: Option<(u32, u64)>,
    key_marker: Option<u64>,
}

pub(super) fn record(
    stats: &SharedStats,
    epoch: Instant,
    ladder: &Ladder,
    kind: RtpCodecKind,
    stream_id: &str,
    p: &rtp::Packet,
) {
    let now = Instant::now();
    let mut s = lock(stats);
    let red_payload_type = s.red_payload_type;
    let st = s.streams.entry(p.header.ssrc).or_default();
    st.red_payload_type = red_payload_type;
    record_stream(st, now, epoch, ladder, kind, stream_id, p);
}

/// Updates one stream's statistics with an arriving packet; `ladder` maps keyframe resolutions
/// to layers. An audio packet with the stream's RED payload type is unwrapped: its redundant
/// block recovers a missing predecessor.
pub fn record_stream(
    st: &mut StreamStats,
    now: Instant,
    epoch: Instant,
    ladder: &Ladder,
    kind: RtpCodecKind,
    stream_id: &str,
    p: &rtp::Packet,
) {
    if st.kind.is_none() {
        st.kind = Some(kind.to_string());
        st.stream_id = stream_id.to_owned();
    }
    st.packets += 1;
    st.bytes += p.payload.len() as u64;
    st.series.add(epoch, now, p.payload.len());
    if st.first_packet_at.is_none() {
        st.first_packet_at = Some(now);
    }
    let seq = p.header.sequence_number;
    if st.first_seq.is_none() {
        st.first_seq = Some(seq);
    } else if let Some(last) = st.last_seq
        && seq != last.wrapping_add(1)
    {
        st.discontinuities += 1;
    }
    st.last_seq = Some(seq);
    let ext = st.seq.on_packet(seq);
    if !st.payload_types.contains(&p.header.payload_type) {
        st.payload_types.push(p.header.payload_type);
    }
    if kind == RtpCodecKind::Audio {
        st.audio_gaps.on_packet(now);
        // Opus: a 48 kHz RTP clock.
        st.delay.on_packet(epoch, now, p.header.timestamp, 48_000);
        let red = st.red_payload_type == Some(p.header.payload_type);
        st.red.on_packet(&st.seq, ext, now, &p.payload, red);
        return;
    }
    if kind != RtpCodecKind::Video {
        return;
    }
    let pl = &p.payload;
    let ts = p.header.timestamp;
    if st.send_delay_ms.len() < 100_000
        && let Some(sent) = crate::media::vp8_send_stamp(pl)
    {
        let delay = crate::media::unix_micros().saturating_sub(sent) as f64 / 1_000.0;
        st.send_delay_ms.push((now, delay));
    }
    if vp8_start_of_keyframe(pl).is_some() {
        st.keyframes += 1;
        if st.keyframe_times.len() < 10_000 {
            st.keyframe_times.push(now);
        }
        if st.first_keyframe_at.is_none() {
            st.first_keyframe_at = Some(now);
        }
        if st.first_complete_keyframe_at.is_none() {
            st.pending_key = Some((ts, ext));
        }
        let dims = vp8_keyframe_dims(pl);
        if let Some(dims) = dims {
            if st.dimensions.is_some_and(|d| d != dims) {
                st.layer_switches += 1;
            }
            st.dimensions = Some(dims);
        }
        st.layers
            .on_keyframe(now, dims.and_then(|d| ladder.layer_of(d)));
    }
    // After the keyframe: its own bytes count for the layer it starts.
    st.layers.on_bytes(epoch, now, pl.len());
    if p.header.marker && st.last_frame_ts != Some(ts) {
        st.last_frame_ts = Some(ts);
        st.freezes.on_frame(now);
    }
    // The first keyframe is complete when its start and marker arrived with nothing missing
    // between (the marker or a retransmission may come last).
    if let Some((key_ts, start)) = st.pending_key
        && ts == key_ts
    {
        if p.header.marker {
            st.key_marker = Some(ext);
        }
        if let Some(end) = st.key_marker
            && st.seq.complete(start, end)
        {
            st.first_complete_keyframe_at = Some(now);
            st.pending_key = None;
        }
    }
}
