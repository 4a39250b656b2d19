//! # hoinghi relay
//!
//! The downstream side of the cascade (issue 13): a client, run inside `hoinghi serve`, that
//! takes an upstream meeting's *relay seat* over the same `/ws` protocol and WebRTC as any
//! point, and makes what it receives (the upstream program: its chair's microphone and every
//! simulcast layer of its camera) the program of a local *linked meeting*. It re-publishes the
//! program to this server as an in-process seat of role `upstream` with a simulcast publisher
//! over loopback, so the whole local publish path (allocator, layer switching, NACK, keyframe
//! requests) serves the communes unchanged (`docs/architecture.md`, "The cascade").
//!
//! # Layout
//! - this module: [`RelayLink`], [`RelayConfig`], and [`Relay`], the supervising task:
//!   reconnects with backoff, opens the local seat when program media arrives, leaves it when
//!   the upstream has been silent for [`RelayConfig::lost_after`] (the local chair is the
//!   program again).
//! - `upstream`: one session with the upstream server as its relay seat.
//! - `seat`: the upstream seat in the local meeting and its publish connection.
//! - [`forward`]: each packet's local stream and rewrite (pure).
//! - [`peer`]: peer connections, codecs, offer/answer helpers, simulcast ids.

pub mod forward;
pub mod peer;
mod seat;
mod upstream;

use std::net::IpAddr;
use std::time::Duration;

use signaling::Signaling;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use signaling::relay_link::{LinkError, RelayLink};

use seat::Seat;
use upstream::UpEvent;

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub link: RelayLink,
    /// The token the local authorizer grants as the linked meeting's `upstream` seat.
    pub local_token: String,
    /// Local address of the relay's UDP sockets (both connections).
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
    /// Reaching the upstream (or waiting to try again); no program yet.
    Connecting,
    /// The upstream program is the linked meeting's program.
    Relaying,
    /// The upstream was lost: the local chair is the program; the relay keeps trying.
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

/// The upstream session being run, with the queue of keyframe requests it sends up.
struct Session {
    task: JoinHandle<anyhow::Result<()>>,
    keyframes: mpsc::Sender<u8>,
    started: Instant,
}

async fn session_end(s: &mut Option<Session>) -> anyhow::Result<()> {
    match s {
        Some(s) => (&mut s.task)
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the upstream session stopped: {e}"))),
        None => std::future::pending().await,
    }
}

async fn supervise(
    cfg: RelayConfig,
    signaling: Signaling,
    state: watch::Sender<RelayState>,
    mut stop: watch::Receiver<bool>,
) {
    let (events_tx, mut events) = mpsc::channel::<UpEvent>(1_024);
    let (local_keys_tx, mut local_keys) = mpsc::channel::<u8>(16);
    let mut session: Option<Session> = None;
    let mut seat: Option<Seat> = None;
    let mut failures = 0u32;
    let mut retry_at = Instant::now();
    let mut seat_retry_at = Instant::now();
    let mut last_media: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            () = tokio::time::sleep_until(retry_at), if session.is_none() => {
                let (keyframes, up_keys) = mpsc::channel(16);
                let (link, bind_ip, events) = (cfg.link.clone(), cfg.bind_ip, events_tx.clone());
                let task = tokio::spawn(async move {
                    upstream::run(&link, bind_ip, events, up_keys).await
                });
                session = Some(Session { task, keyframes, started: Instant::now() });
            }
            end = session_end(&mut session) => {
                let lasted = session.take().map(|s| s.started.elapsed()).unwrap_or_default();
                // A session that ran a while was a good one: start the backoff over.
                failures = if lasted > cfg.max_backoff { 1 } else { failures + 1 };
                let wait = backoff(failures, cfg.max_backoff);
                match end {
                    Ok(()) => tracing::info!(?wait, "relay: upstream session ended"),
                    Err(e) => tracing::warn!(?wait, "relay: upstream lost: {e:#}"),
                }
                retry_at = Instant::now() + wait;
            }
            Some(UpEvent::Media { route, layers, packet }) = events.recv() => {
                last_media = Some(Instant::now());
                failures = 0;
                if seat.is_none() && Instant::now() >= seat_retry_at {
                    match Seat::open(&signaling, &cfg.local_token, layers, cfg.bind_ip, local_keys_tx.clone()).await {
                        Ok(s) => {
                            tracing::info!(layers, "relay: the upstream program is the linked meeting's program");
                            seat = Some(s);
                            state.send_replace(RelayState::Relaying);
                        }
                        Err(e) => {
                            tracing::warn!("relay: the upstream seat could not join the local meeting: {e:#}");
                            seat_retry_at = Instant::now() + cfg.lost_after;
                        }
                    }
                }
                if let Some(s) = &mut seat {
                    s.forward(route, packet).await;
                }
            }
            Some(layer) = local_keys.recv() => {
                if let Some(s) = &session {
                    let _ = s.keyframes.try_send(layer);
                }
            }
            _ = tick.tick() => {
                let silent = last_media.is_none_or(|t| t.elapsed() >= cfg.lost_after);
                let closed = seat.as_ref().is_some_and(|s| !s.is_open());
                if (silent || closed) && let Some(s) = seat.take() {
                    tracing::warn!("relay: no upstream program for {:?}: the local chair is the program", cfg.lost_after);
                    s.close().await;
                    state.send_replace(RelayState::Lost);
                }
            }
        }
    }
    if let Some(s) = seat.take() {
        s.close().await;
    }
    if let Some(s) = session.take() {
        drop(s.keyframes);
        let mut task = s.task;
        if tokio::time::timeout(Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
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
