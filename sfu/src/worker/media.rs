//! Published tracks, their downtracks, and the forwarding path.
//!
//! A published track owns its downtracks (one per subscriber that receives it, or one per
//! layer for a relay, each pinned to its layer): fan-out is a loop over a `Vec` in one thread.
//! Each downtrack carries one simulcast layer at a time and its
//! [`Forwarder`](crate::forwarder::Forwarder) decides the sequence number and timestamp, so a
//! layer switch is invisible to the subscriber; the payload `Bytes` is shared, never copied,
//! before SRTP.

use std::time::Instant;

use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

use super::WorkerCore;
use super::conn::{AUDIO_LEVEL_URI, Conn, internal, rtc_sdp_error};
use super::decide::{Decision, Incoming};
use super::routing::pins;
use super::track::{Bound, DownTrack, Layer, MAX_LAYERS, PublishedTrack, UNKNOWN_SSRC};
use crate::api::{
    ConnState, MediaEvent, ParticipantId, PcKind, SfuError, Subscription, TrackKind, TrackSource,
};
use crate::audio_level::AudioActivity;
use crate::forwarder::Rewrite;
use crate::keyframe::VideoCodec;
use crate::keyframe_requests::KeyframeRequests;
use crate::layer_meter::LayerMeter;

impl WorkerCore {
    pub(super) fn publish_offer(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        sdp: String,
    ) -> Result<String, SfuError> {
        // Refused before a connection is built for it (see `sdp_text`).
        crate::sdp_text::check(&sdp)?;
        let existing = self
            .participants
            .get(&participant)
            .ok_or(SfuError::NoSuchParticipant)?
            .publish;
        let key = match existing {
            Some(k) => k,
            None => self.new_conn(now, participant, PcKind::Publish)?,
        };
        let result = (|| {
            let pc = &mut self.conns[key].pc;
            let offer = RTCSessionDescription::offer(sdp).map_err(rtc_sdp_error)?;
            pc.set_remote_description(now, offer)
                .map_err(rtc_sdp_error)?;
            let answer = pc.create_answer(None).map_err(rtc_sdp_error)?;
            pc.set_local_description(now, answer).map_err(internal)?;
            pc.local_description()
                .map(|d| d.sdp)
                .ok_or_else(|| internal("no local description after answering"))
        })();
        match result {
            Ok(answer) => {
                if let Some(p) = self.participants.get_mut(&participant) {
                    p.publish = Some(key);
                }
                self.unpublish_stopped(now, key);
                self.mark_dirty(key);
                for candidate in self.factory.local_candidates().unwrap_or_default() {
                    self.notify(
                        participant,
                        MediaEvent::Candidate {
                            pc: PcKind::Publish,
                            candidate,
                        },
                    );
                }
                Ok(answer)
            }
            Err(e) => {
                if existing.is_none() {
                    self.close_conn(key);
                }
                Err(e)
            }
        }
    }

