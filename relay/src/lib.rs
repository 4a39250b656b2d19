//! # hoinghi relay
//!
//! The downstream side of the cascade (issue 13): a client, run inside `hoinghi serve`, that
//! takes an upstream meeting's *relay seat* over the same `/ws` protocol and WebRTC as any
//! point, and makes what it receives (the upstream program: its chair's microphone, every
//! simulcast layer of its camera, and the share the upstream shows) the program of a local
//! *linked meeting*. It re-publishes the
//! program to this server as an in-process seat of role `upstream` with a simulcast publisher
//! over loopback, so the whole local publish path (allocator, layer switching, NACK, keyframe
//! requests) serves the communes unchanged; the other way, the local chair's camera,
//! microphone and share go up on the relay seat's publish connection, which the upstream forwards to its
//! meeting when it gives the province the floor (`docs/architecture.md`, "The cascade").
//!
//! # Layout
//! - this module: [`RelayConfig`] and [`Relay`], the supervising task: reconnects to the
//!   upstream with backoff, opens the local seat when program media arrives, leaves it when
//!   the upstream has been silent for [`RelayConfig::lost_after`] (the local chair is the
//!   program again), and passes media and keyframe requests between the two sessions.
//! - `session`: one session on one server (upstream: the relay seat; local: the `upstream`
//!   seat): join, publish what the other side receives, subscribe to this side's chair.
//! - `channel`: the `/ws` protocol over a WebSocket or an in-process connection; `tls`: the
//!   upstream's certificate checked (pinned by fingerprint, or the system's authorities).
//! - `subscriber`, `publisher`: the two peer connections of a session.
//! - `hand`: the hand the local chair raises upstream, from `room_state` to `raise_hand`.
//! - [`forward`]: each packet's stream and rewrite (pure).
//! - [`peer`]: peer connections, codecs, offer/answer helpers, simulcast ids.

pub mod forward;
pub mod peer;

mod channel;
mod hand;
mod publisher;
mod session;
mod subscriber;
mod tls;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rtc::rtp;
use signaling::Signaling;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use signaling::relay_link::{LinkError, RelayLink};

use channel::{LocalChannel, WsChannel};
use forward::Route;
use session::{Options, Wiring};
use subscriber::Relayed;

/// Connecting and joining may take this long before an attempt counts as failed.
const JOIN_WAIT: Duration = Duration::from_secs(10);
/// The upstream sends nothing (not even a ping; it pings every 20 s) for this long: it is gone.
const SILENCE: Duration = Duration::from_secs(45);
/// How long a session may take to leave when the relay lets go of it.
const STOP_WAIT: Duration = Duration::from_secs(3);
/// Camera layers the relay seat publishes upward (the local chair's, whatever it sends).
const UPWARD_LAYERS: u8 = 3;

/// One packet between the two sessions, with the stream it belongs to.
#[derive(Debug)]
pub struct Media {
    /// Whose: 0 the meeting's chair, 1 the other participant relayed (the upstream's floor
    /// holder).
    pub slot: u8,
    pub route: Route,
    /// How many camera layers the sender has.
    pub layers: u8,
    pub packet: rtp::Packet,
}

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub link: RelayLink,
    /// For an `https` link: the SHA-256 of the upstream's certificate, the only one trusted
    /// (`None`: the system's certificate authorities and the host name decide).
    pub tls_pin: Option<[u8; 32]>,
    /// The token the local authorizer grants as the linked meeting's `upstream` seat.
    pub local_token: String,
    /// The token of a second `upstream` seat, for the upstream's floor holder (`None`: it is not
    /// relayed).
    pub floor_token: Option<String>,
    /// Local address of the relay's UDP sockets (all four connections).
    pub bind_ip: IpAddr,
    /// No program media for this long: the local chair is the program again.
    pub lost_after: Duration,
    /// The longest wait between two tries to reach the upstream.
    pub max_backoff: Duration,
}

