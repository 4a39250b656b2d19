//! One `rtc` peer connection as a worker drives it: construction with our codecs, credentials and
//! host candidate, plus the bookkeeping the worker needs (demux addresses, timer, dirty flag).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::interceptor::{
    Attribute, CongestionControlBuilder, Packet, Registry, Slot, TaggedPacket, TwccSenderBuilder,
};
use rtc::peer_connection::certificate::RTCCertificate;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::shared::error::Error as RtcError;

use crate::api::{LocalCandidate, ParticipantId, PcKind, SfuError};
use crate::bwe::{LinkEstimate, LinkEstimator};
use crate::nack_gate::{NackCounts, nack_gate};
use crate::read_hook::ReadHook;

/// Between the pacer slot (3,000) and the NACK responder (4,000): inbound packets walk the
/// chain from the wire up, so the gate trims a NACK before the responder acts on it.
const NACK_GATE_SLOT: usize = 3_500;

/// The RTP header extension we forward end to end (everything else is per-transport).
pub(crate) const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

const ICE_DISCONNECTED_AFTER: std::time::Duration = std::time::Duration::from_secs(15);
const ICE_FAILED_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// At most this many source addresses per connection (a browser may try a few); bounds what a
/// peer that knows a ufrag can make us remember.
const MAX_ADDRS_PER_CONN: usize = 8;

pub(crate) struct Conn {
    pub pc: RTCPeerConnection,
    pub participant: ParticipantId,
    pub kind: PcKind,
    pub ufrag: String,
    pub addrs: Vec<SocketAddr>,
    /// Earliest deadline we put in the worker's timer heap for this connection.
    pub scheduled: Option<Instant>,
    /// In the worker's dirty queue: has output to drain.
    pub dirty: bool,
    pub connected: bool,
    /// Round-trip time from receiver reports (smoothed), seconds.
    pub rtt: Option<f64>,
    /// Worst fraction lost reported since the last stats pass.
    pub reported_loss: f64,
    /// The bandwidth estimator's output, on subscribe connections.
    pub estimate: Option<Arc<LinkEstimate>>,
    /// What the NACK gate saw, on subscribe connections.
    pub nacks: Option<Arc<NackCounts>>,
    /// The layer allocator's memory of this link (see `allocate.rs`).
    pub allocation: super::link_allocation::LinkAllocation,
    /// The last packet the engine sent went over ICE-TCP (its selected pair is TCP).
    pub over_tcp: bool,
    /// Subscribe m-lines whose track left, made inactive but not yet offered so: they keep
    /// their sender (so no new track takes them) until the client has seen them inactive.
    pub retiring: Vec<rtc::rtp_transceiver::RTCRtpSenderId>,
    /// Retired m-lines and the revision of the offer that showed them inactive: once that
    /// offer is answered their sender goes and a new track of the kind may take them.
    pub retired: Vec<(u64, rtc::rtp_transceiver::RTCRtpSenderId)>,
    /// The subscriber answered video without RTX (a client that does not know it): later video
    /// tracks are offered without an RTX stream, so no offer names a repair SSRC it cannot use.
    pub rtx_refused: bool,
}

impl Conn {
    pub fn remember_addr(&mut self, addr: SocketAddr) -> bool {
        if self.addrs.contains(&addr) {
            return false;
        }
        if self.addrs.len() >= MAX_ADDRS_PER_CONN {
            return false;
        }
        self.addrs.push(addr);
        true
    }
}

/// Builds peer connections for one worker: shared DTLS certificate (generating one per
/// connection costs an ECDSA key generation per join), our codec list, ICE-lite with
/// credentials we choose so the ufrag is the demux key before any packet arrives.
pub(crate) struct PcFactory {
    certificate: RTCCertificate,
    /// The address announced in candidates: public IP and this worker's port.
    announced: SocketAddr,
    /// The ICE-TCP listener's address as announced (passive TCP candidate), when enabled.
    tcp_announced: Option<SocketAddr>,
}

