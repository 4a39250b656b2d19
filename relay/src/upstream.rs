//! One session with the upstream server, as its relay seat: join over `/ws` with the relay
//! link's token, answer the subscribe offers, and hand every packet of the upstream program
//! (its chair's microphone and every layer of its camera) to the relay as [`UpEvent::Media`].
//! Keyframe requests go the other way, as a PLI on the upstream m-line of the layer asked for.
//! Every wait on the upstream has a deadline; the session ends (and the relay reconnects) on
//! any loss.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use signaling::protocol::{
    ClientMessage, MediaKind, PROTOCOL_VERSION, PcKind, Role, ServerMessage, Source, TrackInfo,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnection, PeerConnectionEventHandler};

use crate::RelayLink;
use crate::forward::Route;
use crate::peer;

/// Connecting and joining may take this long before the attempt counts as failed.
const JOIN_WAIT: Duration = Duration::from_secs(10);
/// The upstream sends nothing (not even a ping) for this long: it is gone.
const SILENCE: Duration = Duration::from_secs(45);
/// Server messages above this are refused (the protocol's own limit is 192 KiB).
const MAX_MESSAGE: usize = 256 * 1024;

/// What the upstream session reports.
#[derive(Debug)]
pub enum UpEvent {
    /// A packet of the program; `layers` is how many layers the upstream camera has.
    Media {
        route: Route,
        layers: u8,
        packet: rtp::Packet,
    },
}

/// Which upstream m-line carries what, as the offers' `tracks` say, and the chair's id.
#[derive(Default)]
struct Program {
    chair: Option<String>,
    by_mid: HashMap<String, TrackInfo>,
    /// The receiving track of each mid, with the SSRC its packets carry (for PLIs).
    remotes: HashMap<String, (Arc<dyn TrackRemote>, u32)>,
}

impl Program {
    /// Where the packets of `mid` go, and the number of camera layers; `None`: not relayed
    /// (not the chair's, or its screen: not in this slice).
    fn route(&self, mid: &str) -> Option<(Route, u8)> {
        let t = self.by_mid.get(mid)?;
        if Some(&t.participant) != self.chair.as_ref() {
            return None;
        }
        let layers = self
            .by_mid
            .values()
            .filter(|o| o.participant == t.participant && o.source == Source::Camera)
            .map(|o| o.layer.unwrap_or(0).saturating_add(1))
            .max()
            .unwrap_or(1);
        let route = match (t.kind, t.source) {
            (MediaKind::Audio, Source::Microphone) => Route::Audio,
            (MediaKind::Video, Source::Camera) => Route::Video {
                layer: t.layer.unwrap_or(0),
            },
            _ => return None,
        };
        Some((route, layers))
    }

    /// The receiving track and SSRC of the chair's camera layer `layer`.
    fn layer_remote(&self, layer: u8) -> Option<(Arc<dyn TrackRemote>, u32)> {
        let mid = self.by_mid.iter().find_map(|(mid, _)| {
            matches!(self.route(mid), Some((Route::Video { layer: l }, _)) if l == layer)
                .then_some(mid)
        })?;
        self.remotes.get(mid).cloned()
    }
}

type Shared = Arc<Mutex<Program>>;

fn lock(p: &Shared) -> std::sync::MutexGuard<'_, Program> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hands each received track to the session loop, which knows the connection and its mids.
struct Handler {
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(track);
    }
}

