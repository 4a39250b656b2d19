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
//! - `running`: a running session and the queues it is wired to; a local seat, opened and
//!   left with its media; how the supervisor's sessions are wired together.
//! - `session`: one session on one server (upstream: the relay seat; local: the `upstream`
//!   seat): join, publish what the other side receives, subscribe to this side's chair.
//! - `resume`: the relay seat taken back on a new WebSocket after the old one was lost (same
//!   participant, same peer connections), or given up.
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
mod resume;
mod running;
mod session;
mod subscriber;
mod tls;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rtc::rtp;
use signaling::Signaling;
use signaling::protocol::ErrorCode;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use signaling::relay_link::{LinkError, RelayLink};

use forward::Route;
use running::{Inputs, Out, Running, Seat, Wired, session_end, spawn_upstream, wire};

/// Connecting and joining may take this long before an attempt counts as failed.
pub(crate) const JOIN_WAIT: Duration = Duration::from_secs(10);
/// The upstream sends nothing (not even a ping; it pings every 20 s) for this long: it is gone.
pub(crate) const SILENCE: Duration = Duration::from_secs(45);
/// How long a session may take to leave when the relay lets go of it.
pub(crate) const STOP_WAIT: Duration = Duration::from_secs(3);
/// Camera layers the relay seat publishes upward (the local chair's, whatever it sends).
pub(crate) const UPWARD_LAYERS: u8 = 3;

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
    /// The linked meeting's id on this server (whose relay seats' chains go up with the
    /// relay seat's `join`, so that the upstream can refuse a loop).
    pub meeting: String,
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
    pub fn new(link: RelayLink, meeting: String, local_token: String, bind_ip: IpAddr) -> Self {
        Self {
            link,
            meeting,
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
    /// The upstream refused the relay seat as a loop (`relay_loop`: its meeting already takes
    /// its program through this server): the local chair is the program; the relay tries
    /// again with its backoff, in case a link on the loop is removed.
    Loop,
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
    /// What the upstream says of the relay seat, for the linked meeting.
    upward: Arc<watch::Sender<hand::Upward>>,
    upward_rx: watch::Receiver<hand::Upward>,
    /// The hands gone upstream the linked meeting was told of, and the hand it wants raised
    /// upstream.
    gone: hand::GoneTold,
    hand_up: Arc<watch::Sender<Option<String>>>,
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
            Err(e) if session::refused_as(&e, ErrorCode::RelayLoop) => {
                tracing::error!(
                    ?wait,
                    "relay: the upstream refused the seat as a loop: {e:#}"
                );
                self.state.send_replace(RelayState::Loop);
            }
            Err(e) => tracing::warn!(?wait, "relay: upstream lost: {e:#}"),
        }
        self.retry_at = Instant::now() + wait;
        // Its share stops with it (the next session says again whether there is one).
        self.down_screen.send_replace(false);
        // And so does its floor (a new relay seat has none; its hand is raised again).
        self.upward
            .send_if_modified(|u| std::mem::take(&mut u.floor));
    }

    /// What the upstream says of the relay seat changed: a hand gone there (granted or lowered
    /// by the upstream chair) is lowered in the linked meeting here, whether or not the
    /// program seat is in it (the upstream program may be lost while the relay seat is still
    /// in the upstream meeting), and is no longer wanted up, so a later session of the relay
    /// seat does not raise it again.
    fn upward_changed(&mut self) {
        let now = *self.upward_rx.borrow_and_update();
        if !self.gone.lower(&now) {
            return;
        }
        self.hand_up.send_replace(None);
        self.signaling.lower_hand_up(&self.cfg.meeting);
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
    let Wired {
        up_out,
        seats,
        down_screen,
        up_screen,
        upward,
        hand_up,
        inputs,
    } = wire(&cfg, &signaling);
    let Inputs {
        mut up_media,
        mut up_keys,
        mut chair_media,
        mut keys0,
        mut keys1,
    } = inputs;
    let mut s = Supervisor {
        cfg,
        signaling,
        state,
        up: None,
        up_out,
        seats,
        down_screen,
        up_screen,
        upward_rx: upward.subscribe(),
        upward,
        gone: hand::GoneTold::default(),
        hand_up,
        failures: 0,
        retry_at: Instant::now(),
        started: Instant::now(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            () = tokio::time::sleep_until(s.retry_at), if s.up.is_none() => {
                s.up = Some(spawn_upstream(&s.cfg, &s.signaling, s.up_out.clone()));
            }
            end = session_end(&mut s.up) => s.upstream_ended(end),
            Ok(()) = s.upward_rx.changed() => s.upward_changed(),
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
