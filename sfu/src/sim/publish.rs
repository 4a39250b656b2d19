//! A publisher's media: one Opus track and one VP8 track in three simulcast encodings (rids
//! `q`, `h`, `f`, each its own SSRC), sent as Chromium sends them.
//!
//! `rtc` sends simulcast as one track whose encodings each carry a rid and an SSRC; the
//! application writes each encoding's packets itself with its SSRC, and must add the `mid` and
//! `rtp-stream-id` header extensions itself (the engine adds neither), with the ids negotiated
//! on the sender. The TWCC sender interceptor adds transport-wide sequence numbers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtcp;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{
    RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverId, RTCRtpTransceiverInit,
};

use super::engine::{AUDIO_LEVEL_URI, err};
use super::vp8::{LayerSpec, MediaPacket, VideoSource};

const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// What a publisher sends.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// Simulcast layers, lowest first: (rid, encoder settings).
    pub layers: Vec<(String, LayerSpec)>,
    pub audio: bool,
}

impl Default for PublisherConfig {
    /// Chromium's three layers for a 720p camera.
    fn default() -> Self {
        Self {
            layers: vec![
                ("q".to_owned(), LayerSpec::new(320, 180, 150)),
                ("h".to_owned(), LayerSpec::new(640, 360, 500)),
                ("f".to_owned(), LayerSpec::new(1280, 720, 1_200)),
            ],
            audio: true,
        }
    }
}

/// One simulcast encoding being sent.
#[derive(Debug)]
pub struct Layer {
    pub rid: String,
    pub ssrc: u32,
    pub source: Option<VideoSource>,
    pub spec: LayerSpec,
}

/// Opus every 20 ms: 80 bytes (about 32 kbit/s, what Chromium sends for speech).
#[derive(Debug)]
struct Audio {
    ssrc: u32,
    sequence_number: u16,
    start: Instant,
    frames: u64,
}

impl Audio {
    fn next_due(&self) -> Instant {
        self.start + Duration::from_millis(20) * self.frames as u32
    }
}

#[derive(Debug)]
pub struct PublishMedia {
    video_sender: RTCRtpSenderId,
    audio_sender: Option<RTCRtpSenderId>,
    pub layers: Vec<Layer>,
    audio: Option<Audio>,
    audio_ssrc: u32,
    started: bool,
    /// Video waiting for the pacer, and when it may send the next packet. Chromium paces at
    /// 2.5 times its target rate: a keyframe leaves over tens of milliseconds rather than
    /// as one burst that a 20-packet queue on the line would cut short.
    paced: VecDeque<rtp::Packet>,
    pace_at: Option<Instant>,
    pacing_bps: u64,
}

/// Chromium's pacing factor.
const PACING_FACTOR: f64 = 2.5;

/// Budget unused this long ago is lost (the pacer does not save up for bursts).
const PACE_SLACK: Duration = Duration::from_millis(5);

