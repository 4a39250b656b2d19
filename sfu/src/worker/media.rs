//! Published tracks, their downtracks, and the forwarding path.
//!
//! A published track owns its downtracks (one per subscriber that receives it): fan-out is a
//! loop over a `Vec` in one thread. Each downtrack's [`Forwarder`] decides the sequence number
//! and timestamp; the payload `Bytes` is shared, never copied, before SRTP.

use std::cmp::Reverse;
use std::time::Instant;

use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};

use super::conn::{AUDIO_LEVEL_URI, internal, rtc_sdp_error};
use super::{Timer, Worker};
use crate::api::{ConnState, MediaEvent, ParticipantId, PcKind, SfuError, TrackKind, TrackSource};
use crate::audio_level::AudioActivity;
use crate::forwarder::{Drop, Forwarder};
use crate::keyframe::VideoCodec;
use crate::keyframe_requests::KeyframeRequests;

pub(crate) struct PublishedTrack {
    pub publisher: ParticipantId,
    pub room: String,
    pub conn: usize,
    pub receiver_id: RTCRtpReceiverId,
    pub kind: TrackKind,
    pub source: TrackSource,
    pub codec: RTCRtpCodec,
    pub video_codec: Option<VideoCodec>,
    pub media_ssrc: u32,
    /// The publisher's extension id for the audio level, if negotiated.
    pub audio_level_id: Option<u8>,
    pub keyframes: KeyframeRequests,
    pub activity: AudioActivity,
    pub downtracks: Vec<DownTrack>,
}

pub(crate) struct DownTrack {
    /// Paused downtracks stay negotiated but forward nothing, so routing changes that come and
    /// go (the floor passing between points) need no renegotiation.
    pub active: bool,
    pub subscriber: ParticipantId,
    pub conn: usize,
    pub sender_id: RTCRtpSenderId,
    pub transceiver: rtc::rtp_transceiver::RTCRtpTransceiverId,
    pub ssrc: u32,
    /// Known once the subscriber answered an offer containing this track.
    pub bound: Option<Bound>,
    pub forwarder: Forwarder,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound {
    pub payload_type: u8,
    pub audio_level_id: Option<u8>,
}

impl Worker {
    pub(super) fn publish_offer(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        sdp: String,
    ) -> Result<String, SfuError> {
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
                if let Ok(candidate) = self.factory.local_candidate() {
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
                self.conns[key].connected = state == ConnState::Connected;
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
        let kind = match receiver.track().kind() {
            RtpCodecKind::Audio => TrackKind::Audio,
            RtpCodecKind::Video => TrackKind::Video,
            _ => return,
        };
        let Some(codec) = receiver.track().codec(ssrc).cloned() else {
            tracing::warn!(%participant, ssrc, "track without a codec; ignored");
            return;
        };
        let audio_level_id = receiver
            .get_parameters()
            .rtp_parameters
            .header_extensions
            .iter()
            .find(|h| h.uri == AUDIO_LEVEL_URI)
            .and_then(|h| u8::try_from(h.id).ok());
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
        let track = self.tracks.insert(PublishedTrack {
            publisher: participant,
            room: room.clone(),
            conn: key,
            receiver_id,
            kind,
            source,
            codec,
            video_codec,
            media_ssrc: ssrc,
            audio_level_id,
            keyframes: KeyframeRequests::default(),
            activity: AudioActivity::default(),
            downtracks: Vec::new(),
        });
        self.track_by_ssrc.insert((key, ssrc), track);
        if let Some(p) = self.participants.get_mut(&participant) {
            p.published.push(track);
        }
        self.metrics.tracks.inc();
        tracing::info!(%participant, ?kind, ?source, ssrc, "track published");
        let subscribers: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|(id, p)| {
                **id != participant
                    && p.room == room
                    && p.receives
                        .iter()
                        .any(|s| s.publisher == participant && s.wants(source))
            })
            .map(|(id, _)| *id)
            .collect();
        for s in subscribers {
            if let Err(e) = self.add_downtrack(now, track, s) {
                tracing::warn!(subscriber = %s, "cannot add downtrack: {e}");
            }
        }
    }

