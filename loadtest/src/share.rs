//! A participant that shares its screen and has no camera or microphone, as a hall's page
//! sharing slides: one VP8 stream declared `screen` in `publish_offer`, stopped and started
//! again by renegotiating its m-line (`inactive`, then `sendonly`) as a browser does. Every
//! frame is a keyframe of a chosen size, so a receiver can tell the share from any camera by
//! resolution and decodes at once however late it joins (no keyframe request needs answering).
//! Subscribe offers are answered, so the server keeps its subscribe connection; what arrives is
//! dropped. The cascade's tests use it for the slides crossing the relay.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::protocol::{ClientMessage, PROTOCOL_VERSION, PcKind, ServerMessage};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{PeerConnection, PeerConnectionEventHandler, RTCSessionDescription};
use webrtc::rtp_transceiver::RTCRtpSenderId;

use crate::media::vp8_frame;
use crate::point::next_server as next;

/// Frames per second of the share (slides change rarely; browsers send screens slowly too).
const FPS: u64 = 10;
/// Bytes per frame.
const FRAME_BYTES: usize = 1_200;

struct Quiet;

impl PeerConnectionEventHandler for Quiet {}

enum Command {
    Send(ClientMessage),
    Share(bool),
}

/// A joined participant sharing a screen of `dims` (while [`Sharer::share`] says so).
pub struct Sharer {
    pub participant: String,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

impl Sharer {
    /// Joins with `token`, publishes the share and starts sending it once answered.
    pub async fn join(
        ws_url: &str,
        token: &str,
        bind_ip: IpAddr,
        dims: (u16, u16),
    ) -> anyhow::Result<Sharer> {
        let (ws, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .with_context(|| format!("connect {ws_url}"))?;
        let (mut tx, mut rx) = ws.split();
        send(
            &mut tx,
            &ClientMessage::Join {
                v: PROTOCOL_VERSION,
                token: token.to_owned(),
                resume: None,
                chain: Vec::new(),
            },
        )
        .await?;
        let participant = loop {
            match next(&mut rx).await? {
                ServerMessage::Joined { participant, .. } => break participant,
                ServerMessage::Error { code, message, .. } => {
                    bail!("join refused: {code:?}: {message}")
                }
                _ => continue,
            }
        };
        let mut share = Share::new(bind_ip, dims).await?;
        send(&mut tx, &share.offer(true).await?).await?;
        let (commands, mut cmd_rx) = mpsc::channel(16);
        let task = tokio::spawn(async move {
            let mut subscribe: Option<Arc<dyn PeerConnection>> = None;
            let mut frames = tokio::time::interval(Duration::from_millis(1_000 / FPS));
            loop {
                let out = tokio::select! {
                    m = next(&mut rx) => match m {
                        Ok(m) => share.on_message(m, &mut subscribe, bind_ip).await,
                        Err(_) => return,
                    },
                    Some(c) = cmd_rx.recv() => match c {
                        Command::Send(m) => Ok(Some(m)),
                        Command::Share(on) => share.offer(on).await.map(Some),
                    },
                    _ = frames.tick() => {
                        share.frame().await;
                        Ok(None)
                    }
                };
                match out {
                    Ok(Some(m)) => {
                        if send(&mut tx, &m).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!("sharer: {e:#}"),
                }
            }
        });
        Ok(Sharer {
            participant,
            commands,
            task,
        })
    }

    /// Sends a message (a control: the sharer may be the chair).
    pub async fn send(&self, m: ClientMessage) {
        let _ = self.commands.send(Command::Send(m)).await;
    }

    /// Starts or stops the share (a renegotiation of its m-line).
    pub async fn share(&self, on: bool) {
        let _ = self.commands.send(Command::Share(on)).await;
    }
}

impl Drop for Sharer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The publish connection and the share's stream.
struct Share {
    pc: Arc<dyn PeerConnection>,
    track: Arc<TrackLocalStaticRTP>,
    sender: RTCRtpSenderId,
    ssrc: u32,
    dims: (u16, u16),
    /// Frames go out only while sharing and once the answer is applied.
    on: bool,
    answered: bool,
    seq: u16,
    picture: u16,
    timestamp: u32,
}

impl Share {
    async fn new(bind_ip: IpAddr, dims: (u16, u16)) -> anyhow::Result<Share> {
        let pc = relay::peer::new_pc(bind_ip, Arc::new(Quiet), true).await?;
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "share".into(),
            "share-screen".into(),
            "share-screen".into(),
            RtpCodecKind::Video,
            vec![relay::peer::encoding(relay::peer::vp8(), "")],
        )));
        let sender = pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(|e| anyhow!("add the share: {e}"))?
            .id();
        let ssrc = track.track().await.ssrcs().next().unwrap_or(1);
        Ok(Share {
            pc,
            track,
            sender,
            ssrc,
            dims,
            on: false,
            answered: false,
            seq: 0,
            picture: 0,
            timestamp: 0,
        })
    }