impl PublishMedia {
    /// Adds the tracks (sendonly transceivers, audio first as a browser's offer has them).
    pub fn add_tracks(
        pc: &mut RTCPeerConnection,
        addr: SocketAddr,
        config: PublisherConfig,
    ) -> Result<Self, String> {
        // SSRCs from the address: distinct per peer and the same on every run.
        let base = u32::from(addr.port()) << 16
            | match addr.ip() {
                std::net::IpAddr::V4(v4) => u32::from(v4.octets()[3]) << 4,
                std::net::IpAddr::V6(_) => 0,
            };
        let audio_ssrc = base | 1;
        let audio_sender = if config.audio {
            let codec = RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48_000,
                channels: 2,
                ..Default::default()
            };
            let track = MediaStreamTrack::new(
                format!("stream-{addr}"),
                format!("audio-{addr}"),
                "audio".to_owned(),
                RtpCodecKind::Audio,
                vec![encoding("", audio_ssrc, codec)],
            );
            Some(sendonly(pc, track)?)
        } else {
            None
        };
        let vp8 = RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90_000,
            ..Default::default()
        };
        let layers: Vec<Layer> = config
            .layers
            .into_iter()
            .enumerate()
            .map(|(i, (rid, spec))| Layer {
                rid,
                ssrc: base | (2 + i as u32),
                source: None,
                spec,
            })
            .collect();
        let track = MediaStreamTrack::new(
            format!("stream-{addr}"),
            format!("video-{addr}"),
            "video".to_owned(),
            RtpCodecKind::Video,
            layers
                .iter()
                .map(|l| encoding(&l.rid, l.ssrc, vp8.clone()))
                .collect(),
        );
        let video_sender = sendonly(pc, track)?;
        let total: u64 = layers.iter().map(|l| l.spec.bitrate_bps).sum();
        Ok(Self {
            paced: VecDeque::new(),
            pace_at: None,
            pacing_bps: (total as f64 * PACING_FACTOR) as u64,
            video_sender,
            audio_sender,
            layers,
            audio: None,
            audio_ssrc,
            started: false,
        })
    }

    /// Media starts once connected (Chromium's encoders start when the transport is up).
    pub fn start(&mut self, now: Instant) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        for (i, l) in self.layers.iter_mut().enumerate() {
            l.source = Some(VideoSource::new(l.spec, now, l.ssrc ^ i as u32));
        }
        if self.audio_sender.is_some() {
            self.audio = Some(Audio {
                ssrc: self.audio_ssrc,
                sequence_number: self.audio_ssrc as u16,
                start: now,
                frames: 0,
            });
        }
    }

    pub fn next_due(&self) -> Option<Instant> {
        let video = self
            .layers
            .iter()
            .filter_map(|l| l.source.as_ref().map(VideoSource::next_due));
        let pacer = self.pace_at.filter(|_| !self.paced.is_empty());
        video
            .chain(self.audio.as_ref().map(Audio::next_due))
            .chain(pacer)
            .min()
    }

    /// Answers keyframe requests: a PLI or FIR names the layer's SSRC.
    pub fn on_rtcp(&mut self, packets: &[Box<dyn rtcp::Packet>]) {
        use rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
        use rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
        for p in packets {
            let any = p.as_any();
            let ssrcs: Vec<u32> = if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                vec![pli.media_ssrc]
            } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                fir.fir.iter().map(|e| e.ssrc).collect()
            } else {
                continue;
            };
            for l in &mut self.layers {
                if let (true, Some(s)) = (ssrcs.contains(&l.ssrc), l.source.as_mut()) {
                    s.request_keyframe();
                }
            }
        }
    }

    /// Writes every frame due by `now`; returns the engine's refusals.
    pub fn send_due(&mut self, now: Instant, pc: &mut RTCPeerConnection) -> Vec<String> {
        let mut errors = Vec::new();
        let mut out: Vec<(RTCRtpSenderId, rtp::Packet)> = Vec::new();
        if let Some(ids) = Extensions::of(pc, self.video_sender) {
            for l in &mut self.layers {
                let Some(frame) = l.source.as_mut().and_then(|s| s.poll_frame(now)) else {
                    continue;
                };
                for p in frame {
                    let packet = ids.packet(l.ssrc, p, Some(&l.rid), None);
                    self.paced.push_back(packet);
                }
            }
        }
        // Release what the pacing budget allows by now.
        while !self.paced.is_empty() && self.pace_at.is_none_or(|t| t <= now) {
            let Some(packet) = self.paced.pop_front() else {
                break;
            };
            let bits = (packet.payload.len() as u64 + 40) * 8;
            let start = self
                .pace_at
                .map_or(now, |t| t.max(now.checked_sub(PACE_SLACK).unwrap_or(now)));
            self.pace_at =
                Some(start + Duration::from_nanos(bits * 1_000_000_000 / self.pacing_bps.max(1)));
            out.push((self.video_sender, packet));
        }
        if let (Some(a), Some(id)) = (self.audio.as_mut(), self.audio_sender)
            && now >= a.next_due()
            && let Some(ids) = Extensions::of(pc, id)
        {
            a.sequence_number = a.sequence_number.wrapping_add(1);
            let mut payload = BytesMut::from(&[0xF8u8][..]); // CELT FB 20 ms, one frame
            payload.resize(80, 0x55);
            let p = MediaPacket {
                sequence_number: a.sequence_number,
                timestamp: (a.frames * 960) as u32,
                marker: a.frames == 0,
                payload: payload.freeze(),
            };
            a.frames += 1;
            // Voice activity set, level -30 dBov.
            out.push((id, ids.packet(a.ssrc, p, None, Some(0x80 | 30))));
        }
        for (id, packet) in out {
            let r = pc.rtp_sender(id).map(|mut s| s.write_rtp(now, packet));
            if let Some(Err(e)) = r {
                errors.push(format!("write_rtp: {e}"));
            }
        }
        errors
    }

    pub fn layer(&self, rid: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.rid == rid)
    }
}