/// Runs one session until the upstream is lost, the seat is ended, or `keyframes` closes.
/// Returns why it ended (never containing the token).
pub async fn run(
    link: &RelayLink,
    bind_ip: std::net::IpAddr,
    events: mpsc::Sender<UpEvent>,
    mut keyframes: mpsc::Receiver<u8>,
) -> anyhow::Result<()> {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let connect = tokio_tungstenite::connect_async_with_config(link.ws_url(), Some(config), false);
    let (ws, _) = tokio::time::timeout(JOIN_WAIT, connect)
        .await
        .map_err(|_| anyhow!("the upstream did not answer within {JOIN_WAIT:?}"))?
        .context("connect to the upstream")?;
    let (mut tx, mut rx) = ws.split();
    let join = ClientMessage::Join {
        v: PROTOCOL_VERSION,
        token: link.token().to_owned(),
        resume: None,
    };
    tx.send(text(&join)).await.context("send join")?;
    let program: Shared = Arc::default();
    let joined = tokio::time::timeout(JOIN_WAIT, async {
        loop {
            match next(&mut rx).await? {
                Some(ServerMessage::Joined { roster, .. }) => {
                    lock(&program).chair = roster
                        .iter()
                        .find(|p| p.role == Role::Chair)
                        .map(|p| p.id.clone());
                    return Ok(());
                }
                Some(ServerMessage::Error { code, message, .. }) => {
                    bail!("the upstream refused the relay link: {code:?}: {message}")
                }
                _ => continue,
            }
        }
    });
    joined
        .await
        .map_err(|_| anyhow!("no `joined` from the upstream within {JOIN_WAIT:?}"))??;
    tracing::info!("relay: joined the upstream meeting");

    let (tracks_tx, mut tracks_rx) = mpsc::unbounded_channel();
    let mut subscribe: Option<Arc<dyn PeerConnection>> = None;
    let result = loop {
        tokio::select! {
            m = tokio::time::timeout(SILENCE, next(&mut rx)) => {
                let m = match m {
                    Err(_) => break Err(anyhow!("the upstream sent nothing for {SILENCE:?}")),
                    Ok(Err(e)) => break Err(e),
                    Ok(Ok(None)) => continue,
                    Ok(Ok(Some(m))) => m,
                };
                match on_message(m, &program, &mut subscribe, bind_ip, &tracks_tx).await {
                    Ok(Some(reply)) => {
                        if let Err(e) = tx.send(text(&reply)).await {
                            break Err(anyhow!("send to the upstream: {e}"));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => break Err(e),
                }
            }
            Some(track) = tracks_rx.recv() => {
                if let Some(pc) = &subscribe {
                    spawn_reader(pc, track, program.clone(), events.clone()).await;
                }
            }
            layer = keyframes.recv() => match layer {
                Some(layer) => request_keyframe(&program, layer).await,
                None => break Ok(()),
            },
        }
    };
    let _ = tx
        .send(text(&ClientMessage::Leave {
            v: PROTOCOL_VERSION,
        }))
        .await;
    if let Some(pc) = subscribe {
        let _ = pc.close().await;
    }
    result
}

/// Handles one server message; returns the reply to send, if any.
async fn on_message(
    m: ServerMessage,
    program: &Shared,
    subscribe: &mut Option<Arc<dyn PeerConnection>>,
    bind_ip: std::net::IpAddr,
    tracks: &mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
) -> anyhow::Result<Option<ClientMessage>> {
    match m {
        ServerMessage::SubscribeOffer {
            revision,
            sdp,
            tracks: infos,
            restart,
            ..
        } => {
            if restart && let Some(old) = subscribe.take() {
                let _ = old.close().await;
            }
            {
                let mut p = lock(program);
                p.by_mid = infos.into_iter().map(|t| (t.mid.clone(), t)).collect();
                if restart {
                    p.remotes.clear();
                }
            }
            let pc = match subscribe {
                Some(pc) => pc.clone(),
                None => {
                    let handler = Arc::new(Handler {
                        tracks: tracks.clone(),
                    });
                    let pc = peer::new_pc(bind_ip, handler, false).await?;
                    *subscribe = Some(pc.clone());
                    pc
                }
            };
            let sdp = peer::answer_offer(&pc, sdp).await?;
            Ok(Some(ClientMessage::SubscribeAnswer {
                v: PROTOCOL_VERSION,
                revision,
                sdp,
            }))
        }
        ServerMessage::Candidate {
            pc: PcKind::Subscribe,
            candidate,
            ..
        } => {
            if let Some(pc) = subscribe {
                let _ = pc.add_ice_candidate(peer::candidate_init(candidate)).await;
            }
            Ok(None)
        }
        ServerMessage::ParticipantJoined { participant, .. } if participant.role == Role::Chair => {
            lock(program).chair = Some(participant.id);
            Ok(None)
        }
        ServerMessage::ParticipantLeft { participant, .. } => {
            let mut p = lock(program);
            if p.chair.as_deref() == Some(participant.as_str()) {
                p.chair = None;
            }
            Ok(None)
        }
        ServerMessage::Bye { code, reason, .. } => {
            bail!("the upstream ended the relay seat: {code:?}: {reason}")
        }
        ServerMessage::Error { code, message, .. } => {
            tracing::warn!(?code, %message, "relay: the upstream reported an error");
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Reads one received track and forwards its packets while its m-line is the program's.
async fn spawn_reader(
    pc: &Arc<dyn PeerConnection>,
    track: Arc<dyn TrackRemote>,
    program: Shared,
    events: mpsc::Sender<UpEvent>,
) {
    let Some(mid) = mid_of(pc, &track).await else {
        tracing::debug!("relay: a received track has no m-line");
        return;
    };
    tracing::debug!(%mid, "relay: reading an upstream track");
    tokio::spawn(async move {
        while let Some(evt) = track.poll().await {
            let TrackRemoteEvent::OnRtpPacket(packet) = evt else {
                continue;
            };
            let route = {
                let mut p = lock(&program);
                let route = p.route(&mid);
                if route.is_some() {
                    p.remotes
                        .insert(mid.clone(), (track.clone(), packet.header.ssrc));
                }
                route
            };
            let Some((route, layers)) = route else {
                tracing::trace!(%mid, "relay: not the program");
                continue;
            };
            // A full queue means the local side is stalled: drop, as a lossy line would.
            let _ = events.try_send(UpEvent::Media {
                route,
                layers,
                packet,
            });
        }
    });
}

/// The mid of the transceiver whose receiver is `track`.
async fn mid_of(pc: &Arc<dyn PeerConnection>, track: &Arc<dyn TrackRemote>) -> Option<String> {
    let id = track.track_id().await;
    for t in pc.get_transceivers().await {
        if let Ok(Some(r)) = t.receiver().await
            && r.track().track_id().await == id
        {
            return t.mid().await.ok().flatten();
        }
    }
    None
}

async fn request_keyframe(program: &Shared, layer: u8) {
    let remote = lock(program).layer_remote(layer);
    if let Some((track, ssrc)) = remote {
        let _ = track
            .write_rtcp(vec![Box::new(PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc: ssrc,
            })])
            .await;
    }
}

fn text(m: &ClientMessage) -> Message {
    Message::Text(serde_json::to_string(m).unwrap_or_default().into())
}

/// The next server message; `None` for frames that are not one (pings, unknown messages from
/// a newer server); an error once the connection is gone.
async fn next<S>(rx: &mut S) -> anyhow::Result<Option<ServerMessage>>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    match rx.next().await {
        Some(Ok(Message::Text(t))) => match serde_json::from_str(&t) {
            Ok(m) => Ok(Some(m)),
            Err(e) => {
                tracing::debug!("relay: an upstream message not understood: {e}");
                Ok(None)
            }
        },
        Some(Ok(Message::Close(_))) | None => bail!("the upstream closed the connection"),
        Some(Ok(_)) => Ok(None),
        Some(Err(e)) => bail!("the upstream connection failed: {e}"),
    }
}
