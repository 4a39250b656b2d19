//! A running session and the queues it is wired to ([`Running`], [`Out`]), a local seat that
//! is opened when its media arrives and left when it stops ([`Seat`]), and how the
//! supervisor's three sessions are wired together ([`wire`]): media and keyframe requests each
//! way, whether a share is to be published on the other side, and the hand to raise upstream.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use signaling::Signaling;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::channel::{LocalChannel, WsChannel};
use crate::forward::Route;
use crate::hand::{Downward, Upward};
use crate::session::{self, Options, Wiring};
use crate::subscriber::Relayed;
use crate::{JOIN_WAIT, Media, RelayConfig, SILENCE, STOP_WAIT, UPWARD_LAYERS};

/// A running session and the queues into it; dropping the queues makes it leave.
pub(crate) struct Running {
    task: JoinHandle<anyhow::Result<()>>,
    pub(crate) media: mpsc::Sender<Media>,
    pub(crate) keys: mpsc::Sender<(u8, Route)>,
    pub(crate) started: Instant,
}

/// What a session is wired to besides its input queues: where what its subscriber receives
/// goes, where its publisher's keyframe requests go, where it tells whether it receives a
/// share, and whether the other side has one to publish.
#[derive(Clone)]
pub(crate) struct Out {
    pub(crate) media: mpsc::Sender<Media>,
    pub(crate) keys: mpsc::Sender<Route>,
    screen_out: Arc<watch::Sender<bool>>,
    screen_in: watch::Receiver<bool>,
    hand_out: Arc<watch::Sender<Option<String>>>,
    hand_in: watch::Receiver<Option<String>>,
    upward_out: Option<Arc<watch::Sender<Upward>>>,
    upward_in: Option<Downward>,
}

impl Running {
    /// Runs `session` with fresh input queues; its output goes to `out`.
    pub(crate) fn spawn<F, Fut>(out: Out, session: F) -> Running
    where
        F: FnOnce(Wiring) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (media, media_in) = mpsc::channel(1_024);
        let (keys, keys_in) = mpsc::channel(16);
        let wiring = Wiring {
            media_out: out.media,
            keys_out: out.keys,
            screen_out: out.screen_out,
            media_in,
            keys_in,
            screen_in: out.screen_in,
            hand_out: out.hand_out,
            hand_in: out.hand_in,
            upward_out: out.upward_out,
            upward_in: out.upward_in,
        };
        Running {
            task: tokio::spawn(session(wiring)),
            media,
            keys,
            started: Instant::now(),
        }
    }

    /// Lets go of the session: it leaves (within [`STOP_WAIT`], or is cut).
    pub(crate) async fn stop(self) {
        let Running {
            task, media, keys, ..
        } = self;
        drop((media, keys));
        let mut task = task;
        if tokio::time::timeout(STOP_WAIT, &mut task).await.is_err() {
            task.abort();
        }
    }
}

pub(crate) async fn session_end(s: &mut Option<Running>) -> anyhow::Result<()> {
    match s {
        Some(s) => (&mut s.task)
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the session stopped: {e}"))),
        None => std::future::pending().await,
    }
}

pub(crate) fn spawn_upstream(cfg: &RelayConfig, signaling: &Signaling, out: Out) -> Running {
    let (link, bind_ip, pin) = (cfg.link.clone(), cfg.bind_ip, cfg.tls_pin);
    // Read at each (re)connection: the relay seats in the linked meeting now.
    let chain = signaling.relay_chain(&cfg.meeting);
    // The upstream floor holder is relayed only when it has a local seat to go to.
    let relayed = if cfg.floor_token.is_some() {
        Relayed::ChairAndOther
    } else {
        Relayed::Chair
    };
    Running::spawn(out, move |wiring| async move {
        let mut chan = WsChannel::connect(&link, pin, JOIN_WAIT).await?;
        let opts = Options {
            bind_ip,
            layers: UPWARD_LAYERS,
            join_wait: JOIN_WAIT,
            silence: Some(SILENCE),
            relayed,
            chain,
        };
        session::run(&mut chan, link.token(), &opts, wiring).await
    })
}

fn spawn_seat(
    signaling: &Signaling,
    token: String,
    bind_ip: IpAddr,
    layers: u8,
    out: Out,
) -> anyhow::Result<Running> {
    let conn = signaling
        .connect_local()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Running::spawn(out, move |wiring| async move {
        let mut chan = LocalChannel(conn);
        let opts = Options {
            bind_ip,
            layers,
            join_wait: JOIN_WAIT,
            silence: None,
            // The routing decides what goes up: the chair, or the point it sends up.
            relayed: Relayed::Routed,
            chain: Vec::new(),
        };
        session::run(&mut chan, &token, &opts, wiring).await
    }))
}

/// One local seat: the chair's program (slot 0) or the upstream floor holder's (slot 1).
pub(crate) struct Seat {
    token: Option<String>,
    out: Out,
    pub(crate) running: Option<Running>,
    last_media: Option<Instant>,
    retry_at: Instant,
}

impl Seat {
    pub(crate) fn new(token: Option<String>, out: Out) -> Seat {
        Seat {
            token,
            out,
            running: None,
            last_media: None,
            retry_at: Instant::now(),
        }
    }

