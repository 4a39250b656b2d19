//! The point's peer connections: codecs and interceptors, event handling (received tracks go to
//! [`super::receive`]), offer/answer helpers and keyframe requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use rtc::interceptor::{NackGeneratorBuilder, Registry, Slot, TwccReceiverBuilder};
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use tokio::sync::watch;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCPeerConnectionState,
    register_default_interceptors,
};

pub(super) use relay::peer::{opus, vp8};

use super::publish::RedFormat;
use super::receive::record;
use super::{PointConfig, SharedStats, lock};
use crate::layers::Ladder;
use crate::link::LinkParams;
use crate::red::{MIME_TYPE_RED, RED_FMTP, RED_PAYLOAD_TYPE};
use crate::rtcp_tap::rtcp_tap;

/// The codecs a point offers and accepts. With `red`, RED (Opus inside) comes before Opus: a
/// publish offer then lists it first, so the server's answer selects it, and a subscriber keeps
/// it in its answers, so the server sends it RED.
pub(super) fn media_engine(red: bool) -> anyhow::Result<MediaEngine> {
    let red = red.then(|| RTCRtpCodecParameters {
        rtp_codec: red_codec(),
        payload_type: RED_PAYLOAD_TYPE,
    });
    relay::peer::media_engine(red)
}

pub(super) fn red_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_RED.into(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: RED_FMTP.into(),
        rtcp_feedback: vec![],
    }
}

/// The payload types negotiated for RED and for Opus on the audio sender, when RED is among
/// them (after the answer is applied).
pub(crate) async fn negotiated_red(pc: &Arc<dyn PeerConnection>) -> Option<RedFormat> {
    for sender in pc.get_senders().await {
        if sender.track().kind().await != RtpCodecKind::Audio {
            continue;
        }
        let params = sender.get_parameters().await.ok()?;
        let pt = |mime: &str| {
            params
                .rtp_parameters
                .codecs
                .iter()
                .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
                .map(|c| c.payload_type)
        };
        return Some(RedFormat {
            red: pt(MIME_TYPE_RED)?,
            opus: pt(MIME_TYPE_OPUS)?,
        });
    }
    None
}

/// The RED payload type in the audio section of an SDP (`a=rtpmap:<pt> red/48000/2`).
pub(crate) fn red_payload_type(sdp: &str) -> Option<u8> {
    let mut audio = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            audio = m.starts_with("audio");
        } else if audio && let Some(map) = line.strip_prefix("a=rtpmap:") {
            let (pt, codec) = map.split_once(' ')?;
            if codec.to_ascii_lowercase().starts_with("red/48000") {
                return pt.parse().ok();
            }
        }
    }
    None
}

pub(super) struct Handler {
    pub(super) stats: SharedStats,
    pub(super) epoch: Instant,
    pub(super) gathered: watch::Sender<bool>,
    pub(super) publish: bool,
    /// Maps the resolution of received keyframes to simulcast layers.
    pub(super) ladder: Arc<Ladder>,
    /// Where to report that this (subscribe) connection failed, with its generation.
    pub(super) failed: Option<(tokio::sync::mpsc::Sender<super::Control>, u64)>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Failed
            && let Some((control, generation)) = &self.failed
        {
            lock(&self.stats).subscribe_failures += 1;
            let _ = control
                .send(super::Control::SubscribeFailed(*generation))
                .await;
        }
        if state == RTCPeerConnectionState::Connected {
            let mut s = lock(&self.stats);
            let at = Some(Instant::now());
            if self.publish {
                s.publish_connected_at = at;
            } else {
                s.subscribe_connected_at = at;
            }
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let stats = self.stats.clone();
        let epoch = self.epoch;
        let ladder = self.ladder.clone();
        tokio::spawn(async move {
            let kind = track.kind().await;
            let stream_id = track.stream_id().await;
            while let Some(evt) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(p) = evt {
                    record(&stats, epoch, &ladder, kind, &stream_id, &p);
                }
            }
        });
    }
}

/// How long a subscriber waits before asking again for a missing packet: the emulated link's
/// round trip (both one-way delays and their jitter), at least 100 ms as libwebrtc assumes
/// before it measures one.
pub fn nack_interval(link: Option<&LinkParams>) -> Duration {
    let rtt = link.map_or(Duration::ZERO, |l| 2 * (l.delay + l.jitter));
    rtt.max(Duration::from_millis(100))
}

