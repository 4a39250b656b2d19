//! # hoinghi relay
//!
//! The downstream side of the cascade (issue 13): a client, run inside `hoinghi serve`, that
//! takes an upstream meeting's *relay seat* over the same `/ws` protocol and WebRTC as any
//! point, and makes what it receives (the upstream program: its chair's microphone and every
//! simulcast layer of its camera) the program of a local *linked meeting*. It re-publishes the
//! program to this server as an in-process seat of role `upstream` with a simulcast publisher
//! over loopback, so the whole local publish path (allocator, layer switching, NACK, keyframe
//! requests) serves the communes unchanged; the other way, the local chair's camera and
//! microphone go up on the relay seat's publish connection, which the upstream forwards to its
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
//! - [`forward`]: each packet's stream and rewrite (pure).
//! - [`peer`]: peer connections, codecs, offer/answer helpers, simulcast ids.

pub mod forward;
pub mod peer;

mod channel;
mod publisher;
mod session;
mod subscriber;
mod tls;

use std::net::IpAddr;
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
    keys: mpsc::Sender<u8>,
    started: Instant,
}

impl Running {
    /// Runs `session` with fresh input queues; its output goes to `out`.
    fn spawn<F, Fut>(out: (mpsc::Sender<Media>, mpsc::Sender<u8>), session: F) -> Running
    where
        F: FnOnce(Wiring) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (media, media_in) = mpsc::channel(1_024);
        let (keys, keys_in) = mpsc::channel(16);
        let wiring = Wiring {
            media_out: out.0,
            keys_out: out.1,
            media_in,
            keys_in,
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

fn spawn_upstream(cfg: &RelayConfig, out: (mpsc::Sender<Media>, mpsc::Sender<u8>)) -> Running {
    let (link, bind_ip, pin) = (cfg.link.clone(), cfg.bind_ip, cfg.tls_pin);
    Running::spawn(out, move |wiring| async move {
        let mut chan = WsChannel::connect(&link, pin, JOIN_WAIT).await?;
        let opts = Options {
            bind_ip,
            layers: UPWARD_LAYERS,
            join_wait: JOIN_WAIT,
            silence: Some(SILENCE),
        };
        session::run(&mut chan, link.token(), &opts, wiring).await
    })
}

fn spawn_seat(
    cfg: &RelayConfig,
    signaling: &Signaling,
    layers: u8,
    out: (mpsc::Sender<Media>, mpsc::Sender<u8>),
) -> anyhow::Result<Running> {
    let conn = signaling
        .connect_local()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (token, bind_ip) = (cfg.local_token.clone(), cfg.bind_ip);
    Ok(Running::spawn(out, move |wiring| async move {
        let mut chan = LocalChannel(conn);
        let opts = Options {
            bind_ip,
            layers,
            join_wait: JOIN_WAIT,
            silence: None,
        };
        session::run(&mut chan, &token, &opts, wiring).await
    }))
}

/// The relay's two sessions and what passes between them.
struct Supervisor {
    cfg: RelayConfig,
    signaling: Signaling,
    state: watch::Sender<RelayState>,
    up: Option<Running>,
    seat: Option<Running>,
    /// Where the upstream session's output goes (and the seat's).
    up_out: (mpsc::Sender<Media>, mpsc::Sender<u8>),
    seat_out: (mpsc::Sender<Media>, mpsc::Sender<u8>),
    failures: u32,
    retry_at: Instant,
    seat_retry_at: Instant,
    last_media: Option<Instant>,
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
    }

    /// A packet of the upstream program: the local seat is opened for it if need be.
    fn program(&mut self, m: Media) {
        self.last_media = Some(Instant::now());
        self.failures = 0;
        if self.seat.is_none() && Instant::now() >= self.seat_retry_at {
            match spawn_seat(&self.cfg, &self.signaling, m.layers, self.seat_out.clone()) {
                Ok(s) => {
                    tracing::info!(
                        layers = m.layers,
                        "relay: the upstream program is the linked meeting's program"
                    );
                    self.seat = Some(s);
                    self.state.send_replace(RelayState::Relaying);
                }
                Err(e) => {
                    tracing::warn!("relay: the local seat could not be opened: {e:#}");
                    self.seat_retry_at = Instant::now() + self.cfg.lost_after;
                }
            }
        }
        if let Some(s) = &self.seat {
            let _ = s.media.try_send(m);
        }
    }

    /// Leaves the local seat when the program has been silent for `lost_after`, or when its
    /// session ended by itself (then it is not reopened before `lost_after`). A relay that has
    /// had no program for `lost_after` since it started is lost too.
    async fn check_seat(&mut self) {
        if self.seat.is_none()
            && *self.state.borrow() == RelayState::Connecting
            && self.started.elapsed() >= self.cfg.lost_after
        {
            self.state.send_replace(RelayState::Lost);
        }
        let silent = self
            .last_media
            .is_none_or(|t| t.elapsed() >= self.cfg.lost_after);
        let ended = self.seat.as_ref().is_some_and(|s| s.task.is_finished());
        if !(silent || ended) {
            return;
        }
        let Some(s) = self.seat.take() else { return };
        if ended {
            tracing::warn!("relay: the local seat's session ended");
            self.seat_retry_at = Instant::now() + self.cfg.lost_after;
        } else {
            tracing::warn!(
                "relay: no upstream program for {:?}: the local chair is the program",
                self.cfg.lost_after
            );
        }
        s.stop().await;
        self.state.send_replace(RelayState::Lost);
    }
}

async fn supervise(
    cfg: RelayConfig,
    signaling: Signaling,
    state: watch::Sender<RelayState>,
    mut stop: watch::Receiver<bool>,
) {
    let (up_media_tx, mut up_media) = mpsc::channel::<Media>(1_024);
    let (up_keys_tx, mut up_keys) = mpsc::channel::<u8>(16);
    let (seat_media_tx, mut seat_media) = mpsc::channel::<Media>(1_024);
    let (seat_keys_tx, mut seat_keys) = mpsc::channel::<u8>(16);
    let mut s = Supervisor {
        cfg,
        signaling,
        state,
        up: None,
        seat: None,
        up_out: (up_media_tx, up_keys_tx),
        seat_out: (seat_media_tx, seat_keys_tx),
        failures: 0,
        retry_at: Instant::now(),
        seat_retry_at: Instant::now(),
        last_media: None,
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
            Some(layer) = up_keys.recv() => {
                if let Some(seat) = &s.seat {
                    let _ = seat.keys.try_send(layer);
                }
            }
            // The local chair's media goes up (forwarded there only while the province holds
            // the floor or is unmuted, and to the upstream chair's grid as a thumbnail).
            Some(m) = seat_media.recv() => {
                if let Some(up) = &s.up {
                    let _ = up.media.try_send(m);
                }
            }
            Some(layer) = seat_keys.recv() => {
                if let Some(up) = &s.up {
                    let _ = up.keys.try_send(layer);
                }
            }
            _ = tick.tick() => s.check_seat().await,
        }
    }
    if let Some(seat) = s.seat.take() {
        seat.stop().await;
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
