//! One relay session on one server (the upstream, over a WebSocket, as its relay seat; or this
//! server, in process, as the linked meeting's `upstream` seat): join, publish what the other
//! side receives, subscribe to what this side's chair sends, until the connection is lost, the
//! seat is ended, or the relay lets go (then leave). Every wait on the server has a deadline.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use signaling::protocol::{ClientMessage, PROTOCOL_VERSION, PcKind, ServerMessage};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::TrackRemote;

use crate::Media;
use crate::channel::Channel;
use crate::forward::Route;
use crate::hand::{self, Names};
use crate::peer;
use crate::publisher::Publisher;
use crate::subscriber::{Relayed, Subscriber};

/// How long leaving waits for the server's `bye`: a connection dropped before it is a lost
/// one, whose seat the server keeps for a resume.
const LEAVE_WAIT: Duration = Duration::from_secs(2);

/// The queues a session is wired to.
pub struct Wiring {
    /// What this session's subscriber receives (for the other side to publish).
    pub media_out: mpsc::Sender<Media>,
    /// Keyframe requests this session's publisher gets (for the other side's subscriber).
    pub keys_out: mpsc::Sender<Route>,
    /// Whether this session's subscriber receives a share (for the other side's publisher).
    pub screen_out: Arc<watch::Sender<bool>>,
    /// What to publish (the other side's subscriber's); closed: leave.
    pub media_in: mpsc::Receiver<Media>,
    /// Keyframe requests for this session's subscriber: (slot, stream).
    pub keys_in: mpsc::Receiver<(u8, Route)>,
    /// Whether the other side has a share to publish here.
    pub screen_in: watch::Receiver<bool>,
    /// The hand this session's meeting asks to raise one level up (`room_state.hand_up`, as
    /// the text to raise), and the hand to raise here (the relay seat's, upstream).
    pub hand_out: Arc<watch::Sender<Option<String>>>,
    pub hand_in: watch::Receiver<Option<String>>,
}

pub struct Options {
    pub bind_ip: IpAddr,
    /// Camera layers the publisher offers.
    pub layers: u8,
    /// Joining may take this long.
    pub join_wait: Duration,
    /// The server sent nothing (not even a ping) for this long: it is gone. `None`: no limit
    /// (an in-process connection, whose pings are answered for it).
    pub silence: Option<Duration>,
    /// Whom the subscriber relays.
    pub relayed: Relayed,
}

/// Joins with `token` and runs the session. Returns why it ended (never with the token).
pub async fn run(
    chan: &mut dyn Channel,
    token: &str,
    opts: &Options,
    w: Wiring,
) -> anyhow::Result<()> {
    let join = ClientMessage::Join {
        v: PROTOCOL_VERSION,
        token: token.to_owned(),
        resume: None,
    };
    chan.send(&join).await?;
    let (mut subscriber, mut tracks) = Subscriber::new(
        opts.bind_ip,
        w.media_out.clone(),
        w.screen_out.clone(),
        opts.relayed,
    );
    let joined = tokio::time::timeout(opts.join_wait, async {
        loop {
            match chan.recv().await? {
                Some(ServerMessage::Joined { roster, .. }) => {
                    subscriber.roster(&roster);
                    return Ok(Names::new(&roster));
                }
                Some(ServerMessage::Error { code, message, .. }) => {
                    bail!("the seat was refused: {code:?}: {message}")
                }
                _ => continue,
            }
        }
    });
    let mut names = joined
        .await
        .map_err(|_| anyhow!("no `joined` within {:?}", opts.join_wait))??;
    // Joined: whatever happens now, the seat is left (a dropped connection would be parked
    // for a resume the relay never makes).
    let peers = Peers {
        subscriber: &mut subscriber,
        tracks: &mut tracks,
        names: &mut names,
    };
    let result = serve(chan, opts, w, peers).await;
    leave(chan).await;
    subscriber.close().await;
    result
}

/// The session's subscriber, the tracks it announces, and the meeting's names.
struct Peers<'a> {
    subscriber: &'a mut Subscriber,
    tracks: &'a mut mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    names: &'a mut Names,
}

