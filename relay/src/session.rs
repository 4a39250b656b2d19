//! One relay session on one server (the upstream, over a WebSocket, as its relay seat; or this
//! server, in process, as the linked meeting's `upstream` seat): join, publish what the other
//! side receives, subscribe to what this side's chair sends, until the connection is lost, the
//! seat is ended, or the relay lets go (then leave). Every wait on the server has a deadline.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use signaling::protocol::{ClientMessage, ErrorCode, PROTOCOL_VERSION, PcKind, ServerMessage};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::TrackRemote;

use crate::Media;
use crate::channel::{Channel, Lost, lost};
use crate::forward::Route;
use crate::hand::{self, Downward, Follow, Names, UpView, Upward};
use crate::peer;
use crate::publisher::Publisher;
use crate::resume::{SeatKey, resume};
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
    pub upward_in: Option<Downward>,
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
    /// The relay seat's `join.chain` (empty for a local seat).
    pub chain: Vec<String>,
}

/// The server refused the seat with an `error`.
#[derive(Debug)]
pub struct Refused {
    pub code: ErrorCode,
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the seat was refused: {:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for Refused {}

/// Whether `e` is the server refusing the seat with `code`.
pub fn refused_as(e: &anyhow::Error, code: ErrorCode) -> bool {
    e.downcast_ref::<Refused>().is_some_and(|r| r.code == code)
}

/// Joins with `token` and runs the session. Returns why it ended (never with the token).
pub async fn run(
    chan: &mut dyn Channel,
    token: &str,
    opts: &Options,
    w: Wiring,
) -> anyhow::Result<()> {
    let mut key = SeatKey {
        token: token.to_owned(),
        resume: None,
        chain: opts.chain.clone(),
    };
    let join = ClientMessage::Join {
        v: PROTOCOL_VERSION,
        token: key.token.clone(),
        resume: None,
        chain: key.chain.clone(),
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
                    resume_token,
                    ..
                }) => {
                    subscriber.roster(&roster);
                    return Ok((Names::new(&roster), participant, meeting.id, resume_token));
                }
                Some(ServerMessage::Error { code, message, .. }) => {
                    return Err(anyhow::Error::new(Refused { code, message }));
                }
                _ => continue,
            }
        }
    });
    let (mut names, me, meeting, resume) = joined
        .await
        .map_err(|_| anyhow!("no `joined` within {:?}", opts.join_wait))??;
    key.resume = resume;
    // Joined: whatever happens now, the seat is left (a dropped connection that could not be
    // resumed would be parked for a resume that never comes).
    let peers = Peers {
        subscriber: &mut subscriber,
        tracks: &mut tracks,
        names: &mut names,
        me: &me,
        meeting: &meeting,
        key: &mut key,
    };
    let upward = w.upward_in.as_ref().map(|d| d.signaling.clone());
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
    /// What it takes to resume the seat.
    key: &'a mut SeatKey,
}

/// Whether the session goes on after one event.
enum Flow {
    Go,
    /// The relay let go (`media_in` closed): leave.
    Done,
}

/// What a session follows of its seat's hand and floor between two events.
#[derive(Default)]
struct HandState {
    follow: Follow,
    raise_again: Option<tokio::time::Instant>,
}

/// Publishes and subscribes until the seat is ended, the relay lets go (`media_in` closes), or
/// the connection is lost and the seat cannot be resumed.
async fn serve(
    chan: &mut dyn Channel,
    opts: &Options,
    mut w: Wiring,
    peers: Peers<'_>,
) -> anyhow::Result<()> {
    let st = HandState::default();
    // The floor as the upstream says it now; a hand gone there is the supervisor's to lower.
    if let Some(d) = &mut w.upward_in {
        let floor = d.view.borrow_and_update().floor;
        d.signaling.set_upstream_view(peers.meeting, floor, false);
    }
    let (publisher, offer) = Publisher::new(opts.bind_ip, opts.layers, w.keys_out.clone()).await?;
    let mut s = Session {
        chan,
        opts,
        w,
        publisher,
        peers,
        st,
    };
    let result = s.serve(offer).await;
    s.publisher.close().await;
    result
}

/// A joined session: its connection, its queues, its peer connections and what it follows.
struct Session<'a> {
    chan: &'a mut dyn Channel,
    opts: &'a Options,
    w: Wiring,
    publisher: Publisher,
    peers: Peers<'a>,
    st: HandState,
}

