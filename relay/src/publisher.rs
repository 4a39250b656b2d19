//! The sending half of a relay session: a publish connection with a simulcast camera (one rid
//! per layer the other side has) and a microphone, onto which each packet from the other side
//! is rewritten ([`Rewriter`]); the keyframe requests the server sends it come back by layer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use anyhow::anyhow;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::protocol::{ClientMessage, PROTOCOL_VERSION};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{PeerConnection, PeerConnectionEventHandler, RTCSessionDescription};

use crate::Media;
use crate::forward::{RIDS, Rewriter, Route, rid};
use crate::peer::{self, SimulcastIds};

struct Quiet;

impl PeerConnectionEventHandler for Quiet {}

pub struct Publisher {
    pc: Arc<dyn PeerConnection>,
    video: Arc<TrackLocalStaticRTP>,
    audio: Arc<TrackLocalStaticRTP>,
    /// Known once the answer is applied; packets before it are dropped.
    ids: Option<SimulcastIds>,
    rewriters: HashMap<Route, Rewriter>,
}

impl Publisher {
    /// A publish connection for a camera of `layers` layers and a microphone, and the offer to
    /// send. Keyframe requests from the server arrive on `keyframes` as layer ranks.
    pub async fn new(
        bind_ip: IpAddr,
        layers: u8,
        keyframes: mpsc::Sender<u8>,
    ) -> anyhow::Result<(Publisher, ClientMessage)> {
        let pc = peer::new_pc(bind_ip, Arc::new(Quiet), true).await?;
        let layers = layers.clamp(1, RIDS.len() as u8);
        let track = |kind, name: &str, codings| {
            Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                "relay".into(),
                format!("relay-{name}"),
                format!("relay-{name}"),
                kind,
                codings,
            )))
        };
        let video_codings = (0..layers)
            .filter_map(rid)
            .map(|r| peer::encoding(peer::vp8(), r))
            .collect();
        let video = track(RtpCodecKind::Video, "video", video_codings);
        let audio = track(
            RtpCodecKind::Audio,
            "audio",
            vec![peer::encoding(peer::opus(), "")],
        );
        pc.add_track(video.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| anyhow!("add video: {e}"))?;
        pc.add_track(audio.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| anyhow!("add audio: {e}"))?;
        let offer = pc.create_offer(None).await.map_err(|e| anyhow!("{e}"))?;
        pc.set_local_description(offer)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let sdp = peer::gathered_sdp(&pc).await?;
        let mut rewriters = HashMap::new();
        let codings = video.track().await.codings().to_vec();
        for (layer, c) in (0u8..).zip(&codings) {
            let ssrc = c.rtp_coding_parameters.ssrc.unwrap_or(1);
            if let Some(r) = rid(layer) {
                rewriters.insert(Route::Video { layer }, Rewriter::video(ssrc, 96, r));
            }
        }
        let audio_ssrc = audio.track().await.ssrcs().next().unwrap_or(2);
        rewriters.insert(Route::Audio, Rewriter::audio(audio_ssrc, 111));
        spawn_keyframe_watch(video.clone(), keyframes);
        let offer = ClientMessage::PublishOffer {
            v: PROTOCOL_VERSION,
            sdp,
            sources: Vec::new(),
        };
        let p = Publisher {
            pc,
            video,
            audio,
            ids: None,
            rewriters,
        };
        Ok((p, offer))
    }

    pub async fn apply_answer(&mut self, sdp: String) -> anyhow::Result<()> {
        let ids = SimulcastIds::from_sdp(&sdp)?;
        self.pc
            .set_remote_description(RTCSessionDescription::answer(sdp).map_err(|e| anyhow!("{e}"))?)
            .await
            .map_err(|e| anyhow!("set the publish answer: {e}"))?;
        self.ids = Some(ids);
        Ok(())
    }

    pub fn pc(&self) -> &Arc<dyn PeerConnection> {
        &self.pc
    }

    /// Sends one packet from the other side on its stream (dropped before the answer, or when
    /// this connection publishes no such layer).
    pub async fn forward(&mut self, m: Media) {
        let Media {
            route, mut packet, ..
        } = m;
        let (Some(ids), Some(w)) = (&self.ids, self.rewriters.get_mut(&route)) else {
            return;
        };
        let track = match route {
            Route::Audio => {
                w.rewrite(&mut packet, None);
                &self.audio
            }
            Route::Video { .. } => {
                w.rewrite(&mut packet, Some(ids));
                &self.video
            }
        };
        if let Err(e) = track.write_rtp(packet).await {
            tracing::debug!("relay: write: {e}");
        }
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// Keyframe requests on the camera, as layer ranks (a request naming no SSRC of ours asks for
/// every layer).
fn spawn_keyframe_watch(video: Arc<TrackLocalStaticRTP>, keyframes: mpsc::Sender<u8>) {
    tokio::spawn(async move {
        let ssrcs: Vec<u32> = video.track().await.ssrcs().collect();
        while let Some(evt) = video.poll().await {
            let TrackLocalEvent::OnRtcpPacket(packets) = evt else {
                continue;
            };
            let mut asked = Vec::new();
            for p in &packets {
                if let Some(pli) = p.as_any().downcast_ref::<PictureLossIndication>() {
                    asked.push(pli.media_ssrc);
                } else if let Some(fir) = p.as_any().downcast_ref::<FullIntraRequest>() {
                    asked.extend(fir.fir.iter().map(|e| e.ssrc));
                }
            }
            for ssrc in asked {
                let layers: Vec<u8> = match ssrcs.iter().position(|s| *s == ssrc) {
                    Some(i) => vec![i as u8],
                    None => (0..ssrcs.len() as u8).collect(),
                };
                for layer in layers {
                    let _ = keyframes.try_send(layer);
                }
            }
        }
    });
}
