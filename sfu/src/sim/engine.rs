//! How a simulated client is configured as Chromium is: its codecs and feedback, its host
//! candidate, and a look at inbound RTCP (keyframe requests let through to the application,
//! feedback counted).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rtc::ice::tcp_type::TcpType;
use rtc::interceptor::{Attribute, Packet, TaggedPacket};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::rtcp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};

pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Inbound RTCP as the peer's interceptor chain saw it (all of it, before any interceptor
/// consumes it): lets a test check that feedback flows without opening the engine.
#[derive(Debug, Default)]
pub struct RtcpSeen {
    pub transport_cc: AtomicU64,
    pub keyframe_requests: AtomicU64,
    pub receiver_reports: AtomicU64,
    pub nacks: AtomicU64,
    /// Sequence numbers asked for in those NACKs.
    pub nacked_packets: AtomicU64,
}

/// Marks keyframe requests for the application (the default chain consumes all inbound RTCP)
/// and counts what feedback arrives.
pub(crate) fn look_at_rtcp(seen: &RtcpSeen, msg: &mut TaggedPacket) {
    use rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
    use rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
    use rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
    use rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
    let Packet::Rtcp(packets) = &msg.message.packet else {
        return;
    };
    let mut keyframe = false;
    for p in packets {
        let any = p.as_any();
        let counter = if any.is::<TransportLayerCc>() {
            &seen.transport_cc
        } else if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
            keyframe = true;
            &seen.keyframe_requests
        } else if any.is::<rtcp::receiver_report::ReceiverReport>() {
            &seen.receiver_reports
        } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
            let asked: usize = nack.nacks.iter().map(|p| p.packet_list().len()).sum();
            seen.nacked_packets
                .fetch_add(asked as u64, Ordering::Relaxed);
            &seen.nacks
        } else {
            continue;
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    if keyframe {
        msg.message.add(Attribute::DeliverToApplication);
    }
}

/// Chromium's audio and video codecs and feedback (as in its offers): Opus 111 with
/// transport-cc and the audio level; VP8 96 with goog-remb, transport-cc, ccm fir, nack,
/// nack pli, and RTX 97. The default interceptors add mid, rid, repaired-rid and transport-cc
/// header extensions.
pub(crate) fn chromium_media_engine() -> Result<MediaEngine, String> {
    let fb = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    let mut m = MediaEngine::default();
    let codecs = [
        (
            MIME_TYPE_OPUS,
            48_000,
            2,
            "minptime=10;useinbandfec=1".to_owned(),
            111,
            vec![fb("transport-cc", "")],
            RtpCodecKind::Audio,
        ),
        (
            MIME_TYPE_VP8,
            90_000,
            0,
            String::new(),
            96,
            vec![
                fb("goog-remb", ""),
                fb("transport-cc", ""),
                fb("ccm", "fir"),
                fb("nack", ""),
                fb("nack", "pli"),
            ],
            RtpCodecKind::Video,
        ),
        (
            MIME_TYPE_RTX,
            90_000,
            0,
            "apt=96".to_owned(),
            97,
            vec![],
            RtpCodecKind::Video,
        ),
    ];
    for (mime, clock_rate, channels, fmtp, payload_type, rtcp_feedback, kind) in codecs {
        m.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: mime.to_owned(),
                    clock_rate,
                    channels,
                    sdp_fmtp_line: fmtp,
                    rtcp_feedback,
                },
                payload_type,
            },
            kind,
        )
        .map_err(err)?;
    }
    // The defaults add `mid` for video only; Chromium sends it on audio too.
    for uri in [AUDIO_LEVEL_URI, "urn:ietf:params:rtp-hdrext:sdes:mid"] {
        m.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: uri.to_owned(),
            },
            RtpCodecKind::Audio,
            None,
        )
        .map_err(err)?;
    }
    Ok(m)
}

/// One host UDP candidate at `addr`, as the engine wants it added.
pub(crate) fn host_candidate(
    addr: SocketAddr,
) -> Result<rtc::peer_connection::transport::RTCIceCandidateInit, String> {
    candidate("udp", addr, TcpType::Unspecified)
}

/// An active TCP host candidate on `ip` (RFC 6544), as Chromium offers beside its UDP one: it
/// connects to the server's passive candidate; port 9 is the discard port every active
/// candidate announces, since its real port is only known once it connects.
pub(crate) fn tcp_active_candidate(
    ip: std::net::IpAddr,
) -> Result<rtc::peer_connection::transport::RTCIceCandidateInit, String> {
    candidate("tcp", SocketAddr::new(ip, 9), TcpType::Active)
}

fn candidate(
    network: &str,
    addr: SocketAddr,
    tcp_type: TcpType,
) -> Result<rtc::peer_connection::transport::RTCIceCandidateInit, String> {
    let c = CandidateHostConfig {
        base_config: CandidateConfig {
            network: network.to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        tcp_type,
    }
    .new_candidate_host()
    .map_err(err)?;
    RTCIceCandidate::from(&c).to_json().map_err(err)
}

pub(crate) fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Which retransmission (RTX, RFC 4588) streams repair which, from the remote description.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RtxMap {
    /// RTX SSRC → the SSRC it repairs (`a=ssrc-group:FID primary rtx`).
    pub primary: HashMap<u32, u32>,
    /// RTX payload type → the payload type it carries (`a=fmtp:97 apt=96`).
    pub apt: HashMap<u8, u8>,
}

impl RtxMap {
    pub fn from_sdp(sdp: &str) -> Self {
        let mut map = Self::default();
        for line in sdp.lines().map(str::trim_end) {
            if let Some(group) = line.strip_prefix("a=ssrc-group:FID ") {
                let ssrcs: Vec<u32> = group.split(' ').filter_map(|s| s.parse().ok()).collect();
                if let [primary, rtx] = ssrcs[..] {
                    map.primary.insert(rtx, primary);
                }
            } else if let Some(fmtp) = line.strip_prefix("a=fmtp:")
                && let Some((pt, params)) = fmtp.split_once(' ')
                && let Some(apt) = params
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("apt="))
                && let (Ok(pt), Ok(apt)) = (pt.parse(), apt.parse())
            {
                map.apt.insert(pt, apt);
            }
        }
        map
    }
}

/// Turns a repair back into the packet it repairs before the NACK generator sees it, as
/// Chromium's receiver does. `rtc` unwraps RTX only after the interceptor chain (in its
/// endpoint handler), so its NACK generator never learns that a repaired packet arrived and asks
/// for it again every interval, for good; the sender resends it every time (measured here:
/// 13 losses became 556 NACKed sequence numbers and 384 duplicate packets in 6 s).
/// Padding-only RTX (bandwidth probes) has no original sequence number and is left alone.
pub(crate) fn unwrap_rtx(map: &Mutex<RtxMap>, msg: &mut TaggedPacket) {
    let Packet::Rtp(p) = &mut msg.message.packet else {
        return;
    };
    let Ok(map) = map.lock() else {
        return;
    };
    let (Some(&primary), Some(&apt)) = (
        map.primary.get(&p.header.ssrc),
        map.apt.get(&p.header.payload_type),
    ) else {
        return;
    };
    if p.payload.len() < 2 {
        return;
    }
    p.header.sequence_number = u16::from_be_bytes([p.payload[0], p.payload[1]]);
    p.header.ssrc = primary;
    p.header.payload_type = apt;
    p.header.padding = false;
    p.payload = p.payload.slice(2..);
}