    /// The forwarding hot path: one publisher packet to every bound downtrack.
    pub(super) fn on_rtp(&mut self, now: Instant, key: usize, packet: rtp::Packet) {
        let Some(&track) = self.track_by_ssrc.get(&(key, packet.header.ssrc)) else {
            return;
        };
        self.metrics.packets_in += 1;
        // Padding-only packets (bandwidth probes) carry nothing a subscriber needs.
        if packet.payload.is_empty() {
            return;
        }
        let t = &mut self.tracks[track];
        let keyframe_start = t
            .video_codec
            .is_some_and(|c| c.is_keyframe_start(&packet.payload));
        let audio_level = t.audio_level_id.and_then(|id| {
            packet
                .header
                .extensions
                .iter()
                .find(|e| e.id == id)
                .map(|e| e.payload.clone())
        });
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
        let mut wants_keyframe = false;
        for d in t.downtracks.iter_mut() {
            let Some(bound) = d.bound else {
                continue;
            };
            if !d.active {
                continue;
            }
            let Some(conn) = self.conns.get_mut(d.conn) else {
                continue;
            };
            if !conn.connected {
                continue;
            }
            let rewrite = match d.forwarder.forward(
                now,
                packet.header.ssrc,
                packet.header.sequence_number,
                packet.header.timestamp,
                keyframe_start,
            ) {
                Ok(r) => r,
                Err(Drop::AwaitingKeyframe) => {
                    wants_keyframe = true;
                    continue;
                }
                Err(Drop::StaleSource) => continue,
            };
            let extensions = match (&audio_level, bound.audio_level_id) {
                (Some(level), Some(id)) => vec![rtp::header::Extension {
                    id,
                    payload: level.clone(),
                }],
                _ => Vec::new(),
            };
            let out = rtp::Packet {
                header: rtp::header::Header {
                    version: 2,
                    padding: false,
                    extension: !extensions.is_empty(),
                    marker: packet.header.marker,
                    payload_type: bound.payload_type,
                    sequence_number: rewrite.seq,
                    timestamp: rewrite.ts,
                    ssrc: d.ssrc,
                    csrc: Vec::new(),
                    extension_profile: if extensions.is_empty() {
                        0
                    } else {
                        rtp::header::EXTENSION_PROFILE_ONE_BYTE
                    },
                    extensions,
                    ..Default::default()
                },
                payload: packet.payload.clone(),
            };
            let Some(mut sender) = conn.pc.rtp_sender(d.sender_id) else {
                continue;
            };
            match sender.write_rtp(now, out) {
                Ok(()) => {
                    self.metrics.packets_out += 1;
                    if !conn.dirty {
                        conn.dirty = true;
                        self.dirty.push(d.conn);
                    }
                }
                Err(e) => {
                    self.metrics.write_errors += 1;
                    tracing::trace!(subscriber = %d.subscriber, "write_rtp: {e}");
                }
            }
        }
        if wants_keyframe {
            self.request_keyframe(now, track);
        }
    }

    /// RTCP the application sees: keyframe requests and receiver reports (see `conn.rs`).
    pub(super) fn on_rtcp(&mut self, now: Instant, key: usize, packets: &[Box<dyn rtcp::Packet>]) {
        for p in packets {
            let any = p.as_any();
            if let Some(nack) = any.downcast_ref::<
                rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack,
            >() {
                self.metrics.nacked_packets += nack
                    .nacks
                    .iter()
                    .map(|p| 1 + u64::from(p.lost_packets.count_ones()))
                    .sum::<u64>();
                continue;
            }
            if let Some(rr) = any.downcast_ref::<rtc::rtcp::receiver_report::ReceiverReport>() {
                if let Some(c) = self.conns.get_mut(key) {
                    let ntp_now = crate::rtt::ntp_middle_now();
                    for r in &rr.reports {
                        c.reported_loss = c.reported_loss.max(f64::from(r.fraction_lost) / 256.0);
                        if let Some(sample) =
                            crate::rtt::from_report(ntp_now, r.last_sender_report, r.delay)
                        {
                            // Smoothed like TCP's SRTT, so one late report does not flip the icon.
                            c.rtt = Some(c.rtt.map_or(sample, |old| old * 0.75 + sample * 0.25));
                        }
                    }
                }
                continue;
            }
            let media_ssrc = if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                pli.media_ssrc
            } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                fir.fir.first().map(|e| e.ssrc).unwrap_or(fir.media_ssrc)
            } else {
                continue;
            };
            if let Some(&track) = self.track_by_down_ssrc.get(&(key, media_ssrc)) {
                self.metrics.keyframe_requests_in += 1;
                self.request_keyframe(now, track);
            }
        }
    }

    pub(super) fn request_keyframe(&mut self, now: Instant, track: usize) {
        let Some(t) = self.tracks.get_mut(track) else {
            return;
        };
        if t.kind != TrackKind::Video {
            return;
        }
        if t.keyframes.request(now) {
            self.send_pli(now, track);
        } else if let Some(at) = t.keyframes.poll_timeout() {
            self.timers.push(Reverse((at, Timer::Keyframe(track))));
        }
    }

    pub(super) fn keyframe_timer(&mut self, now: Instant, track: usize) {
        if let Some(t) = self.tracks.get_mut(track)
            && t.keyframes.handle_timeout(now)
        {
            self.send_pli(now, track);
        }
    }

    fn send_pli(&mut self, now: Instant, track: usize) {
        let t = &self.tracks[track];
        let (key, receiver_id, media_ssrc) = (t.conn, t.receiver_id, t.media_ssrc);
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Some(mut receiver) = c.pc.rtp_receiver(receiver_id) else {
            return;
        };
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        if let Err(e) = receiver.write_rtcp(now, vec![Box::new(pli)]) {
            tracing::debug!("write PLI: {e}");
            return;
        }
        self.metrics.plis_sent.inc();
        self.mark_dirty(key);
    }

    pub(super) fn request_keyframes_for_subscriber(&mut self, now: Instant, sub_key: usize) {
        let tracks: Vec<usize> = self
            .tracks
            .iter()
            .filter(|(_, t)| {
                t.kind == TrackKind::Video && t.downtracks.iter().any(|d| d.conn == sub_key)
            })
            .map(|(k, _)| k)
            .collect();
        for t in tracks {
            self.request_keyframe(now, t);
        }
    }
}