    pub(super) fn on_pc_event(&mut self, now: Instant, key: usize, event: RTCPeerConnectionEvent) {
        let (participant, kind) = {
            let c = &self.conns[key];
            (c.participant, c.kind)
        };
        match event {
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init))
                if kind == PcKind::Publish =>
            {
                self.on_track_open(now, key, participant, init.receiver_id, init.ssrc);
            }
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                let state = match state {
                    RTCPeerConnectionState::New | RTCPeerConnectionState::Connecting => {
                        ConnState::Connecting
                    }
                    RTCPeerConnectionState::Connected => ConnState::Connected,
                    RTCPeerConnectionState::Disconnected => ConnState::Disconnected,
                    RTCPeerConnectionState::Failed => ConnState::Failed,
                    RTCPeerConnectionState::Closed => ConnState::Closed,
                    _ => return,
                };
                // Keep sending while merely disconnected: a rural line that drops its checks for
                // a few seconds gets its media back the moment it recovers, and a dead path costs
                // only the sends until ICE declares it failed.
                self.conns[key].connected =
                    matches!(state, ConnState::Connected | ConnState::Disconnected);
                if state == ConnState::Connected && kind == PcKind::Subscribe {
                    // A subscriber that just connected needs keyframes for its video.
                    self.request_keyframes_for_subscriber(now, key);
                }
                self.notify(participant, MediaEvent::ConnectionState { pc: kind, state });
            }
            _ => {}
        }
    }

    fn on_track_open(
        &mut self,
        now: Instant,
        key: usize,
        participant: ParticipantId,
        receiver_id: RTCRtpReceiverId,
        ssrc: u32,
    ) {
        if self.track_by_ssrc.contains_key(&(key, ssrc)) {
            return;
        }
        let Some(mut receiver) = self.conns[key].pc.rtp_receiver(receiver_id) else {
            return;
        };
        // A simulcast layer ranks by its rid's position in the offer's `a=simulcast` list,
        // which `rtc` keeps as the order of the track's codings (lowest quality first, by our
        // protocol's contract).
        let rank = receiver.track().rid(ssrc).and_then(|rid| {
            receiver
                .track()
                .codings()
                .iter()
                .position(|c| &c.rtp_coding_parameters.rid == rid)
        });
        let rank = match rank {
            Some(r) if r >= MAX_LAYERS => {
                tracing::debug!(%participant, ssrc, "simulcast layer beyond the fourth; ignored");
                return;
            }
            Some(r) => r as u8,
            None => 0,
        };
        // Another layer of a track we already forward.
        if let Some((track, t)) = self
            .tracks
            .iter_mut()
            .find(|(_, t)| t.conn == key && t.receiver_id == receiver_id)
        {
            if t.layers.iter().any(|l| l.rank == rank) {
                // Declared in the offer and now seen (or the publisher restarted this layer's
                // encoder under a new SSRC).
                let old = t.layers.iter().find(|l| l.rank == rank).map(|l| l.ssrc);
                if let Some(old) = old.filter(|s| *s != UNKNOWN_SSRC) {
                    self.track_by_ssrc.remove(&(key, old));
                }
                if let Some(l) = t.layer_mut(rank) {
                    l.ssrc = ssrc;
                }
            } else {
                let at = t.layers.partition_point(|l| l.rank < rank);
                t.layers.insert(at, new_layer(rank, ssrc));
                // A layer the offer did not declare: a subscriber of every layer gets it too.
                let every: Vec<(ParticipantId, Subscription)> = self
                    .participants
                    .iter()
                    .filter_map(|(id, p)| {
                        p.receives
                            .iter()
                            .find(|s| s.publisher == participant && s.every_layer)
                            .map(|s| (*id, *s))
                    })
                    .filter(|(_, s)| s.wants(t.source))
                    .collect();
                for (s, sub) in every {
                    if let Err(e) = self.add_downtrack(now, track, s, &sub, Some(rank)) {
                        tracing::warn!(subscriber = %s, "cannot add downtrack: {e}");
                    }
                }
            }
            tracing::info!(%participant, ssrc, rank, "simulcast layer published");
            self.track_by_ssrc.insert((key, ssrc), (track, rank));
            return;
        }
        let kind = match receiver.track().kind() {
            RtpCodecKind::Audio => TrackKind::Audio,
            RtpCodecKind::Video => TrackKind::Video,
            _ => return,
        };
        let Some(codec) = receiver.track().codec(ssrc).cloned() else {
            tracing::warn!(%participant, ssrc, "track without a codec; ignored");
            return;
        };
        let params = &receiver.get_parameters().rtp_parameters;
        let audio_level_id = params
            .header_extensions
            .iter()
            .find(|h| h.uri == AUDIO_LEVEL_URI)
            .and_then(|h| u8::try_from(h.id).ok());
        // A publisher that negotiated RED may send RED or plain Opus packets; subscribers are
        // offered Opus (and RED beside it, from our codec list), and each packet is sent as
        // what its subscriber accepted.
        let red_pt = params
            .codecs
            .iter()
            .find(|c| {
                c.rtp_codec
                    .mime_type
                    .eq_ignore_ascii_case(crate::red::MIME_TYPE_RED)
            })
            .map(|c| c.payload_type);
        let codec = if codec
            .mime_type
            .eq_ignore_ascii_case(crate::red::MIME_TYPE_RED)
        {
            match params.codecs.iter().find(|c| {
                c.rtp_codec.mime_type.eq_ignore_ascii_case(
                    rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS,
                )
            }) {
                Some(opus) => opus.rtp_codec.clone(),
                None => {
                    tracing::warn!(%participant, "RED without Opus; not forwarded");
                    return;
                }
            }
        } else {
            codec
        };
        let mid = self.conns[key]
            .pc
            .get_transceivers()
            .collect::<Vec<_>>()
            .into_iter()
            .find_map(|t| {
                let tr = self.conns[key].pc.rtp_transceiver(t)?;
                (tr.receiver() == Some(receiver_id))
                    .then(|| tr.mid().clone())
                    .flatten()
            });
        let declared = mid.as_ref().and_then(|m| {
            self.participants
                .get(&participant)
                .and_then(|p| p.sources.get(m).copied())
        });
        let source = match (kind, declared) {
            (TrackKind::Audio, _) => TrackSource::Microphone,
            (TrackKind::Video, Some(TrackSource::Screen)) => TrackSource::Screen,
            (TrackKind::Video, _) => TrackSource::Camera,
        };
        let video_codec = VideoCodec::from_mime(&codec.mime_type);
        if kind == TrackKind::Video && video_codec.is_none() {
            tracing::warn!(%participant, mime = %codec.mime_type, "unsupported video codec; not forwarded");
            return;
        }
        let Some(room) = self.participants.get(&participant).map(|p| p.room.clone()) else {
            return;
        };
        // Every layer the offer declares exists from the start, so that a subscriber starts
        // on the lowest one even when a higher layer's packets happen to arrive first.
        let declared = self.conns[key]
            .pc
            .rtp_receiver(receiver_id)
            .map_or(0, |r| r.track().codings().len())
            .clamp(1, MAX_LAYERS);
        let layers = (0..declared as u8)
            .map(|r| new_layer(r, if r == rank { ssrc } else { UNKNOWN_SSRC }))
            .collect();
        let track = self.tracks.insert(PublishedTrack {
            publisher: participant,
            room: room.clone(),
            conn: key,
            receiver_id,
            kind,
            source,
            codec,
            red_pt,
            video_codec,
            layers,
            audio_level_id,
            activity: AudioActivity::default(),
            downtracks: Vec::new(),
        });
        self.track_by_ssrc.insert((key, ssrc), (track, rank));
        if let Some(p) = self.participants.get_mut(&participant) {
            p.published.push(track);
        }
        self.metrics.tracks.inc();
        tracing::info!(%participant, ?kind, ?source, ssrc, rank, "track published");
        let subscribers: Vec<(ParticipantId, Subscription)> = self
            .participants
            .iter()
            .filter(|(id, p)| **id != participant && p.room == room)
            .filter_map(|(id, p)| {
                p.receives
                    .iter()
                    .find(|s| s.publisher == participant && s.wants(source))
                    .map(|s| (*id, *s))
            })
            .collect();
        for (s, sub) in subscribers {
            for pin in pins(&self.tracks[track], &sub) {
                if let Err(e) = self.add_downtrack(now, track, s, &sub, pin) {
                    tracing::warn!(subscriber = %s, "cannot add downtrack: {e}");
                }
            }
        }
    }

    /// The forwarding hot path: one publisher packet to every downtrack on its layer.
    pub(super) fn on_rtp(&mut self, now: Instant, key: usize, packet: rtp::Packet) {
        let Some(&(track, rank)) = self.track_by_ssrc.get(&(key, packet.header.ssrc)) else {
            return;
        };
        self.metrics.packets_in += 1;
        // Padding-only packets (bandwidth probes) carry nothing a subscriber needs; they must
        // not take a number either (issue 14).
        if packet.payload.is_empty() {
            self.on_padding(now, track, &packet);
            return;
        }
        let t = &mut self.tracks[track];
        // VP8: where the counters a layer switch must keep continuous are, and the temporal
        // layer (see `vp8.rs`, `temporal.rs`).
        let vp8 = if t.video_codec == Some(crate::keyframe::VideoCodec::Vp8) {
            crate::vp8::parse(&packet.payload)
        } else {
            None
        };
        if let Some(l) = t.layer_mut(rank) {
            l.meter
                .on_packet(now, packet.payload.len(), vp8.and_then(|d| d.tid));
        }
        let keyframe_start = t
            .video_codec
            .is_some_and(|c| c.is_keyframe_start(&packet.payload));
        // Where a downtrack may start or change layer: any audio packet, a video keyframe.
        let switch_point = keyframe_start || t.video_codec.is_none();
        let audio_level = t
            .audio_level_id
            .and_then(|id| crate::audio_level::find(&packet.header, id));
        if let Some(level) = &audio_level
            && let Some(speaking) = t.activity.observe(level.first().copied())
        {
            let publisher = t.publisher;
            if let Some(p) = self.participants.get(&publisher)
                && p.events
                    .try_send(MediaEvent::Speaking { speaking })
                    .is_err()
            {
                tracing::debug!(%publisher, "speaking event dropped: queue full");
            }
        }
        // RED from the publisher: its primary, once per packet, for subscribers without RED.
        let red = t.red_pt == Some(packet.header.payload_type);
        self.vp8_rewrites.clear();
        let (ssrc, seq) = (packet.header.ssrc, packet.header.sequence_number);
        let mut primary = None;
        let mut wants_keyframe = false;
        let incoming = Incoming {
            rank,
            ssrc,
            seq,
            ts: packet.header.timestamp,
            switch_point,
            keyframe_start,
            vp8: vp8.as_ref(),
            red,
        };
        for (index, d) in t.downtracks.iter_mut().enumerate() {
            let (Some(bound), true) = (d.bound, d.active) else {
                continue;
            };
            let Some(conn) = self.conns.get_mut(d.conn) else {
                continue;
            };
            let decision = d.decide(now, &incoming, conn.connected, || {
                primary
                    .get_or_insert_with(|| crate::red::primary(&packet.payload))
                    .is_none()
            });
            let rewrite = match decision {
                Decision::Ignore => continue,
                Decision::WantsKeyframe => {
                    wants_keyframe = true;
                    continue;
                }
                Decision::Skip { fill } => {
                    if let Some(fill) = fill
                        && write_padding(now, conn, d, &bound, fill)
                    {
                        queue_drain(conn, d.conn, &mut self.dirty);
                    }
                    continue;
                }
                Decision::Forward {
                    rewrite,
                    switched_from,
                } => {
                    match switched_from {
                        Some(Some(from)) if from < rank => self.metrics.layer_switches_up += 1,
                        Some(Some(_)) => self.metrics.layer_switches_down += 1,
                        _ => {}
                    }
                    if let Some(from) = switched_from {
                        // Beside the allocation log: when a chosen layer took effect.
                        tracing::debug!(target: "sfu::worker::allocate", conn = d.conn, ?from, to = rank, "switched");
                    }
                    rewrite
                }
            };
            let (payload_type, payload) = match (red, bound.red_payload_type) {
                (false, _) => match &vp8 {
                    Some(desc) => {
                        let offsets = d.vp8.offsets(desc, rewrite.switched);
                        let p = self.vp8_rewrites.get(&packet.payload, desc, offsets);
                        (bound.payload_type, p)
                    }
                    None => (bound.payload_type, packet.payload.clone()),
                },
                (true, Some(red_pt)) => (red_pt, packet.payload.clone()),
                (true, None) => {
                    let p = primary.get_or_insert_with(|| crate::red::primary(&packet.payload));
                    match p {
                        Some(p) => (bound.payload_type, p.clone()),
                        None => {
                            d.forwarder.unsend(ssrc, seq, &rewrite);
                            continue;
                        }
                    }
                }
            };
            let mut header = rtp::header::Header {
                version: 2,
                padding: false,
                marker: packet.header.marker,
                payload_type,
                sequence_number: rewrite.seq,
                timestamp: rewrite.ts,
                ssrc: d.ssrc,
                csrc: Vec::new(),
                ..Default::default()
            };
            crate::audio_level::set_forwarded(
                &mut header,
                audio_level.as_ref(),
                bound.audio_level_id,
            );
            let out = rtp::Packet { header, payload };
            let Some(mut sender) = conn.pc.rtp_sender(d.sender_id) else {
                d.forwarder.unsend(ssrc, seq, &rewrite);
                continue;
            };
            match sender.write_rtp(now, out) {
                Ok(()) => {
                    self.metrics.packets_out += 1;
                    d.frame_open = !packet.header.marker;
                    // A frame ended: where a probe's padding may go (see `probe.rs`).
                    if packet.header.marker && conn.allocation.prober.running() {
                        pad_probe(now, conn, d, &bound, (track, index));
                    }
                    queue_drain(conn, d.conn, &mut self.dirty);
                }
                Err(e) => {
                    // Its number goes to the next packet: a refused write is no loss.
                    d.forwarder.unsend(ssrc, seq, &rewrite);
                    self.metrics.write_errors += 1;
                    tracing::trace!(subscriber = %d.subscriber, "write_rtp: {e}");
                }
            }
        }
        if wants_keyframe {
            self.request_keyframe(now, track, rank);
        }
    }
}

