//! Which subscriber receives which published track: downtracks created, paused, resumed and
//! removed as the room's routing changes, and bound to what each subscriber negotiated.

use std::time::Instant;

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_RTX;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverId};

use super::WorkerCore;
use super::conn::{AUDIO_LEVEL_URI, internal};
use super::track::{Bound, DownTrack};
use crate::api::{ParticipantId, PcKind, SfuError, Subscription, TrackKind};
use crate::forwarder::Forwarder;

/// Paused downtracks a subscriber keeps negotiated, most recently paused first: resuming one is
/// a keyframe away, with no renegotiation (the floor passing back, the chair scrolling back a
/// little). Older ones release their m-line for the next track of the kind, so a subscribe
/// connection carries at most what is routed now plus this many, however many tracks it was
/// ever routed (issue 10, item 4: a chair scrolling 120 thumbnails).
pub(crate) const MAX_PAUSED_DOWNTRACKS: usize = 8;

impl WorkerCore {
    /// Routing decision from the room: `participant` receives exactly `subscriptions`.
    pub(super) fn set_receives(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        subscriptions: Vec<Subscription>,
    ) {
        let Some(p) = self.participants.get_mut(&participant) else {
            return;
        };
        p.receives = subscriptions;
        let room = p.room.clone();
        let receives = p.receives.clone();
        let keys: Vec<usize> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.room == room && t.publisher != participant)
            .map(|(k, _)| k)
            .collect();
        let mut new = Vec::new();
        for k in keys {
            let t = &self.tracks[k];
            let wanted = receives
                .iter()
                .find(|s| s.publisher == t.publisher && s.wants(t.source))
                .copied();
            // One downtrack, or one per layer for a subscriber that receives every layer.
            let pins = wanted.map_or_else(Vec::new, |sub| pins(t, &sub));
            let mine: Vec<(usize, Option<u8>)> = t
                .downtracks
                .iter()
                .enumerate()
                .filter(|(_, d)| d.subscriber == participant)
                .map(|(i, d)| (i, d.pinned))
                .collect();
            for &pin in pins.iter().filter(|p| !mine.iter().any(|m| m.1 == **p)) {
                new.extend(wanted.map(|sub| (k, sub, pin)));
            }
            for (i, pin) in mine {
                self.reroute(now, k, i, wanted.filter(|_| pins.contains(&pin)));
            }
        }
        // Free m-lines first. While freed m-lines wait for the client to see them inactive, the
        // new tracks wait too (one offer and answer), then take them (`subscribe_answer` routes
        // again): the SDP stays bounded by what is routed plus the paused cache, instead of
        // adding m-lines for tracks that a moment later could have reused freed ones.
        self.release_paused(participant);
        let retiring = self
            .participants
            .get(&participant)
            .and_then(|p| p.subscribe)
            .and_then(|k| self.conns.get(k))
            .is_some_and(|c| !c.retiring.is_empty() || !c.retired.is_empty());
        if retiring && !new.is_empty() {
            tracing::debug!(subscriber = %participant, tracks = new.len(), "new tracks wait for freed m-lines");
            return;
        }
        for (k, sub, pin) in new {
            if let Err(e) = self.add_downtrack(now, k, participant, &sub, pin) {
                tracing::warn!(subscriber = %participant, "cannot add downtrack: {e}");
            }
        }
    }

    /// Applies a routing decision to the existing downtrack `i` of `track`: its layer policy,
    /// and a pause or a resume.
    fn reroute(&mut self, now: Instant, track: usize, i: usize, wanted: Option<Subscription>) {
        let t = &mut self.tracks[track];
        let lowest = t.lowest_rank();
        let source = t.source;
        let is_video = t.kind == TrackKind::Video;
        let d = &mut t.downtracks[i];
        if let Some(sub) = &wanted
            && d.pinned.is_none()
        {
            // A thumbnail becoming the floor holder (or back): the allocator moves it at its
            // next tick.
            (d.max_rank, d.priority) = sub.layer_policy(source);
        }
        if d.active == wanted.is_some() {
            return;
        }
        d.active = wanted.is_some();
        d.paused_at = (!d.active).then_some(now);
        // Resume on a keyframe of the lowest layer (or of its own, for a pinned one),
        // continuing the subscriber's numbering; the allocator steps it up from there.
        let start = d.pinned.unwrap_or(lowest);
        d.forwarder.reset_source();
        d.current = None;
        d.target = Some(start);
        if d.active && is_video {
            self.request_keyframe(now, track, start);
        }
    }

    /// Removes `subscriber`'s paused downtracks beyond the [`MAX_PAUSED_DOWNTRACKS`] most
    /// recently paused, releasing their m-lines.
    fn release_paused(&mut self, subscriber: ParticipantId) {
        let mut paused: Vec<(Option<Instant>, usize, Option<u8>)> = self
            .tracks
            .iter()
            .flat_map(|(k, t)| {
                t.downtracks
                    .iter()
                    .filter(|d| d.subscriber == subscriber && !d.active)
                    .map(move |d| (d.paused_at, k, d.pinned))
            })
            .collect();
        if paused.len() <= MAX_PAUSED_DOWNTRACKS {
            return;
        }
        // Newest first (a pause time never set sorts last); ties, paused by one decision, by
        // track key and layer.
        paused.sort_by(|a, b| b.cmp(a));
        for (_, track, pin) in paused.split_off(MAX_PAUSED_DOWNTRACKS) {
            self.remove_downtrack(track, subscriber, pin);
        }
    }

    pub(super) fn add_downtrack(
        &mut self,
        now: Instant,
        track: usize,
        subscriber: ParticipantId,
        sub: &Subscription,
        pin: Option<u8>,
    ) -> Result<(), SfuError> {
        let sub_key = match self.participants.get(&subscriber).and_then(|p| p.subscribe) {
            Some(k) => k,
            None => {
                let k = self.new_conn(now, subscriber, PcKind::Subscribe)?;
                if let Some(p) = self.participants.get_mut(&subscriber) {
                    p.subscribe = Some(k);
                    p.negotiation.fresh_conn = true;
                }
                k
            }
        };
        let t = &self.tracks[track];
        let ssrc = self.fresh_down_ssrc(sub_key, None);
        // Video is repaired on an RTX stream of its own (see `conn::media_engine`); `rtc` drops
        // it from the sender if the subscriber's answer has no RTX.
        let rtx_refused = self.conns.get(sub_key).is_some_and(|c| c.rtx_refused);
        let rtx = (t.kind == TrackKind::Video && !rtx_refused).then(|| RTCRtpRtxParameters {
            ssrc: self.fresh_down_ssrc(sub_key, Some(ssrc)),
        });
        let (kind, label) = match t.kind {
            TrackKind::Audio => (RtpCodecKind::Audio, "audio"),
            TrackKind::Video => (RtpCodecKind::Video, "video"),
        };
        let stream_id = t.publisher.to_string();
        // A pinned layer's track id names its layer: one stream, one track per layer.
        let layer = pin.map_or_else(String::new, |r| format!("-l{r}"));
        let media_track = MediaStreamTrack::new(
            stream_id.clone(),
            format!("{}-{label}-{track}{layer}", t.publisher),
            format!("{}-{label}", t.publisher),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    rtx,
                    ..Default::default()
                },
                codec: t.codec.clone(),
                active: true,
                ..Default::default()
            }],
        );
        let is_video = t.kind == TrackKind::Video;
        let clock_rate = t.codec.clock_rate;
        let (max_rank, priority) = match pin {
            Some(rank) => (rank, sub.layer_policy(t.source).1),
            None => sub.layer_policy(t.source),
        };
        let lowest = t.lowest_rank();
        let (transceiver, sender_id) =
            add_sendonly(&mut self.conns[sub_key].pc, media_track, stream_id)?;
        self.tracks[track].downtracks.push(DownTrack {
            active: true,
            paused_at: None,
            subscriber,
            conn: sub_key,
            sender_id,
            transceiver,
            ssrc,
            offered_in: None,
            bound: None,
            forwarder: Forwarder::new(is_video, clock_rate, rand::random(), rand::random()),
            vp8: Default::default(),
            max_rank,
            priority,
            current: None,
            frame_open: false,
            // Every video starts on its lowest layer: it is the first to decode on any link.
            target: Some(pin.unwrap_or(lowest)),
            floor: Default::default(),
            temporal: Default::default(),
            pinned: pin,
        });
        self.track_by_down_ssrc.insert((sub_key, ssrc), track);
        self.renegotiate(subscriber);
        Ok(())
    }

    /// A random SSRC that no downtrack of connection `conn` has for media (nor `other`, taken
    /// in this same step), so that the subscriber's feedback names one stream. (An RTX SSRC
    /// is not looked up by the worker; a clash with one is a 2^-32 chance per track.)
    fn fresh_down_ssrc(&self, conn: usize, other: Option<u32>) -> u32 {
        loop {
            let s = rand::random::<u32>();
            if s != 0 && Some(s) != other && !self.track_by_down_ssrc.contains_key(&(conn, s)) {
                return s;
            }
        }
    }

    /// Stops forwarding `track` to `subscriber` and retires its m-line: inactive in the next
    /// offer, still holding its sender so that no track takes it in that same offer. Only once
    /// the client answered that offer does `remove_track` free it for the next track of the
    /// kind (see `add_sendonly`, `free_retired`): a client never sees an m-line switch from one
    /// sender to another in one offer, which would ask its receiver to swap stream and SSRC
    /// in place (issue 10, item 4: suspected in a Chromium chair that lost a point's picture
    /// walking a 120-point grid).
    fn remove_downtrack(&mut self, track: usize, subscriber: ParticipantId, pin: Option<u8>) {
        let t = &mut self.tracks[track];
        let Some(i) = t
            .downtracks
            .iter()
            .position(|d| d.subscriber == subscriber && d.pinned == pin)
        else {
            return;
        };
        let d = t.downtracks.swap_remove(i);
        self.track_by_down_ssrc.remove(&(d.conn, d.ssrc));
        if let Some(c) = self.conns.get_mut(d.conn) {
            if let Some(mut tr) = c.pc.rtp_transceiver(d.transceiver) {
                tr.set_direction(RTCRtpTransceiverDirection::Inactive);
            }
            c.retiring.push(d.sender_id);
        }
        self.renegotiate(subscriber);
    }

    /// The subscribe offer `revision` of connection `key` was answered: the m-lines it showed
    /// retired lose their sender, free for the next track of their kind. Returns how many.
    pub(super) fn free_retired(&mut self, key: usize, revision: u64) -> usize {
        let Some(c) = self.conns.get_mut(key) else {
            return 0;
        };
        let (done, waiting): (Vec<_>, Vec<_>) =
            c.retired.drain(..).partition(|(r, _)| *r <= revision);
        c.retired = waiting;
        for (_, sender) in &done {
            if let Err(e) = c.pc.remove_track(*sender) {
                tracing::debug!("remove_track: {e}");
            }
        }
        done.len()
    }

    /// After a renegotiation: tracks whose m-line the publisher made inactive (a stopped screen
    /// share) are unpublished, so subscribers' next offer drops them. A share started again on
    /// the same m-line publishes anew on its first packet.
    pub(super) fn unpublish_stopped(&mut self, now: Instant, key: usize) {
        let stopped: Vec<usize> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.conn == key)
            .filter(|(_, t)| {
                let pc = &mut self.conns[key].pc;
                let ids: Vec<_> = pc.get_transceivers().collect();
                ids.into_iter().any(|id| {
                    pc.rtp_transceiver(id).is_some_and(|tr| {
                        tr.receiver() == Some(t.receiver_id)
                            && matches!(
                                tr.current_direction(),
                                RTCRtpTransceiverDirection::Inactive
                                    | RTCRtpTransceiverDirection::Sendonly
                            )
                    })
                })
            })
            .map(|(k, _)| k)
            .collect();
        for track in stopped {
            tracing::info!(publisher = %self.tracks[track].publisher, "track stopped by renegotiation");
            if let Some(p) = self.participants.get_mut(&self.tracks[track].publisher) {
                p.published.retain(|t| *t != track);
            }
            self.unpublish(now, track);
        }
    }

    pub(super) fn unpublish(&mut self, _now: Instant, track: usize) {
        if !self.tracks.contains(track) {
            return;
        }
        let downtracks: Vec<(ParticipantId, Option<u8>)> = self.tracks[track]
            .downtracks
            .iter()
            .map(|d| (d.subscriber, d.pinned))
            .collect();
        for (s, pin) in downtracks {
            self.remove_downtrack(track, s, pin);
        }
        let t = self.tracks.remove(track);
        for l in &t.layers {
            self.track_by_ssrc.remove(&(t.conn, l.ssrc));
        }
        self.metrics.tracks.dec();
    }

    /// After the answer to subscribe offer `revision`: learn the payload type and extension ids
    /// of each downtrack that offer (or an earlier one) carried.
    pub(super) fn bind_downtracks(&mut self, sub_key: usize, revision: u64) {
        let conns = &mut self.conns;
        for (_, t) in self.tracks.iter_mut() {
            for d in t
                .downtracks
                .iter_mut()
                .filter(|d| d.conn == sub_key && d.offered_in.is_some_and(|r| r <= revision))
            {
                let Some(c) = conns.get_mut(sub_key) else {
                    continue;
                };
                let Some(mut sender) = c.pc.rtp_sender(d.sender_id) else {
                    continue;
                };
                let params = &sender.get_parameters().rtp_parameters;
                let pt = params
                    .codecs
                    .iter()
                    .find(|c| {
                        c.rtp_codec
                            .mime_type
                            .eq_ignore_ascii_case(&t.codec.mime_type)
                            && c.rtp_codec.sdp_fmtp_line == t.codec.sdp_fmtp_line
                    })
                    .or_else(|| {
                        params.codecs.iter().find(|c| {
                            c.rtp_codec
                                .mime_type
                                .eq_ignore_ascii_case(&t.codec.mime_type)
                        })
                    })
                    .map(|c| c.payload_type);
                let red_payload_type = (t.kind == TrackKind::Audio)
                    .then(|| {
                        params.codecs.iter().find(|c| {
                            c.rtp_codec
                                .mime_type
                                .eq_ignore_ascii_case(crate::red::MIME_TYPE_RED)
                        })
                    })
                    .flatten()
                    .map(|c| c.payload_type);
                if t.kind == TrackKind::Video
                    && !params
                        .codecs
                        .iter()
                        .any(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_RTX))
                {
                    c.rtx_refused = true;
                }
                let audio_level_id = params
                    .header_extensions
                    .iter()
                    .find(|h| h.uri == AUDIO_LEVEL_URI)
                    .and_then(|h| u8::try_from(h.id).ok());
                match pt {
                    Some(payload_type) => {
                        d.bound = Some(Bound {
                            payload_type,
                            red_payload_type,
                            audio_level_id,
                        })
                    }
                    None => {
                        tracing::warn!(subscriber = %d.subscriber, mime = %t.codec.mime_type, "subscriber did not accept the codec");
                    }
                }
            }
        }
    }
}

