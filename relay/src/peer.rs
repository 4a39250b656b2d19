//! The relay client's peer connections (the async `webrtc` crate, as the loadtest points use):
//! codecs, construction, offer/answer helpers, the simulcast ids of a publish answer.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use bytes::Bytes;
use rtc::interceptor::{Attribute, Packet, Registry, Slot, TaggedPacket};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use sfu::read_hook::ReadHook;
use signaling::protocol::{ClientMessage, IceCandidate, PROTOCOL_VERSION, Source, TrackSource};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCSessionDescription,
    register_default_interceptors,
};
use webrtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RtpTransceiver};

pub const SDES_MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
pub const SDES_RTP_STREAM_ID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// How long gathering host candidates may take (loopback and host addresses: milliseconds).
const GATHER_WAIT: Duration = Duration::from_secs(5);

/// VP8 (payload type 96) with NACK, PLI and FIR, and Opus (111): what our server forwards;
/// `audio_first` (RED, for the loadtest points) is registered before Opus, so offers and
/// answers prefer it.
pub fn media_engine(audio_first: Option<RTCRtpCodecParameters>) -> anyhow::Result<MediaEngine> {
    let mut m = MediaEngine::default();
    let fb = |t: &str, p: &str| RTCPFeedback {
        typ: t.into(),
        parameter: p.into(),
    };
    m.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                rtcp_feedback: vec![fb("nack", ""), fb("nack", "pli"), fb("ccm", "fir")],
                ..vp8()
            },
            payload_type: 96,
        },
        RtpCodecKind::Video,
    )?;
    if let Some(codec) = audio_first {
        m.register_codec(codec, RtpCodecKind::Audio)?;
    }
    m.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus(),
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )?;
    Ok(m)
}

pub fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.into(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

pub fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.into(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
        rtcp_feedback: vec![],
    }
}

/// One encoding of an outbound track: `rid` (empty for none) on an SSRC of its own.
pub fn encoding(codec: RTCRtpCodec, rid: &str) -> RTCRtpEncodingParameters {
    RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters {
            rid: rid.to_owned(),
            ssrc: Some(rand::random::<u32>() | 1),
            ..Default::default()
        },
        codec,
        ..Default::default()
    }
}

/// A candidate the server trickled, as the peer connection takes it.
pub fn candidate_init(c: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_m_line_index,
        username_fragment: c.username_fragment,
        ..Default::default()
    }
}

fn mark_rtcp(msg: &mut TaggedPacket) {
    if matches!(msg.message.packet, Packet::Rtcp(_)) {
        msg.message.add(Attribute::DeliverToApplication);
    }
}

/// A peer connection with host candidates on `bind_ip`. With `tap`, inbound RTCP reaches the
/// application (keyframe requests to a publisher; without it the interceptors consume them).
pub async fn new_pc(
    bind_ip: IpAddr,
    handler: Arc<dyn PeerConnectionEventHandler>,
    tap: bool,
) -> anyhow::Result<Arc<dyn PeerConnection>> {
    let mut media = media_engine(None)?;
    let registry = if tap {
        Registry::new().with(
            Slot::from(14_000),
            ReadHook::new(mark_rtcp as fn(&mut TaggedPacket)),
        )
    } else {
        Registry::new()
    };
    let registry = register_default_interceptors(registry, &mut media)?;
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec![format!("{bind_ip}:0")])
        .build()
        .await
        .map_err(|e| anyhow!("peer connection: {e}"))?;
    Ok(Arc::new(pc))
}

