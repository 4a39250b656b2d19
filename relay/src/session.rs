//! One relay session on one server (the upstream, over a WebSocket, as its relay seat; or this
//! server, in process, as the linked meeting's `upstream` seat): join, publish what the other
//! side receives, subscribe to what this side's chair sends, until the connection is lost, the
//! seat is ended, or the relay lets go (then leave). Every wait on the server has a deadline.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use signaling::Signaling;
use signaling::protocol::{ClientMessage, ErrorCode, PROTOCOL_VERSION, PcKind, ServerMessage};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::TrackRemote;

use crate::Media;
use crate::channel::Channel;
use crate::forward::Route;
use crate::hand::{self, Follow, Names, UpView, Upward};
use crate::peer;
use crate::publisher::Publisher;
use crate::subscriber::{Relayed, Subscriber};

/// How long leaving waits for the server's `bye`: a connection dropped before it is a lost
/// one, whose seat the server keeps for a resume.
const LEAVE_WAIT: Duration = Duration::from_secs(2);

/// A raise the upstream refused as too soon after the one before is sent again after this
/// (its interval between two raises of one seat is 2 s).
const RAISE_RETRY: Duration = Duration::from_millis(2_100);

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
    /// The upstream session: where it tells what the upstream says of the relay seat.
    pub upward_out: Option<Arc<watch::Sender<Upward>>>,
    /// The program seat: what to tell the linked meeting of the upstream (on this server).
    pub upward_in: Option<(watch::Receiver<Upward>, Signaling)>,
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
                Some(ServerMessage::Joined {
                    roster,
                    participant,
                    meeting,
                    ..
                }) => {
                    subscriber.roster(&roster);
                    return Ok((Names::new(&roster), participant, meeting.id));
                }
                Some(ServerMessage::Error { code, message, .. }) => {
                    bail!("the seat was refused: {code:?}: {message}")
                }
                _ => continue,
            }
        }
    });
    let (mut names, me, meeting) = joined
        .await
        .map_err(|_| anyhow!("no `joined` within {:?}", opts.join_wait))??;
    // Joined: whatever happens now, the seat is left (a dropped connection would be parked
    // for a resume the relay never makes).
    let peers = Peers {
        subscriber: &mut subscriber,
        tracks: &mut tracks,
        names: &mut names,
        me: &me,
        meeting: &meeting,
    };
    let upward = w.upward_in.as_ref().map(|(_, s)| s.clone());
    let result = serve(chan, opts, w, peers).await;
    // The province no longer holds the upstream floor as far as this meeting knows.
    if let Some(signaling) = upward {
        signaling.set_upstream_view(&meeting, false, false);
    }
    leave(chan).await;
    subscriber.close().await;
    result
}

/// The session's subscriber, the tracks it announces, and the meeting's names.
struct Peers<'a> {
    subscriber: &'a mut Subscriber,
    tracks: &'a mut mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    names: &'a mut Names,
    /// This seat's participant id, and its meeting.
    me: &'a str,
    meeting: &'a str,
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
        me,
        meeting,
    } = peers;
    let mut follow = Follow::default();
    let mut told = Upward::default();
    let mut raise_again: Option<tokio::time::Instant> = None;
    if let Some((view, signaling)) = &mut w.upward_in {
        told = *view.borrow_and_update();
        signaling.set_upstream_view(meeting, told.floor, false);
    }
    let (mut publisher, offer) = Publisher::new(opts.bind_ip, opts.layers, w.keys_out).await?;
    let result = async {
        chan.send(&offer).await?;
        // A share the other side already has is published once the first answer is in.
        let sharing = *w.screen_in.borrow_and_update();
        publisher.want_screen(sharing).await?;
        // A hand wanted up before this session (a reconnect: the upstream dropped it).
        let wanted = w.hand_in.borrow_and_update().clone();
        if wanted.is_some() {
            let m = hand::message(wanted);
            follow.sending(&m);
            chan.send(&m).await?;
        }
        loop {
            tokio::select! {
                m = recv(chan, opts.silence) => {
                    let Some(m) = m? else { continue };
                    if let ServerMessage::Error {
                        code: ErrorCode::RateLimited,
                        request: Some(r),
                        ..
                    } = &m
                        && r == "raise_hand"
                        && follow.refused_too_soon()
                    {
                        raise_again = Some(tokio::time::Instant::now() + RAISE_RETRY);
                    }
                    if let (Some(out), Some(v)) = (&w.upward_out, UpView::of(&m, me)) {
                        let gone = follow.observe(v);
                        out.send_if_modified(|u| {
                            let before = *u;
                            u.floor = v.floor;
                            u.gone = u.gone.wrapping_add(u64::from(gone));
                            *u != before
                        });
                    }
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
                    let m = hand::message(w.hand_in.borrow_and_update().clone());
                    if follow.sending(&m) {
                        chan.send(&m).await?;
                    }
                }
                () = sleep_until(raise_again) => {
                    raise_again = None;
                    let wanted = w.hand_in.borrow().clone();
                    if wanted.is_some() && follow.refused_too_soon() {
                        let m = hand::message(wanted);
                        follow.sending(&m);
                        chan.send(&m).await?;
                    }
                }
                Some(now) = upward_changed(&mut w.upward_in) => {
                    if let Some((_, signaling)) = &w.upward_in {
                        signaling.set_upstream_view(meeting, now.floor, now.gone != told.gone);
                    }
                    told = now;
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

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next change of what the upstream says of the relay seat (never, for a session that is
/// not told).
async fn upward_changed(
    upward: &mut Option<(watch::Receiver<Upward>, Signaling)>,
) -> Option<Upward> {
    match upward {
        Some((view, _)) => match view.changed().await {
            Ok(()) => Some(*view.borrow_and_update()),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
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