pub(super) async fn new_pc(
    cfg: &PointConfig,
    handler: Arc<Handler>,
    tap: bool,
) -> anyhow::Result<Arc<dyn PeerConnection>> {
    let mut media = media_engine(cfg.red)?;
    let registry = if tap {
        Registry::new().with(Slot::from(14_000), rtcp_tap())
    } else {
        Registry::new()
    };
    let registry = register_default_interceptors(registry, &mut media)?;
    // The default generator re-asks for a missing packet every 100 ms without limit: over a
    // 500 ms round trip that is five requests before a retransmission can arrive, and a server
    // that answers each floods the link it is trying to repair. Ask as libwebrtc does instead:
    // at most 10 times per packet, once per round trip of the emulated link.
    let mut registry = registry.with(
        Slot::NackGenerator,
        NackGeneratorBuilder::new()
            .with_interval(nack_interval(cfg.link.as_ref()))
            .with_max_nacks_per_packet(10)
            .build(),
    );
    if let Some(interval) = cfg.twcc_interval {
        registry = registry.with(
            Slot::TwccReceiver,
            TwccReceiverBuilder::new().with_interval(interval).build(),
        );
    }
    let mut builder = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec![format!("{}:0", cfg.bind_ip)]);
    if let Some((disconnected, failed)) = cfg.ice_timeouts {
        builder = builder.with_setting_engine(
            webrtc::peer_connection::SettingEngineBuilder::new()
                .with_ice_timeouts(Some(disconnected), Some(failed), None)
                .build(),
        );
    }
    // A point whose firewall drops UDP falls back to ICE-TCP, as a browser does: the peer gathers
    // TCP candidates and connects to the server's passive TCP candidate when it is trickled.
    // Points with UDP do not, so a fan-out measures one transport at a time.
    if cfg.link.as_ref().is_some_and(|l| l.udp_blocked) {
        builder = builder.with_tcp_addrs(vec![format!("{}:0", cfg.bind_ip)]);
    }
    let pc = builder
        .build()
        .await
        .map_err(|e| anyhow!("peer connection: {e}"))?;
    Ok(Arc::new(pc))
}

pub(crate) async fn wait_gathered(pc: &Arc<dyn PeerConnection>) {
    // The handler flips `gathered`; host-only gathering on loopback completes in milliseconds.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(d) = pc.local_description().await
            && d.sdp.contains("a=candidate")
        {
            // Give the gatherer a moment to finish the remaining candidates.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) async fn build_subscriber(
    cfg: &PointConfig,
    stats: SharedStats,
) -> anyhow::Result<Arc<dyn PeerConnection>> {
    build_subscriber_reporting(cfg, stats, None).await
}

/// A subscribe connection that reports its failure (`Control::SubscribeFailed` with
/// `failed`'s generation) so that the point asks the server for a new one.
pub(crate) async fn build_subscriber_reporting(
    cfg: &PointConfig,
    stats: SharedStats,
    failed: Option<(tokio::sync::mpsc::Sender<super::Control>, u64)>,
) -> anyhow::Result<Arc<dyn PeerConnection>> {
    let (gathered, _) = watch::channel(false);
    new_pc(
        cfg,
        Arc::new(Handler {
            stats,
            epoch: cfg.epoch,
            gathered,
            publish: false,
            ladder: Arc::new(cfg.receive_ladder.clone()),
            failed,
        }),
        false,
    )
    .await
}

pub(crate) async fn answer_offer(
    pc: &Arc<dyn PeerConnection>,
    sdp: String,
) -> anyhow::Result<String> {
    relay::peer::answer_offer(pc, sdp).await
}

pub(super) async fn pli(pc: &Arc<dyn PeerConnection>, ssrc: u32) {
    for r in pc.get_receivers().await {
        let track = r.track();
        if track.ssrcs().await.contains(&ssrc) {
            let _ = track
                .write_rtcp(vec![Box::new(PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc: ssrc,
                })])
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nack_interval_follows_the_emulated_round_trip() {
        assert_eq!(nack_interval(None), Duration::from_millis(100));
        let bad = LinkParams::profile("bad").unwrap();
        assert_eq!(nack_interval(Some(&bad)), Duration::from_millis(230));
        let fibre = LinkParams::profile("fibre").unwrap();
        assert_eq!(nack_interval(Some(&fibre)), Duration::from_millis(100));
    }

    #[test]
    fn the_red_payload_type_comes_from_the_audio_section() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 63\r\na=rtpmap:63 red/90000\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\na=rtpmap:111 opus/48000/2\r\n\
                   a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n";
        assert_eq!(red_payload_type(sdp), Some(63));
        let plain = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
        assert_eq!(red_payload_type(plain), None);
    }
}