impl WorkerCore {
    /// The pacing timer of a probe cluster on connection `key`: pads its video if no frame is
    /// half sent, and comes back in [`crate::probe::PACE`] while the cluster runs.
    pub(super) fn pace_probe(&mut self, now: Instant, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some((track, index)) = conn.allocation.prober.padding(now) else {
            return;
        };
        if let Some(d) = self
            .tracks
            .get_mut(track)
            .and_then(|t| t.downtracks.get_mut(index))
            .filter(|d| d.conn == key && d.active && !d.frame_open && conn.connected)
            && let Some(bound) = d.bound
        {
            pad_probe(now, conn, d, &bound, (track, index));
            queue_drain(conn, key, &mut self.dirty);
        }
        self.timers.push(std::cmp::Reverse((
            now + crate::probe::PACE,
            super::Timer::Pace(key),
        )));
    }

    /// A padding-only packet (Chromium's bandwidth probing, on the media SSRC when RTX is not
    /// negotiated): no subscriber gets it, and each downtrack on its layer closes its numbering
    /// over it. Only a late one whose number was already reserved goes out, as padding.
    fn on_padding(&mut self, now: Instant, track: usize, packet: &rtp::Packet) {
        let (ssrc, seq, ts) = (
            packet.header.ssrc,
            packet.header.sequence_number,
            packet.header.timestamp,
        );
        for d in self.tracks[track].downtracks.iter_mut() {
            let Some(fill) = d.forwarder.skip(ssrc, seq, ts) else {
                continue;
            };
            let (Some(bound), Some(conn)) = (d.bound, self.conns.get_mut(d.conn)) else {
                continue;
            };
            if conn.connected && write_padding(now, conn, d, &bound, fill) {
                queue_drain(conn, d.conn, &mut self.dirty);
            }
        }
    }
}

