//! The upstream seat in the local meeting: the relay's in-process connection to this server's
//! signaling (the `/ws` protocol over queues, see `signaling::local`) and its publish
//! connection, a simulcast publisher (one rid per upstream layer) over loopback UDP to this
//! server's media worker. It re-publishes each upstream packet on the matching local stream
//! and reports the keyframe requests the local server sends it, by layer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::Signaling;
use signaling::local::LocalConnection;
use signaling::protocol::{ClientMessage, PROTOCOL_VERSION, PcKind, ServerMessage};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{PeerConnection, PeerConnectionEventHandler, RTCSessionDescription};

use crate::forward::{Rewriter, Route, rid};
use crate::peer::{self, SimulcastIds};

/// Joining and the publish answer may take this long (in-process: milliseconds).
const LOCAL_WAIT: Duration = Duration::from_secs(10);
/// How long leaving waits for the server's `bye`.
const LEAVE_WAIT: Duration = Duration::from_secs(2);

struct Quiet;

impl PeerConnectionEventHandler for Quiet {}

/// A connected upstream seat. Dropping it leaves the local meeting.
pub struct Seat {
    pc: Arc<dyn PeerConnection>,
    video: Arc<TrackLocalStaticRTP>,
    audio: Arc<TrackLocalStaticRTP>,
    ids: SimulcastIds,
    rewriters: HashMap<Route, Rewriter>,
    /// Cleared when the seat's session ends (the local meeting ended it, or it was lost).
    open: Arc<AtomicBool>,
    /// Ends the signaling task (the seat leaves) when dropped.
    _leave: mpsc::Sender<()>,
}

impl Seat {
    /// Joins the local meeting with `token` (a seat of role `upstream`) and publishes a camera
    /// of `layers` simulcast layers and a microphone. Keyframe requests from the local server
    /// arrive on `keyframes` as layer ranks.
    pub async fn open(
        signaling: &Signaling,
        token: &str,
        layers: u8,
        bind_ip: IpAddr,
        keyframes: mpsc::Sender<u8>,
    ) -> anyhow::Result<Seat> {
        let mut conn = signaling.connect_local().map_err(|e| anyhow!("{e}"))?;
        send(
            &conn,
            &ClientMessage::Join {
                v: PROTOCOL_VERSION,
                token: token.to_owned(),
                resume: None,
            },
        )
        .await?;
        tokio::time::timeout(LOCAL_WAIT, async {
            loop {
                match recv(&mut conn).await? {
                    ServerMessage::Joined { .. } => return Ok(()),
                    ServerMessage::Error { code, message, .. } => {
                        bail!("the local meeting refused the upstream seat: {code:?}: {message}")
                    }
                    _ => continue,
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no local `joined` within {LOCAL_WAIT:?}"))??;

        let pc = peer::new_pc(bind_ip, Arc::new(Quiet), true).await?;
        let layers = layers.clamp(1, crate::forward::RIDS.len() as u8);
        let track = |kind, name: &str, codings| {
            Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                "upstream".into(),
                format!("upstream-{name}"),
                format!("upstream-{name}"),
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
        send(
            &conn,
            &ClientMessage::PublishOffer {
                v: PROTOCOL_VERSION,
                sdp,
                sources: Vec::new(),
            },
        )
        .await?;
        let answer = tokio::time::timeout(LOCAL_WAIT, async {
            loop {
                match recv(&mut conn).await? {
                    ServerMessage::PublishAnswer { sdp, .. } => return Ok(sdp),
                    ServerMessage::Error { code, message, .. } => {
                        bail!("the local server refused to publish: {code:?}: {message}")
                    }
                    _ => continue,
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no local `publish_answer` within {LOCAL_WAIT:?}"))??;
        let ids = SimulcastIds::from_sdp(&answer)?;
        pc.set_remote_description(
            RTCSessionDescription::answer(answer).map_err(|e| anyhow!("{e}"))?,
        )
        .await
        .map_err(|e| anyhow!("set the local publish answer: {e}"))?;

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
        let (leave, left) = mpsc::channel(1);
        let open = Arc::new(AtomicBool::new(true));
        spawn_signaling(conn, pc.clone(), left, open.clone());
        Ok(Seat {
            pc,
            video,
            audio,
            ids,
            rewriters,
            open,
            _leave: leave,
        })
    }

    /// Re-publishes one upstream packet on its local stream (dropped when the seat publishes
    /// no such layer).
    pub async fn forward(&mut self, route: Route, mut packet: rtp::Packet) {
        let Some(w) = self.rewriters.get_mut(&route) else {
            tracing::trace!(?route, "relay: no local stream");
            return;
        };
        tracing::trace!(?route, "relay: forward");
        let track = match route {
            Route::Audio => {
                w.rewrite(&mut packet, None);
                &self.audio
            }
            Route::Video { .. } => {
                w.rewrite(&mut packet, Some(&self.ids));
                &self.video
            }
        };
        if let Err(e) = track.write_rtp(packet).await {
            tracing::debug!("relay: local write: {e}");
        }
    }

    /// Whether the seat's session still runs.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    pub async fn close(self) {
        let _ = self.pc.close().await;
    }
}

/// Keyframe requests on the seat's camera, as layer ranks (a request naming no SSRC of ours
/// asks for every layer).
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

/// Serves the seat's signaling: trickled candidates for the publish connection; everything
/// else is not for an upstream seat (it subscribes to nothing). Ends, leaving the meeting, when
/// the seat is dropped or the session ends.
fn spawn_signaling(
    mut conn: LocalConnection,
    pc: Arc<dyn PeerConnection>,
    mut left: mpsc::Receiver<()>,
    open: Arc<AtomicBool>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = left.recv() => break,
                m = recv(&mut conn) => match m {
                    Ok(ServerMessage::Candidate { pc: PcKind::Publish, candidate, .. }) => {
                        let _ = pc.add_ice_candidate(peer::candidate_init(candidate)).await;
                    }
                    Ok(ServerMessage::Bye { code, .. }) => {
                        tracing::info!(?code, "relay: the local meeting ended the upstream seat");
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                },
            }
        }
        open.store(false, Ordering::Relaxed);
        // Leave, and wait for the `bye` that answers it: a connection dropped before its
        // answer is a lost one, whose seat the server keeps for a resume.
        if send(
            &conn,
            &ClientMessage::Leave {
                v: PROTOCOL_VERSION,
            },
        )
        .await
        .is_ok()
        {
            let bye = async {
                while let Ok(m) = recv(&mut conn).await {
                    if matches!(m, ServerMessage::Bye { .. }) {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(LEAVE_WAIT, bye).await;
        }
        let _ = pc.close().await;
    });
}

async fn send(conn: &LocalConnection, m: &ClientMessage) -> anyhow::Result<()> {
    let text = serde_json::to_string(m).context("encode")?;
    conn.send(text).await.map_err(|e| anyhow!("{e}"))
}

/// The next server message on the local connection (the local server speaks our own
/// protocol: a message it sends that we cannot read is a bug, reported as an error).
async fn recv(conn: &mut LocalConnection) -> anyhow::Result<ServerMessage> {
    let text = conn
        .recv()
        .await
        .ok_or_else(|| anyhow!("the local session ended"))?;
    serde_json::from_str(&text).context("a local server message")
}
