//! The sending half of a relay session: a publish connection with a simulcast camera (one rid
//! per layer the other side has), a microphone and a screen share, onto which each packet from
//! the other side is rewritten ([`Rewriter`]); the keyframe requests the server sends it come
//! back by stream. The share's m-line is there from the first offer; it is made inactive by a
//! renegotiation when the other side's share stops (the server then drops it from its
//! subscribers' offers, as it does a browser's stopped share) and active again when one starts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use anyhow::anyhow;
use bytes::Bytes;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::protocol::ClientMessage;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{PeerConnection, PeerConnectionEventHandler, RTCSessionDescription};
use webrtc::rtp_transceiver::RTCRtpSenderId;

use crate::Media;
use crate::forward::{RIDS, Rewriter, Route, rid};
use crate::peer::{self, SimulcastIds};

struct Quiet;

impl PeerConnectionEventHandler for Quiet {}

pub struct Publisher {
    pc: Arc<dyn PeerConnection>,
    video: Arc<TrackLocalStaticRTP>,
    audio: Arc<TrackLocalStaticRTP>,
    screen: Share,
    /// Known once the answer is applied; packets before it are dropped.
    ids: Option<SimulcastIds>,
    rewriters: HashMap<Route, Rewriter>,
}

/// The screen share's track and the state of its m-line.
struct Share {
    track: Arc<TrackLocalStaticRTP>,
    sender: RTCRtpSenderId,
    /// The share's mid (sent in its packets' `sdes:mid`, declared `screen` in each offer).
    mid: Bytes,
    /// Whether the last offer made the m-line active, and whether it should be.
    sending: bool,
    wanted: bool,
    /// An offer is out and its answer not yet applied (one renegotiation at a time).
    negotiating: bool,
}

impl Publisher {
    /// A publish connection for a camera of `layers` layers, a microphone and a screen share,
    /// and the offer to send. Keyframe requests from the server arrive on `keyframes` by stream.
    pub async fn new(
        bind_ip: IpAddr,
        layers: u8,
        keyframes: mpsc::Sender<Route>,
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
        // One encoding: a share is sent whole, as the web client sends it.
        let screen = track(
            RtpCodecKind::Video,
            "screen",
            vec![peer::encoding(peer::vp8(), "")],
        );
        let mut senders = Vec::new();
        for t in [&video, &audio, &screen] {
            let sender = pc
                .add_track(t.clone() as Arc<dyn TrackLocal>)
                .await
                .map_err(|e| anyhow!("add a track: {e}"))?;
            senders.push(sender.id());
        }
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
        let screen_ssrc = screen.track().await.ssrcs().next().unwrap_or(3);
        rewriters.insert(Route::Screen, Rewriter::screen(screen_ssrc, 96));
        spawn_keyframe_watch(video.clone(), keyframes.clone(), |at, n| match at {
            Some(i) => vec![Route::Video { layer: i as u8 }],
            None => (0..n as u8).map(|layer| Route::Video { layer }).collect(),
        });
        spawn_keyframe_watch(screen.clone(), keyframes, |_, _| vec![Route::Screen]);
        spawn_rtcp_drain(audio.clone());
        let mut p = Publisher {
            pc,
            video,
            audio,
            screen: Share {
                track: screen,
                sender: senders[2],
                mid: Bytes::new(),
                sending: true,
                wanted: true,
                negotiating: false,
            },
            ids: None,
            rewriters,
        };
        let offer = p.offer().await?;
        Ok((p, offer))
    }

    /// Makes an offer with the share's m-line as wanted, sets it as local description and
    /// returns the message that sends it.
    async fn offer(&mut self) -> anyhow::Result<ClientMessage> {
        let share = &mut self.screen;
        let transceiver = peer::transceiver_of(&self.pc, share.sender)
            .await
            .ok_or_else(|| anyhow!("the share has no m-line"))?;
        // The first offer keeps the m-line as `add_track` made it.
        if share.wanted != share.sending {
            transceiver
                .set_direction(peer::share_direction(share.wanted))
                .await
                .map_err(|e| anyhow!("the share's direction: {e}"))?;
        }
        let sdp = peer::offer(&self.pc).await?;
        let mid = peer::mid(&transceiver).await?;
        share.mid = Bytes::from(mid.clone().into_bytes());
        share.sending = share.wanted;
        share.negotiating = true;
        Ok(peer::publish_offer(sdp, mid))
    }

    /// Whether the other side has a share to send: the offer that changes the m-line, when one
    /// is due now (one renegotiation at a time: a change during one is made after its answer).
    pub async fn want_screen(&mut self, on: bool) -> anyhow::Result<Option<ClientMessage>> {
        self.screen.wanted = on;
        self.renegotiate_if_due().await
    }

    async fn renegotiate_if_due(&mut self) -> anyhow::Result<Option<ClientMessage>> {
        let s = &self.screen;
        if s.negotiating || s.wanted == s.sending {
            return Ok(None);
        }
        tracing::debug!(on = s.wanted, "relay: the share's m-line changes");
        self.offer().await.map(Some)
    }

    /// Applies a publish answer; returns the next offer when the share changed meanwhile.
    pub async fn apply_answer(&mut self, sdp: String) -> anyhow::Result<Option<ClientMessage>> {
        let ids = SimulcastIds::from_sdp(&sdp)?;
        self.pc
            .set_remote_description(RTCSessionDescription::answer(sdp).map_err(|e| anyhow!("{e}"))?)
            .await
            .map_err(|e| anyhow!("set the publish answer: {e}"))?;
        self.ids = Some(ids);
        self.screen.negotiating = false;
        self.renegotiate_if_due().await
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
            Route::Screen => {
                if !self.screen.sending {
                    return;
                }
                w.rewrite(&mut packet, None);
                let _ = packet
                    .header
                    .set_extension(ids.mid_ext, self.screen.mid.clone());
                &self.screen.track
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

/// Reads and drops the RTCP the server sends about `track` (its receiver reports): with the
/// tap on, every RTCP packet is queued for the application on its track's channel (256
/// events), and a channel nobody reads fills in about four minutes of one report a second,
/// after which the engine logs an error for each report, every second, for the rest of the
/// meeting (seen for the microphone in `tests/browser/cascade.mjs`).
fn spawn_rtcp_drain(track: Arc<TrackLocalStaticRTP>) {
    tokio::spawn(async move { while track.poll().await.is_some() {} });
}

/// Keyframe requests on `track`, as the streams `routes` names for the position of the SSRC
/// asked for among the track's (`None`: an SSRC not ours, which asks for every layer) and the
/// number of SSRCs.
fn spawn_keyframe_watch(
    track: Arc<TrackLocalStaticRTP>,
    keyframes: mpsc::Sender<Route>,
    routes: fn(Option<usize>, usize) -> Vec<Route>,
) {
    tokio::spawn(async move {
        let ssrcs: Vec<u32> = track.track().await.ssrcs().collect();
        while let Some(evt) = track.poll().await {
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
                let at = ssrcs.iter().position(|s| *s == ssrc);
                for route in routes(at, ssrcs.len()) {
                    let _ = keyframes.try_send(route);
                }
            }
        }
    });
}