impl RelayConfig {
    pub fn new(link: RelayLink, local_token: String, bind_ip: IpAddr) -> Self {
        Self {
            link,
            tls_pin: None,
            local_token,
            floor_token: None,
            bind_ip,
            lost_after: Duration::from_secs(5),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Where the relay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayState {
    /// Reaching the upstream for the first time; no program yet.
    Connecting,
    /// The upstream program is the linked meeting's program.
    Relaying,
    /// The upstream was lost (or not reached within `lost_after` of the start): the local
    /// chair is the program; the relay keeps trying.
    Lost,
}

/// Seconds to wait before try `failures` (1, 2, 4 … up to `max`).
pub fn backoff(failures: u32, max: Duration) -> Duration {
    let secs = 1u64 << failures.saturating_sub(1).min(16);
    Duration::from_secs(secs).min(max)
}

/// A running relay; dropping it stops it (the seats are left).
pub struct Relay {
    state: watch::Receiver<RelayState>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Relay {
    pub fn spawn(cfg: RelayConfig, signaling: Signaling) -> Relay {
        let (state_tx, state) = watch::channel(RelayState::Connecting);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(supervise(cfg, signaling, state_tx, stop_rx));
        Relay {
            state,
            stop,
            task: Some(task),
        }
    }

    pub fn state(&self) -> RelayState {
        *self.state.borrow()
    }

    /// Changes of [`Relay::state`].
    pub fn watch(&self) -> watch::Receiver<RelayState> {
        self.state.clone()
    }

    /// Stops the relay and waits (at most 5 s) for both seats to be left.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A running session and the queues into it; dropping the queues makes it leave.
struct Running {
    task: JoinHandle<anyhow::Result<()>>,
    media: mpsc::Sender<Media>,
    keys: mpsc::Sender<(u8, Route)>,
    started: Instant,
}

/// What a session is wired to besides its input queues: where what its subscriber receives
/// goes, where its publisher's keyframe requests go, where it tells whether it receives a
/// share, and whether the other side has one to publish.
#[derive(Clone)]
struct Out {
    media: mpsc::Sender<Media>,
    keys: mpsc::Sender<Route>,
    screen_out: Arc<watch::Sender<bool>>,
    screen_in: watch::Receiver<bool>,
    hand_out: Arc<watch::Sender<Option<String>>>,
    hand_in: watch::Receiver<Option<String>>,
}

impl Running {
    /// Runs `session` with fresh input queues; its output goes to `out`.
    fn spawn<F, Fut>(out: Out, session: F) -> Running
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
        };
        Running {
            task: tokio::spawn(session(wiring)),
            media,
            keys,
            started: Instant::now(),
        }
    }

    /// Lets go of the session: it leaves (within [`STOP_WAIT`], or is cut).
    async fn stop(self) {
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

async fn session_end(s: &mut Option<Running>) -> anyhow::Result<()> {
    match s {
        Some(s) => (&mut s.task)
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the session stopped: {e}"))),
        None => std::future::pending().await,
    }
}

fn spawn_upstream(cfg: &RelayConfig, out: Out) -> Running {
    let (link, bind_ip, pin) = (cfg.link.clone(), cfg.bind_ip, cfg.tls_pin);
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
        };
        session::run(&mut chan, &token, &opts, wiring).await
    }))
}

/// One local seat: the chair's program (slot 0) or the upstream floor holder's (slot 1).
struct Seat {
    token: Option<String>,
    out: Out,
    running: Option<Running>,
    last_media: Option<Instant>,
    retry_at: Instant,
}

impl Seat {
    fn new(token: Option<String>, out: Out) -> Seat {
        Seat {
            token,
            out,
            running: None,
            last_media: None,
            retry_at: Instant::now(),
        }
    }