/// The layers a subscription takes of `t`, one downtrack each: `[None]` (one downtrack, the
/// layer the allocator picks), or for a subscriber that receives every layer, each layer of a
/// video pinned to a downtrack of its own.
pub(super) fn pins(t: &super::track::PublishedTrack, sub: &Subscription) -> Vec<Option<u8>> {
    if sub.every_layer && t.kind == TrackKind::Video {
        t.layers.iter().map(|l| Some(l.rank)).collect()
    } else {
        vec![None]
    }
}

/// Adds `track` to a subscribe connection as a sendonly m-line, reusing an m-line of the same
/// kind freed by a removed track when there is one (as LiveKit and mediasoup do), so that the
/// connection's SDP grows with what is routed at once, not with every track ever routed: a chair
/// whose points re-joined 46 times passed the 48 KiB SDP limit (issue 10, item 4). `rtc`'s
/// `add_track` does the reuse (the first transceiver of the kind without a sender, which is
/// what `remove_track` leaves); without one it adds a new transceiver, made sendonly here.
fn add_sendonly(
    pc: &mut RTCPeerConnection,
    track: MediaStreamTrack,
    stream_id: String,
) -> Result<(RTCRtpTransceiverId, RTCRtpSenderId), SfuError> {
    let sender = pc.add_track(track).map_err(internal)?;
    let transceiver = pc
        .get_transceivers()
        .collect::<Vec<_>>()
        .into_iter()
        .find(|id| {
            pc.rtp_transceiver(*id)
                .is_some_and(|tr| tr.sender() == Some(sender))
        })
        .ok_or_else(|| internal("add_track made no transceiver"))?;
    if let Some(mut tr) = pc.rtp_transceiver(transceiver) {
        tr.set_direction(RTCRtpTransceiverDirection::Sendonly);
    }
    if let Some(mut s) = pc.rtp_sender(sender) {
        s.set_streams(vec![stream_id]);
    }
    Ok((transceiver, sender))
}