impl PcFactory {
    pub fn new(announced: SocketAddr, tcp_announced: Option<SocketAddr>) -> Result<Self, SfuError> {
        let provider = rtc::crypto::default_provider().map_err(internal)?;
        let certificate = RTCCertificate::generate(
            provider.crypto(),
            rtc::crypto::SignatureScheme::EcdsaP256Sha256,
            rtc::peer_connection::certificate::CertificateParams::new(vec!["hoinghi".to_owned()])
                .map_err(internal)?,
        )
        .map_err(internal)?;
        Ok(Self {
            certificate,
            announced,
            tcp_announced,
        })
    }

    pub fn build(
        &self,
        now: Instant,
        ufrag: &str,
        pwd: &str,
        link: Option<(Arc<LinkEstimate>, Arc<NackCounts>)>,
    ) -> Result<RTCPeerConnection, SfuError> {
        let mut media = media_engine(link.is_some())?;
        let mut registry =
            Registry::new().with(Slot::from(14_000), ReadHook::new(mark_for_application));
        if let Some((estimate, nacks)) = link {
            // Number what we send (transport-wide sequence numbers, negotiated in our offers),
            // estimate the link from the subscriber's feedback on them, and resend only what
            // the link can afford (the gate reads NACKs before the responder does).
            registry = registry
                .with(Slot::TwccSender, TwccSenderBuilder::new().build())
                .with(
                    Slot::CongestionControl,
                    CongestionControlBuilder::new(LinkEstimator::new(estimate.clone())).build(),
                )
                .with(Slot::from(NACK_GATE_SLOT), nack_gate(estimate, nacks));
        }
        let registry = register_default_interceptors(registry, &mut media).map_err(internal)?;
        let settings = SettingEngineBuilder::new()
            .with_ice_credentials(ufrag.to_owned(), pwd.to_owned())
            .with_lite(true)
            // An ICE-lite server hears only the client's checks, and browsers send consent
            // checks every 4-6 s (RFC 7675): rtc's 5 s default flapped connected/disconnected
            // on a busy host. Consent itself expires after 30 s.
            .with_ice_timeouts(Some(ICE_DISCONNECTED_AFTER), Some(ICE_FAILED_AFTER), None)
            .with_srtp_protection_profiles(vec![
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            ])
            .build();
        let config = RTCConfigurationBuilder::new()
            .with_certificates(vec![self.certificate.clone()])
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(config)
            .with_setting_engine(settings)
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(internal)?;
        for candidate in self.host_candidates()? {
            pc.add_local_candidate(candidate).map_err(internal)?;
        }
        Ok(pc)
    }

    /// UDP first; then, when ICE-TCP is on, a passive TCP candidate (RFC 6544), which its lower
    /// local preference puts behind UDP wherever UDP gets through.
    fn host_candidates(
        &self,
    ) -> Result<Vec<rtc::peer_connection::transport::RTCIceCandidateInit>, SfuError> {
        let host = |network: &str, addr: SocketAddr, tcp_type| {
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
            .map_err(internal)?;
            RTCIceCandidate::from(&c).to_json().map_err(internal)
        };
        let mut out = vec![host("udp", self.announced, Default::default())?];
        if let Some(tcp) = self.tcp_announced {
            out.push(host("tcp", tcp, rtc::ice::tcp_type::TcpType::Passive)?);
        }
        Ok(out)
    }

    /// Our host candidates as trickled to the client (they are in the SDP too; some clients only
    /// open ICE-TCP connections to trickled candidates).
    pub fn local_candidates(&self) -> Result<Vec<LocalCandidate>, SfuError> {
        Ok(self
            .host_candidates()?
            .into_iter()
            .map(|init| LocalCandidate {
                candidate: if init.candidate.starts_with("candidate:") {
                    init.candidate
                } else {
                    format!("candidate:{}", init.candidate)
                },
                sdp_mid: Some("0".to_owned()),
                sdp_m_line_index: Some(0),
            })
            .collect())
    }
}