/// The header extension ids and payload type negotiated on one sender.
struct Extensions {
    payload_type: u8,
    mid: Option<(u8, Bytes)>,
    rid: Option<u8>,
    audio_level: Option<u8>,
}

impl Extensions {
    fn of(pc: &mut RTCPeerConnection, sender: RTCRtpSenderId) -> Option<Self> {
        let mid = pc.rtp_transceiver(sender.into())?.mid().clone();
        let mut sender = pc.rtp_sender(sender)?;
        let params = sender.get_parameters();
        let id = |uri: &str| {
            params
                .rtp_parameters
                .header_extensions
                .iter()
                .find(|e| e.uri == uri)
                .map(|e| e.id as u8)
        };
        Some(Self {
            payload_type: params
                .rtp_parameters
                .codecs
                .first()
                .map_or(0, |c| c.payload_type),
            mid: id(MID_URI).zip(mid.map(Bytes::from)),
            rid: id(RID_URI),
            audio_level: id(AUDIO_LEVEL_URI),
        })
    }

    fn packet(
        &self,
        ssrc: u32,
        p: MediaPacket,
        rid: Option<&str>,
        level: Option<u8>,
    ) -> rtp::Packet {
        let mut header = rtp::header::Header {
            version: 2,
            marker: p.marker,
            payload_type: self.payload_type,
            sequence_number: p.sequence_number,
            timestamp: p.timestamp,
            ssrc,
            ..Default::default()
        };
        // Chromium sends mid and rid on every packet until the receiver could have learnt the
        // SSRC; always sending them is simpler and costs a few bytes.
        let mut ext = |id: Option<u8>, value: Bytes| {
            if let Some(id) = id {
                let _ = header.set_extension(id, value);
            }
        };
        if let Some((id, mid)) = &self.mid {
            ext(Some(*id), mid.clone());
        }
        if let Some(rid) = rid.filter(|r| !r.is_empty()) {
            ext(self.rid, Bytes::copy_from_slice(rid.as_bytes()));
        }
        if let Some(level) = level {
            let mut b = BytesMut::new();
            b.put_u8(level);
            ext(self.audio_level, b.freeze());
        }
        rtp::Packet {
            header,
            payload: p.payload,
        }
    }
}

fn encoding(rid: &str, ssrc: u32, codec: RTCRtpCodec) -> RTCRtpEncodingParameters {
    RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters {
            rid: rid.to_owned(),
            ssrc: Some(ssrc),
            ..Default::default()
        },
        active: true,
        codec,
        ..Default::default()
    }
}

fn sendonly(pc: &mut RTCPeerConnection, track: MediaStreamTrack) -> Result<RTCRtpSenderId, String> {
    let transceiver: RTCRtpTransceiverId = pc
        .add_transceiver_from_track(
            track,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                streams: vec![],
                send_encodings: vec![],
            }),
        )
        .map_err(err)?;
    Ok(transceiver.into())
}