    /// A packet for this seat: it is opened for it if need be. Whether it was opened now.
    fn media(&mut self, cfg: &RelayConfig, signaling: &Signaling, m: Media) -> bool {
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
    async fn check(&mut self, lost_after: Duration) -> bool {
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

/// The relay's sessions and what passes between them.
struct Supervisor {
    cfg: RelayConfig,
    signaling: Signaling,
    state: watch::Sender<RelayState>,
    up: Option<Running>,
    up_out: Out,
    /// Slot 0 (the program: the upstream chair) and slot 1 (the upstream floor holder).
    seats: [Seat; 2],
    /// Whether the upstream program has a share (for the local program seat to publish), and
    /// whether the local chair has one (for the relay seat to send up).
    down_screen: Arc<watch::Sender<bool>>,
    up_screen: Arc<watch::Sender<bool>>,
    failures: u32,
    retry_at: Instant,
    started: Instant,
}

impl Supervisor {
    fn upstream_ended(&mut self, end: anyhow::Result<()>) {
        let lasted = self
            .up
            .take()
            .map(|s| s.started.elapsed())
            .unwrap_or_default();
        // A session that ran a while was a good one: start the backoff over.
        self.failures = if lasted > self.cfg.max_backoff {
            1
        } else {
            self.failures + 1
        };
        let wait = backoff(self.failures, self.cfg.max_backoff);
        match end {
            Ok(()) => tracing::info!(?wait, "relay: upstream session ended"),
            Err(e) => tracing::warn!(?wait, "relay: upstream lost: {e:#}"),
        }
        self.retry_at = Instant::now() + wait;
        // Its share stops with it (the next session says again whether there is one).
        self.down_screen.send_replace(false);
    }

    /// A packet of the upstream program, for the seat of its slot.
    fn program(&mut self, m: Media) {
        self.failures = 0;
        let slot = usize::from(m.slot.min(1));
        let layers = m.layers;
        if self.seats[slot].media(&self.cfg, &self.signaling, m) && slot == 0 {
            tracing::info!(
                layers,
                "relay: the upstream program is the linked meeting's program"
            );
            self.state.send_replace(RelayState::Relaying);
        }
    }

    /// Leaves the seats whose media stopped; a relay with no program is lost (also one that
    /// has had none for `lost_after` since it started).
    async fn check_seats(&mut self) {
        let lost_after = self.cfg.lost_after;
        if self.seats[0].check(lost_after).await {
            tracing::warn!(
                "relay: no upstream program for {lost_after:?}: the local chair is the program"
            );
            self.state.send_replace(RelayState::Lost);
            self.up_screen.send_replace(false);
        }
        self.seats[1].check(lost_after).await;
        if self.seats[0].running.is_none()
            && *self.state.borrow() == RelayState::Connecting
            && self.started.elapsed() >= lost_after
        {
            self.state.send_replace(RelayState::Lost);
        }
    }

    /// A keyframe request from a local seat for the upstream sender of its slot.
    fn local_keyframe(&self, slot: u8, route: Route) {
        if let Some(up) = &self.up {
            let _ = up.keys.try_send((slot, route));
        }
    }
}

async fn supervise(
    cfg: RelayConfig,
    signaling: Signaling,
    state: watch::Sender<RelayState>,
    mut stop: watch::Receiver<bool>,
) {
    let (up_media_tx, mut up_media) = mpsc::channel::<Media>(1_024);
    let (up_keys_tx, mut up_keys) = mpsc::channel::<Route>(16);
    let (chair_media_tx, mut chair_media) = mpsc::channel::<Media>(1_024);
    let (keys0_tx, mut keys0) = mpsc::channel::<Route>(16);
    let (keys1_tx, mut keys1) = mpsc::channel::<Route>(16);
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
    let up_out = Out {
        media: up_media_tx,
        keys: up_keys_tx,
        screen_out: down_screen.clone(),
        screen_in: up_screen.subscribe(),
        hand_out: ignored_hand.clone(),
        hand_in: hand_up.subscribe(),
    };
    let program_out = Out {
        media: chair_media_tx,
        keys: keys0_tx,
        screen_out: up_screen.clone(),
        screen_in: down_screen.subscribe(),
        hand_out: hand_up.clone(),
        hand_in: no_hand.subscribe(),
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
    };
    let seats = [
        Seat::new(Some(cfg.local_token.clone()), program_out),
        Seat::new(cfg.floor_token.clone(), floor_out),
    ];
    let mut s = Supervisor {
        cfg,
        signaling,
        state,
        up: None,
        up_out,
        seats,
        down_screen,
        up_screen,
        failures: 0,
        retry_at: Instant::now(),
        started: Instant::now(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            () = tokio::time::sleep_until(s.retry_at), if s.up.is_none() => {
                s.up = Some(spawn_upstream(&s.cfg, s.up_out.clone()));
            }
            end = session_end(&mut s.up) => s.upstream_ended(end),
            Some(m) = up_media.recv() => s.program(m),
            // The upstream asks for a keyframe of the province's camera: the local chair's.
            Some(route) = up_keys.recv() => {
                if let Some(seat) = &s.seats[0].running {
                    let _ = seat.keys.try_send((0, route));
                }
            }
            // The local chair's media goes up (forwarded there only while the province holds
            // the floor or is unmuted, and to the upstream chair's grid as a thumbnail).
            Some(m) = chair_media.recv() => {
                if let Some(up) = &s.up {
                    let _ = up.media.try_send(m);
                }
            }
            Some(route) = keys0.recv() => s.local_keyframe(0, route),
            Some(route) = keys1.recv() => s.local_keyframe(1, route),
            _ = tick.tick() => s.check_seats().await,
        }
    }
    for seat in &mut s.seats {
        if let Some(r) = seat.running.take() {
            r.stop().await;
        }
    }
    if let Some(up) = s.up.take() {
        up.stop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_the_cap() {
        let max = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=7).map(|n| backoff(n, max).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(1_000, max), max);
        assert_eq!(backoff(0, max).as_secs(), 1);
    }
}
