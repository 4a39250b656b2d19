//! The worker's model of forwarding: a published track with its simulcast layers, and the
//! downtracks (one per subscriber, or one per layer for a subscriber that receives every
//! layer) that each carry one layer at a time.

use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverId};

use crate::api::{ParticipantId, TrackKind, TrackSource};
use crate::audio_level::AudioActivity;
use crate::forwarder::Forwarder;
use crate::keyframe::VideoCodec;
use crate::keyframe_requests::KeyframeRequests;
use crate::layer_meter::LayerMeter;

/// At most this many simulcast layers per track (browsers send three); more are ignored, so a
/// hostile offer cannot make a downtrack loop over dozens.
pub(crate) const MAX_LAYERS: usize = 4;
/// The SSRC of a layer declared in the offer whose packets have not arrived yet.
pub(crate) const UNKNOWN_SSRC: u32 = 0;

pub(crate) struct PublishedTrack {
    pub publisher: ParticipantId,
    pub room: String,
    pub conn: usize,
    pub receiver_id: RTCRtpReceiverId,
    pub kind: TrackKind,
    pub source: TrackSource,
    /// The codec subscribers are offered: for a RED publisher, its primary (Opus).
    pub codec: RTCRtpCodec,
    /// The publisher's payload type for RED, when it negotiated it: packets with it carry
    /// redundant audio (see `red.rs`); others are plain Opus.
    pub red_pt: Option<u8>,
    pub video_codec: Option<VideoCodec>,
    /// By rank ascending; one layer (rank 0) for audio and non-simulcast video.
    pub layers: Vec<Layer>,
    /// The publisher's extension id for the audio level, if negotiated.
    pub audio_level_id: Option<u8>,
    pub activity: AudioActivity,
    pub downtracks: Vec<DownTrack>,
}

/// One simulcast encoding of a published track.
pub(crate) struct Layer {
    /// Position of its rid in the publisher's `a=simulcast` list: lowest quality first.
    pub rank: u8,
    pub ssrc: u32,
    pub keyframes: KeyframeRequests,
    pub meter: LayerMeter,
}

impl PublishedTrack {
    pub fn layer_mut(&mut self, rank: u8) -> Option<&mut Layer> {
        self.layers.iter_mut().find(|l| l.rank == rank)
    }

    pub fn lowest_rank(&self) -> u8 {
        self.layers.first().map_or(0, |l| l.rank)
    }
}

pub(crate) struct DownTrack {
    /// Paused downtracks stay negotiated but forward nothing, so routing changes that come and
    /// go (the floor passing back, the chair scrolling back) need no renegotiation; only the
    /// few most recently paused are kept (see `routing.rs`), the others release their m-line.
    pub active: bool,
    /// When it was last paused (while not active).
    pub paused_at: Option<std::time::Instant>,
    pub subscriber: ParticipantId,
    pub conn: usize,
    pub sender_id: RTCRtpSenderId,
    pub transceiver: RTCRtpTransceiverId,
    pub ssrc: u32,
    /// The revision of the first subscribe offer that carried this track: it is bound (and
    /// forwarded) only from the answer to that offer on, never from the answer to an earlier
    /// offer that gave its m-line to another track or to none. Media sent before the client
    /// knows the SSRC would reach it unsignaled (issue 10, item 4).
    pub offered_in: Option<u64>,
    /// Known once the subscriber answered an offer containing this track.
    pub bound: Option<Bound>,
    pub forwarder: Forwarder,
    /// PictureID and TL0PICIDX continuity across layer switches (VP8 only; see `vp8.rs`).
    pub vp8: crate::vp8::Munger,
    /// The highest layer the routing allows (0: a thumbnail).
    pub max_rank: u8,
    /// Allocation order within the subscriber's link (lower first).
    pub priority: u8,
    /// The layer being forwarded now.
    pub current: Option<u8>,
    /// The last packet sent did not end its frame: a probe's padding waits for the frame's
    /// last packet (its numbers would split the frame in the subscriber's jitter buffer).
    pub frame_open: bool,
    /// The layer the allocator chose; a switch happens at its next keyframe. `None`: paused
    /// because the subscriber's link cannot carry it.
    pub target: Option<u8>,
    /// Pause/resume hysteresis for its link (see `floor_gate.rs`).
    pub floor: crate::floor_gate::FloorGate,
    /// Which temporal layers of its layer it forwards (see `temporal.rs`).
    pub temporal: crate::temporal::TemporalFilter,
    /// The one layer it carries, for a subscriber that receives every layer (a relay): its
    /// target never changes and the allocator leaves it out.
    pub pinned: Option<u8>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound {
    pub payload_type: u8,
    /// The subscriber's payload type for RED, if it accepted RED.
    pub red_payload_type: Option<u8>,
    pub audio_level_id: Option<u8>,
}