    /// A packet for this seat: it is opened for it if need be. Whether it was opened now.
    pub(crate) fn media(&mut self, cfg: &RelayConfig, signaling: &Signaling, m: Media) -> bool {
        self.last_media = Some(Instant::now());
        let mut opened = false;
        if self.running.is_none()
            && Instant::now() >= self.retry_at
            && let Some(token) = &self.token
        {
            match spawn_seat(
                signaling,
                token.clone(),
                cfg.bind_ip,
                m.layers,
                self.out.clone(),
            ) {
                Ok(r) => {
                    self.running = Some(r);
                    opened = true;
                }
                Err(e) => {
                    tracing::warn!("relay: a local seat could not be opened: {e:#}");
                    self.retry_at = Instant::now() + cfg.lost_after;
                }
            }
        }
        if let Some(r) = &self.running {
            let _ = r.media.try_send(m);
        }
        opened
    }

    /// Leaves the seat when its media has been silent for `lost_after`, or when its session
    /// ended by itself (then it is not reopened before `lost_after`). Whether it was left.
    pub(crate) async fn check(&mut self, lost_after: Duration) -> bool {
        let silent = self.last_media.is_none_or(|t| t.elapsed() >= lost_after);
        let ended = self.running.as_ref().is_some_and(|r| r.task.is_finished());
        if !(silent || ended) {
            return false;
        }
        let Some(r) = self.running.take() else {
            return false;
        };
        if ended {
            tracing::warn!("relay: a local seat's session ended");
            self.retry_at = Instant::now() + lost_after;
        }
        r.stop().await;
        true
    }
}

/// The queues the supervisor reads.
pub(crate) struct Inputs {
    /// The upstream program, and the upstream's keyframe requests for what goes up.
    pub up_media: mpsc::Receiver<Media>,
    pub up_keys: mpsc::Receiver<Route>,
    /// What goes up (from the program seat), and the local seats' keyframe requests.
    pub chair_media: mpsc::Receiver<Media>,
    pub keys0: mpsc::Receiver<Route>,
    pub keys1: mpsc::Receiver<Route>,
}

/// The supervisor's sessions, wired together.
pub(crate) struct Wired {
    pub up_out: Out,
    pub seats: [Seat; 2],
    pub down_screen: Arc<watch::Sender<bool>>,
    pub up_screen: Arc<watch::Sender<bool>>,
    /// What the upstream says of the relay seat (its floor, its hand), for the linked meeting.
    pub upward: Arc<watch::Sender<Upward>>,
    /// The hand the linked meeting wants raised upstream: for the supervisor to drop a hand
    /// gone upstream.
    pub hand_up: Arc<watch::Sender<Option<String>>>,
    pub inputs: Inputs,
}

/// Wires the upstream session, the program seat (slot 0) and the floor seat (slot 1).
pub(crate) fn wire(cfg: &RelayConfig, signaling: &Signaling) -> Wired {
    let (up_media_tx, up_media) = mpsc::channel::<Media>(1_024);
    let (up_keys_tx, up_keys) = mpsc::channel::<Route>(16);
    let (chair_media_tx, chair_media) = mpsc::channel::<Media>(1_024);
    let (keys0_tx, keys0) = mpsc::channel::<Route>(16);
    let (keys1_tx, keys1) = mpsc::channel::<Route>(16);
    let down_screen = Arc::new(watch::channel(false).0);
    let up_screen = Arc::new(watch::channel(false).0);
    // The floor seat publishes no share, and the one its subscriber receives (the local
    // chair's, as the program seat gets it) is not sent up.
    let no_screen = Arc::new(watch::channel(false).0);
    let ignored_screen = Arc::new(watch::channel(false).0);
    // The hand the local chair raises upstream: read by the program seat from the linked
    // meeting's room_state, raised by the relay seat (whose own room_state, and the floor
    // seat's, are not about it). Kept across reconnects, so a new relay seat raises it again.
    let hand_up = Arc::new(watch::channel(None).0);
    let no_hand = Arc::new(watch::channel(None).0);
    let ignored_hand = Arc::new(watch::channel(None).0);
    // What the relay seat's session reads of itself in the upstream's room_state, told to the
    // linked meeting by the program seat (kept across reconnects, like the hand).
    let upward = Arc::new(watch::channel(Upward::default()).0);
    let up_out = Out {
        media: up_media_tx,
        keys: up_keys_tx,
        screen_out: down_screen.clone(),
        screen_in: up_screen.subscribe(),
        hand_out: ignored_hand.clone(),
        hand_in: hand_up.subscribe(),
        upward_out: Some(upward.clone()),
        upward_in: None,
    };
    let program_out = Out {
        media: chair_media_tx,
        keys: keys0_tx,
        screen_out: up_screen.clone(),
        screen_in: down_screen.subscribe(),
        hand_out: hand_up.clone(),
        hand_in: no_hand.subscribe(),
        upward_out: None,
        upward_in: Some(Downward {
            view: upward.subscribe(),
            signaling: signaling.clone(),
        }),
    };
    // The floor seat's subscriber receives the local chair too (the routing gives every
    // upstream seat the chair): only the program seat's copy goes up.
    let (ignored_tx, _) = mpsc::channel::<Media>(1);
    let floor_out = Out {
        media: ignored_tx,
        keys: keys1_tx,
        screen_out: ignored_screen,
        screen_in: no_screen.subscribe(),
        hand_out: ignored_hand,
        hand_in: no_hand.subscribe(),
        upward_out: None,
        upward_in: None,
    };
    let seats = [
        Seat::new(Some(cfg.local_token.clone()), program_out),
        Seat::new(cfg.floor_token.clone(), floor_out),
    ];
    Wired {
        up_out,
        seats,
        down_screen,
        up_screen,
        upward,
        hand_up,
        inputs: Inputs {
            up_media,
            up_keys,
            chair_media,
            keys0,
            keys1,
        },
    }
}