impl Session<'_> {
    async fn serve(&mut self, offer: ClientMessage) -> anyhow::Result<()> {
        self.chan.send(&offer).await?;
        // A share the other side already has is published once the first answer is in.
        let sharing = *self.w.screen_in.borrow_and_update();
        self.publisher.want_screen(sharing).await?;
        // A hand wanted up before this session (a reconnect: the upstream dropped it).
        let wanted = self.w.hand_in.borrow_and_update().clone();
        if wanted.is_some() {
            let m = hand::message(wanted);
            self.st.follow.sending(&m);
            self.chan.send(&m).await?;
        }
        loop {
            match self.step().await {
                Ok(Flow::Go) => {}
                Ok(Flow::Done) => return Ok(()),
                Err(e) if e.is::<Lost>() => {
                    tracing::warn!("relay: {e:#}: resuming the seat");
                    if let Flow::Done = self.resume().await? {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for one event and handles it.
    async fn step(&mut self) -> anyhow::Result<Flow> {
        let Session {
            chan,
            opts,
            w,
            publisher,
            peers,
            st,
        } = self;
        tokio::select! {
            m = recv(*chan, opts.silence) => {
                let Some(m) = m? else { return Ok(Flow::Go) };
                observe(&m, st, w.upward_out.as_deref(), &w.hand_out, peers.names, peers.me);
                if let Some(reply) = on_message(m, publisher, peers.subscriber).await? {
                    chan.send(&reply).await?;
                }
            }
            Ok(()) = w.hand_in.changed() => {
                let m = hand::message(w.hand_in.borrow_and_update().clone());
                if st.follow.sending(&m) {
                    chan.send(&m).await?;
                }
            }
            () = sleep_until(st.raise_again) => {
                st.raise_again = None;
                let wanted = w.hand_in.borrow().clone();
                if wanted.is_some() && st.follow.refused_too_soon() {
                    let m = hand::message(wanted);
                    st.follow.sending(&m);
                    chan.send(&m).await?;
                }
            }
            Some(now) = upward_changed(&mut w.upward_in) => {
                if let Some(d) = &w.upward_in {
                    d.signaling.set_upstream_view(peers.meeting, now.floor, false);
                }
            }
            Some(track) = peers.tracks.recv() => peers.subscriber.read(track).await,
            m = w.media_in.recv() => match m {
                Some(m) => publisher.forward(m).await,
                None => return Ok(Flow::Done),
            },
            Some((slot, route)) = w.keys_in.recv() => {
                peers.subscriber.request_keyframe(slot, route).await;
            }
            // The supervisor holds every sender for the relay's life: this never ends.
            Ok(()) = w.screen_in.changed() => {
                let sharing = *w.screen_in.borrow_and_update();
                if let Some(offer) = publisher.want_screen(sharing).await? {
                    chan.send(&offer).await?;
                }
            }
        }
        Ok(Flow::Go)
    }

    /// Takes the seat back on a new connection (`resume`) while the peer connections carry
    /// on (they do not need the WebSocket): what the other side sends is still published,
    /// keyframe requests still go out. An error when the seat could not be resumed.
    async fn resume(&mut self) -> anyhow::Result<Flow> {
        let Session {
            chan,
            opts,
            w,
            publisher,
            peers,
            ..
        } = self;
        let resuming = resume(*chan, peers.key, peers.me, opts.join_wait);
        tokio::pin!(resuming);
        let roster = loop {
            tokio::select! {
                r = &mut resuming => break r?,
                Some(track) = peers.tracks.recv() => peers.subscriber.read(track).await,
                m = w.media_in.recv() => match m {
                    Some(m) => publisher.forward(m).await,
                    None => return Ok(Flow::Done),
                },
                Some((slot, route)) = w.keys_in.recv() => {
                    peers.subscriber.request_keyframe(slot, route).await;
                }
            }
        };
        // Who came and went while the socket was away.
        peers.subscriber.roster(&roster);
        *peers.names = Names::new(&roster);
        Ok(Flow::Go)
    }
}

/// What `m` says of the relay seat's hand and floor upstream, and of the hand this meeting
/// wants raised one level up.
fn observe(
    m: &ServerMessage,
    st: &mut HandState,
    upward_out: Option<&watch::Sender<Upward>>,
    hand_out: &watch::Sender<Option<String>>,
    names: &mut Names,
    me: &str,
) {
    if let ServerMessage::Error {
        code: ErrorCode::RateLimited,
        request: Some(r),
        ..
    } = m
        && r == "raise_hand"
        && st.follow.refused_too_soon()
    {
        st.raise_again = Some(tokio::time::Instant::now() + RAISE_RETRY);
    }
    if let (Some(out), Some(v)) = (upward_out, UpView::of(m, me)) {
        let gone = st.follow.observe(v);
        out.send_if_modified(|u| {
            let before = *u;
            u.floor = v.floor;
            u.gone = u.gone.wrapping_add(u64::from(gone));
            *u != before
        });
    }
    if let Some(wanted) = names.observe(m) {
        hand_out.send_if_modified(|h| {
            let changed = *h != wanted;
            *h = wanted;
            changed
        });
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next change of what the upstream says of the relay seat (never, for a session that is
/// not told).
async fn upward_changed(upward: &mut Option<Downward>) -> Option<Upward> {
    match upward {
        Some(d) => match d.view.changed().await {
            Ok(()) => Some(*d.view.borrow_and_update()),
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
            .map_err(|_| lost(format_args!("the server sent nothing for {limit:?}")))?,
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
        // The server closes the connection after a fatal error: the seat is over, not lost.
        ServerMessage::Error {
            code,
            message,
            fatal: true,
            ..
        } => bail!("the server ended the seat: {code:?}: {message}"),
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