/// Sends a padding-only packet numbered `fill`, for a number reserved for a late packet the
/// subscriber does not get, so that it sees no hole. Returns whether it was written.
fn write_padding(
    now: Instant,
    conn: &mut Conn,
    d: &DownTrack,
    bound: &Bound,
    fill: Rewrite,
) -> bool {
    let Some(mut sender) = conn.pc.rtp_sender(d.sender_id) else {
        return false;
    };
    let header = rtp::header::Header {
        version: 2,
        padding: true,
        payload_type: bound.payload_type,
        sequence_number: fill.seq,
        timestamp: fill.ts,
        ssrc: d.ssrc,
        ..Default::default()
    };
    sender
        .write_rtp(
            now,
            rtp::Packet {
                header,
                payload: Default::default(),
            },
        )
        .is_ok()
}

/// Sends the padding a running probe cluster owes after a frame of `d` (see `probe.rs`):
/// padding-only packets numbered after the frame, their bytes in a header extension.
fn pad_probe(
    now: Instant,
    conn: &mut Conn,
    d: &mut DownTrack,
    bound: &Bound,
    downtrack: crate::probe::PaddedDowntrack,
) {
    let Some(estimate) = &conn.estimate else {
        return;
    };
    let (queue_over, decreases) = (estimate.queue_over(), estimate.snapshot().decreases);
    let due = conn
        .allocation
        .prober
        .padding_due(now, downtrack, queue_over, decreases);
    for _ in 0..due {
        let Some(rewrite) = d.forwarder.pad() else {
            return;
        };
        let Some(mut sender) = conn.pc.rtp_sender(d.sender_id) else {
            return;
        };
        let mut header = rtp::header::Header {
            version: 2,
            padding: true,
            payload_type: bound.payload_type,
            sequence_number: rewrite.seq,
            timestamp: rewrite.ts,
            ssrc: d.ssrc,
            ..Default::default()
        };
        if header
            .set_extension(
                crate::probe::PADDING_EXTENSION_ID,
                bytes::Bytes::from_static(&PROBE_FILL),
            )
            .is_err()
        {
            return;
        }
        let packet = rtp::Packet {
            header,
            payload: Default::default(),
        };
        // A refused write leaves a hole the subscriber may NACK; none expected (the same
        // sender just took the frame), so no number is given back.
        if let Err(e) = sender.write_rtp(now, packet) {
            tracing::trace!(subscriber = %d.subscriber, "probe padding refused: {e}");
            return;
        }
    }
}

static PROBE_FILL: [u8; crate::probe::PADDING_EXTENSION_BYTES] =
    [0; crate::probe::PADDING_EXTENSION_BYTES];

/// Queues `conn` (worker key `key`) for draining, once.
fn queue_drain(conn: &mut Conn, key: usize, dirty: &mut Vec<usize>) {
    if !conn.dirty {
        conn.dirty = true;
        dirty.push(key);
    }
}

fn new_layer(rank: u8, ssrc: u32) -> Layer {
    Layer {
        rank,
        ssrc,
        keyframes: KeyframeRequests::default(),
        meter: LayerMeter::default(),
    }
}