    /// An offer with the share's m-line `sendonly` (`on`) or `inactive`.
    async fn offer(&mut self, on: bool) -> anyhow::Result<ClientMessage> {
        let transceiver = relay::peer::transceiver_of(&self.pc, self.sender)
            .await
            .ok_or_else(|| anyhow!("the share has no m-line"))?;
        transceiver
            .set_direction(relay::peer::share_direction(on))
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let sdp = relay::peer::offer(&self.pc).await?;
        let mid = relay::peer::mid(&transceiver).await?;
        self.on = on;
        self.answered = false;
        Ok(relay::peer::publish_offer(sdp, mid))
    }

    async fn on_message(
        &mut self,
        m: ServerMessage,
        subscribe: &mut Option<Arc<dyn PeerConnection>>,
        bind_ip: IpAddr,
    ) -> anyhow::Result<Option<ClientMessage>> {
        match m {
            ServerMessage::PublishAnswer { sdp, .. } => {
                let answer = RTCSessionDescription::answer(sdp).map_err(|e| anyhow!("{e}"))?;
                self.pc
                    .set_remote_description(answer)
                    .await
                    .map_err(|e| anyhow!("{e}"))?;
                self.answered = true;
                Ok(None)
            }
            ServerMessage::SubscribeOffer {
                revision,
                sdp,
                restart,
                ..
            } => {
                if restart && let Some(old) = subscribe.take() {
                    let _ = old.close().await;
                }
                let pc = match subscribe {
                    Some(pc) => pc.clone(),
                    None => {
                        let pc = relay::peer::new_pc(bind_ip, Arc::new(Quiet), false).await?;
                        *subscribe = Some(pc.clone());
                        pc
                    }
                };
                let sdp = relay::peer::answer_offer(&pc, sdp).await?;
                Ok(Some(ClientMessage::SubscribeAnswer {
                    v: PROTOCOL_VERSION,
                    revision,
                    sdp,
                }))
            }
            ServerMessage::Candidate { pc, candidate, .. } => {
                let target = match pc {
                    PcKind::Publish => Some(&self.pc),
                    PcKind::Subscribe => subscribe.as_ref(),
                };
                if let Some(target) = target {
                    let _ = target
                        .add_ice_candidate(relay::peer::candidate_init(candidate))
                        .await;
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Sends one keyframe while sharing.
    async fn frame(&mut self) {
        if !(self.on && self.answered) {
            return;
        }
        let (w, h) = self.dims;
        let payloads = vp8_frame(self.picture, true, FRAME_BYTES, w, h);
        let n = payloads.len();
        for (i, payload) in payloads.into_iter().enumerate() {
            let header = rtp::header::Header {
                version: 2,
                payload_type: 96,
                sequence_number: self.seq,
                timestamp: self.timestamp,
                ssrc: self.ssrc,
                marker: i + 1 == n,
                ..Default::default()
            };
            self.seq = self.seq.wrapping_add(1);
            let _ = self.track.write_rtp(rtp::Packet { header, payload }).await;
        }
        self.picture = (self.picture + 1) & 0x7FFF;
        self.timestamp = self.timestamp.wrapping_add((90_000 / FPS) as u32);
    }
}

type WsSink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

async fn send(tx: &mut WsSink, m: &ClientMessage) -> anyhow::Result<()> {
    let text = serde_json::to_string(m)?;
    tx.send(Message::Text(text.into())).await?;
    Ok(())
}