/// Publishes and subscribes until the connection is lost, the seat is ended, or `media_in`
/// closes.
async fn serve(
    chan: &mut dyn Channel,
    opts: &Options,
    mut w: Wiring,
    peers: Peers<'_>,
) -> anyhow::Result<()> {
    let Peers {
        subscriber,
        tracks,
        names,
    } = peers;
    let (mut publisher, offer) = Publisher::new(opts.bind_ip, opts.layers, w.keys_out).await?;
    let result = async {
        chan.send(&offer).await?;
        // A share the other side already has is published once the first answer is in.
        let sharing = *w.screen_in.borrow_and_update();
        publisher.want_screen(sharing).await?;
        // A hand wanted up before this session (a reconnect: the upstream dropped it).
        let wanted = w.hand_in.borrow_and_update().clone();
        if wanted.is_some() {
            chan.send(&hand::message(wanted)).await?;
        }
        loop {
            tokio::select! {
                m = recv(chan, opts.silence) => {
                    let Some(m) = m? else { continue };
                    if let Some(wanted) = names.observe(&m) {
                        w.hand_out.send_if_modified(|h| {
                            let changed = *h != wanted;
                            *h = wanted;
                            changed
                        });
                    }
                    if let Some(reply) = on_message(m, &mut publisher, subscriber).await? {
                        chan.send(&reply).await?;
                    }
                }
                Ok(()) = w.hand_in.changed() => {
                    let wanted = w.hand_in.borrow_and_update().clone();
                    chan.send(&hand::message(wanted)).await?;
                }
                Some(track) = tracks.recv() => subscriber.read(track).await,
                m = w.media_in.recv() => match m {
                    Some(m) => publisher.forward(m).await,
                    None => return Ok(()),
                },
                Some((slot, route)) = w.keys_in.recv() => {
                    subscriber.request_keyframe(slot, route).await;
                }
                // The supervisor holds every sender for the relay's life: this never ends.
                Ok(()) = w.screen_in.changed() => {
                    let sharing = *w.screen_in.borrow_and_update();
                    if let Some(offer) = publisher.want_screen(sharing).await? {
                        chan.send(&offer).await?;
                    }
                }
            }
        }
    }
    .await;
    publisher.close().await;
    result
}

async fn recv(
    chan: &mut dyn Channel,
    silence: Option<Duration>,
) -> anyhow::Result<Option<ServerMessage>> {
    match silence {
        Some(limit) => tokio::time::timeout(limit, chan.recv())
            .await
            .map_err(|_| anyhow!("the server sent nothing for {limit:?}"))?,
        None => chan.recv().await,
    }
}

/// Handles one server message; returns the reply to send, if any.
async fn on_message(
    m: ServerMessage,
    publisher: &mut Publisher,
    subscriber: &mut Subscriber,
) -> anyhow::Result<Option<ClientMessage>> {
    match m {
        ServerMessage::PublishAnswer { sdp, .. } => publisher.apply_answer(sdp).await,
        ServerMessage::Candidate { pc, candidate, .. } => {
            let target = match pc {
                PcKind::Publish => Some(publisher.pc()),
                PcKind::Subscribe => subscriber.pc(),
            };
            if let Some(target) = target {
                let _ = target
                    .add_ice_candidate(peer::candidate_init(candidate))
                    .await;
            }
            Ok(None)
        }
        ServerMessage::Bye { code, reason, .. } => {
            bail!("the server ended the seat: {code:?}: {reason}")
        }
        ServerMessage::Error { code, message, .. } => {
            tracing::warn!(?code, %message, "relay: the server reported an error");
            Ok(None)
        }
        other => subscriber.on_message(&other).await,
    }
}

/// Sends `leave` and waits for the `bye` that answers it.
async fn leave(chan: &mut dyn Channel) {
    if chan
        .send(&ClientMessage::Leave {
            v: PROTOCOL_VERSION,
        })
        .await
        .is_err()
    {
        return;
    }
    let bye = async {
        while let Ok(m) = chan.recv().await {
            if matches!(m, Some(ServerMessage::Bye { .. })) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LEAVE_WAIT, bye).await;
}