/// The local description once it has its host candidates (at most [`GATHER_WAIT`]).
pub async fn gathered_sdp(pc: &Arc<dyn PeerConnection>) -> anyhow::Result<String> {
    let deadline = Instant::now() + GATHER_WAIT;
    loop {
        let sdp = pc
            .local_description()
            .await
            .ok_or_else(|| anyhow!("no local description"))?
            .sdp;
        if Instant::now() > deadline {
            return Ok(sdp);
        }
        if sdp.contains("a=candidate") {
            // Give the gatherer a moment to finish the remaining candidates.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return Ok(pc.local_description().await.map(|d| d.sdp).unwrap_or(sdp));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Makes an offer, sets it as local description and returns it with its host candidates.
pub async fn offer(pc: &Arc<dyn PeerConnection>) -> anyhow::Result<String> {
    let offer = pc.create_offer(None).await.map_err(|e| anyhow!("{e}"))?;
    pc.set_local_description(offer)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    gathered_sdp(pc).await
}

/// The transceiver whose sender is `sender`.
pub async fn transceiver_of(
    pc: &Arc<dyn PeerConnection>,
    sender: RTCRtpSenderId,
) -> Option<Arc<dyn RtpTransceiver>> {
    for t in pc.get_transceivers().await {
        if let Ok(Some(s)) = t.sender().await
            && s.id() == sender
        {
            return Some(t);
        }
    }
    None
}

/// The mid of `t` (set by the first offer that has its m-line).
pub async fn mid(t: &Arc<dyn RtpTransceiver>) -> anyhow::Result<String> {
    t.mid()
        .await
        .ok()
        .flatten()
        .ok_or_else(|| anyhow!("an m-line offered without a mid"))
}

/// `sendonly` or `inactive`: how a share's m-line is started and stopped.
pub fn share_direction(on: bool) -> RTCRtpTransceiverDirection {
    if on {
        RTCRtpTransceiverDirection::Sendonly
    } else {
        RTCRtpTransceiverDirection::Inactive
    }
}

/// The `publish_offer` of `sdp`, whose m-line `share_mid` is a screen share.
pub fn publish_offer(sdp: String, share_mid: String) -> ClientMessage {
    ClientMessage::PublishOffer {
        v: PROTOCOL_VERSION,
        sdp,
        sources: vec![TrackSource {
            mid: share_mid,
            source: Source::Screen,
        }],
    }
}

/// Applies a subscribe offer and returns the answer to send.
pub async fn answer_offer(pc: &Arc<dyn PeerConnection>, sdp: String) -> anyhow::Result<String> {
    pc.set_remote_description(RTCSessionDescription::offer(sdp).map_err(|e| anyhow!("{e}"))?)
        .await
        .map_err(|e| anyhow!("set offer: {e}"))?;
    let answer = pc.create_answer(None).await.map_err(|e| anyhow!("{e}"))?;
    pc.set_local_description(answer)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    gathered_sdp(pc).await
}

/// What the negotiated publish answer says simulcast packets must carry: the video section's
/// mid and the extension ids of `sdes:mid` and `sdes:rtp-stream-id`. Without a=ssrc lines in
/// the offer, these two extensions are how the receiver learns which layer an SSRC is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulcastIds {
    pub mid: Bytes,
    pub mid_ext: u8,
    pub rid_ext: u8,
}

impl SimulcastIds {
    /// Reads the ids from an SDP (the answer: the ids both sides agreed on).
    pub fn from_sdp(sdp: &str) -> anyhow::Result<SimulcastIds> {
        // The first video section is the camera's (a relay's publish connection has a screen
        // section after it, which must not override the camera's mid).
        let (mut in_video, mut videos) = (false, 0);
        let (mut mid, mut mid_ext, mut rid_ext) = (None, None, None);
        for line in sdp.lines() {
            let line = line.trim_end();
            if let Some(m) = line.strip_prefix("m=") {
                in_video = m.starts_with("video");
                videos += usize::from(in_video);
                if videos > 1 {
                    break;
                }
                continue;
            }
            if !in_video {
                continue;
            }
            if let Some(v) = line.strip_prefix("a=mid:") {
                mid = Some(Bytes::copy_from_slice(v.trim().as_bytes()));
            } else if let Some(v) = line.strip_prefix("a=extmap:") {
                let mut parts = v.split_whitespace();
                let id = parts
                    .next()
                    .and_then(|id| id.split('/').next()?.parse::<u8>().ok());
                match (id, parts.next()) {
                    (Some(id), Some(SDES_MID_URI)) => mid_ext = Some(id),
                    (Some(id), Some(SDES_RTP_STREAM_ID_URI)) => rid_ext = Some(id),
                    _ => {}
                }
            }
        }
        match (mid, mid_ext, rid_ext) {
            (Some(mid), Some(mid_ext), Some(rid_ext)) => Ok(SimulcastIds {
                mid,
                mid_ext,
                rid_ext,
            }),
            (None, ..) => bail!("the publish answer has no video section with a mid"),
            _ => bail!(
                "the publish answer did not accept the sdes:mid and sdes:rtp-stream-id header \
                 extensions: the server could not tell the simulcast layers apart"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_ids_come_from_the_video_section() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
                   a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n\
                   a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
                   a=extmap:10/sendonly urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n";
        let ids = SimulcastIds::from_sdp(sdp).unwrap();
        assert_eq!(
            ids,
            SimulcastIds {
                mid: Bytes::from_static(b"1"),
                mid_ext: 4,
                rid_ext: 10
            }
        );
        let with_screen = format!("{sdp}m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\n");
        assert_eq!(
            SimulcastIds::from_sdp(&with_screen).unwrap().mid,
            Bytes::from_static(b"1"),
            "a second video section (a screen) does not take the camera's mid"
        );
        let no_rid = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n\
                      a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n";
        assert!(
            SimulcastIds::from_sdp(no_rid)
                .unwrap_err()
                .to_string()
                .contains("rtp-stream-id")
        );
    }
}