/// The codecs of a connection. Subscribe connections (`rtx`) also offer RTX (RFC 4588) for each
/// video codec: NACKed packets are resent on a separate SSRC, so the subscriber tells a repair
/// from a late original (libwebrtc keeps repairs out of its video jitter estimate) and counts
/// them apart from media. Publish connections stay without it: what a publisher resends arrives
/// on the media SSRC the forwarding keys on.
fn media_engine(rtx: bool) -> Result<MediaEngine, SfuError> {
    let mut m = MediaEngine::default();
    let video_fb = vec![
        fb("ccm", "fir"),
        fb("nack", ""),
        fb("nack", "pli"),
        fb("transport-cc", ""),
    ];
    let codecs = [
        (
            MIME_TYPE_OPUS,
            48_000,
            2,
            "minptime=10;useinbandfec=1",
            111,
            RtpCodecKind::Audio,
        ),
        // After Opus: a subscriber without RED gets plain Opus; a publisher that lists RED
        // first in its offer gets it first in our answer, and sends it (see `red.rs`).
        (
            crate::red::MIME_TYPE_RED,
            48_000,
            2,
            crate::red::RED_FMTP,
            crate::red::RED_PAYLOAD_TYPE,
            RtpCodecKind::Audio,
        ),
        (MIME_TYPE_VP8, 90_000, 0, "", 96, RtpCodecKind::Video),
        (
            MIME_TYPE_H264,
            90_000,
            0,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            102,
            RtpCodecKind::Video,
        ),
        (
            MIME_TYPE_H264,
            90_000,
            0,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
            108,
            RtpCodecKind::Video,
        ),
    ];
    for (mime, clock_rate, channels, fmtp, pt, kind) in codecs {
        m.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: mime.to_owned(),
                    clock_rate,
                    channels,
                    sdp_fmtp_line: fmtp.to_owned(),
                    rtcp_feedback: if kind == RtpCodecKind::Video {
                        video_fb.clone()
                    } else {
                        vec![fb("transport-cc", "")]
                    },
                },
                payload_type: pt,
            },
            kind,
        )
        .map_err(internal)?;
    }
    if rtx {
        for (pt, apt) in RTX_PAYLOAD_TYPES {
            m.register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: RTCRtpCodec {
                        mime_type: MIME_TYPE_RTX.to_owned(),
                        clock_rate: 90_000,
                        channels: 0,
                        sdp_fmtp_line: format!("apt={apt}"),
                        rtcp_feedback: vec![],
                    },
                    payload_type: pt,
                },
                RtpCodecKind::Video,
            )
            .map_err(internal)?;
        }
    }
    m.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: AUDIO_LEVEL_URI.to_owned(),
        },
        RtpCodecKind::Audio,
        None,
    )
    .map_err(internal)?;
    Ok(m)
}

/// (RTX payload type, the video payload type it repairs), as Chromium numbers them.
const RTX_PAYLOAD_TYPES: [(u8, u8); 3] = [(97, 96), (103, 102), (109, 108)];

fn fb(typ: &str, parameter: &str) -> RTCPFeedback {
    RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> SfuError {
    SfuError::Internal(e.to_string())
}

pub(crate) fn rtc_sdp_error(e: RtcError) -> SfuError {
    SfuError::BadSdp(e.to_string())
}

/// Lets keyframe requests (PLI, FIR) and receiver reports through to the application; the
/// default chain consumes all inbound RTCP. The interceptors still see everything (marking is
/// not consuming); NACK and TWCC stay theirs alone.
fn mark_for_application(msg: &mut TaggedPacket) {
    if let Packet::Rtcp(packets) = &msg.message.packet
        && is_for_application(packets)
    {
        msg.message.add(Attribute::DeliverToApplication);
    }
}

/// RTCP the application acts on: keyframe requests (relayed to publishers) and receiver reports
/// (link round-trip time and loss; `rtc`'s own stats leave the RTT at zero). NACKs stay with
/// the gate and the responder (see `nack_gate.rs`).
fn is_for_application(packets: &[Box<dyn rtcp::Packet>]) -> bool {
    packets.iter().any(|p| {
        let any = p.as_any();
        any.is::<rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication>()
            || any.is::<rtcp::payload_feedbacks::full_intra_request::FullIntraRequest>()
            || any.is::<rtcp::receiver_report::ReceiverReport>()
    })
}
