//! The relay clients of linked meetings (the cascade, issue 13, downstream side): a task that,
//! every [`CHECK`] and whenever the panel changes a link, runs one `relay::Relay` per meeting
//! that has an upstream link and is open or live, and stops the others.
//!
//! Each relay takes its meeting's `upstream` seat with a token made here, never written or sent
//! anywhere: [`UpstreamSeats`] holds the tokens of the running relays, and
//! [`WithUpstreamSeats`] (the join authorizer in front of the control plane's) grants them.
//! A token is withdrawn before its relay stops, and when the chair ends the meeting, so a
//! relay cannot bring a closed meeting's room back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use relay::{Relay, RelayConfig, RelayState};
use room_admin::meetings::Meeting;
use room_admin::upstream::{self, RelayStatus, UpstreamLink};
use room_admin::{Db, Directory};
use signaling::Signaling;
use signaling::auth::{AuthError, Authorizer, Grant, InvitedPoint};
use signaling::protocol::{Role, UpstreamState};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often the linked meetings are checked (a meeting opening or ending starts or stops its
/// relay at most this late).
pub const CHECK: Duration = Duration::from_secs(5);
/// The `point` of the upstream seat that carries the upstream chair (the program).
pub const UPSTREAM_POINT: &str = "upstream";
/// The `point` of the upstream seat that carries the upstream floor holder.
pub const UPSTREAM_FLOOR_POINT: &str = "upstream-floor";
/// Appended to the link's name for the floor seat ("speaking").
const FLOOR_SUFFIX: &str = "phát biểu";

/// A seat token: 256 random bits in hex, made here and never written anywhere.
fn new_token() -> String {
    room_admin::db::random_hex16() + &room_admin::db::random_hex16()
}

/// Tokens of the running relays' upstream seats.
#[derive(Default)]
pub struct UpstreamSeats(Mutex<HashMap<String, Grant>>);

impl UpstreamSeats {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Grant>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn grant(&self, token: &str) -> Option<Grant> {
        self.lock().get(token).cloned()
    }

    fn withdraw(&self, tokens: &[String]) {
        let mut seats = self.lock();
        for t in tokens {
            seats.remove(t);
        }
    }

    fn withdraw_meeting(&self, meeting: &str) {
        self.lock().retain(|_, g| g.meeting_id != meeting);
    }
}

/// The join authorizer: upstream seats first, then the control plane's.
pub struct WithUpstreamSeats {
    pub seats: Arc<UpstreamSeats>,
    pub inner: Arc<dyn Authorizer>,
    /// The control plane's copy of the meetings: an upstream seat is granted only while its
    /// meeting is open or live there (a meeting ended from the panel or by the clock is closed
    /// before its relay's next check stops the relay).
    pub directory: Option<Arc<Directory>>,
}

impl Authorizer for WithUpstreamSeats {
    fn authorize(&self, token: &str) -> Result<Grant, AuthError> {
        let Some(g) = self.seats.grant(token) else {
            return self.inner.authorize(token);
        };
        let now = room_admin::db::unix_now();
        let open = self.directory.as_ref().is_none_or(|d| {
            d.get(&g.meeting_id)
                .is_some_and(|e| e.meeting.state(now).joinable())
        });
        if open {
            Ok(g)
        } else {
            Err(AuthError::Invalid(
                "the linked meeting is not open or live".into(),
            ))
        }
    }

    fn invited(&self, meeting: &str) -> Vec<InvitedPoint> {
        self.inner.invited(meeting)
    }

    fn end_meeting(&self, meeting: &str) {
        self.seats.withdraw_meeting(meeting);
        self.inner.end_meeting(meeting);
    }

    fn extend_meeting(&self, meeting: &str, minutes: u32) -> Result<u64, String> {
        self.inner.extend_meeting(meeting, minutes)
    }
}

/// One running relay and what it was started with.
struct Running {
    /// The stored link, name and fingerprint: a change restarts the relay.
    link: String,
    name: String,
    fingerprint: Option<String>,
    /// The program seat's and the floor seat's.
    tokens: [String; 2],
    relay: Relay,
}

/// The running relays, by meeting.
pub struct Relays {
    db: Db,
    signaling: Signaling,
    seats: Arc<UpstreamSeats>,
    bind_ip: IpAddr,
    running: Mutex<HashMap<String, Running>>,
    wake: Notify,
}

impl Relays {
    /// `bind_ip`: where the relays' UDP sockets bind (an address of this machine that reaches
    /// both the upstream and this server's media port).
    pub fn new(db: Db, signaling: Signaling, seats: Arc<UpstreamSeats>, bind_ip: IpAddr) -> Self {
        Relays {
            db,
            signaling,
            seats,
            bind_ip,
            running: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        }
    }

    fn running(&self) -> MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the check every [`CHECK`] and on each change until `shutdown`, then stops every relay.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.sync(room_admin::db::unix_now()).await {
                tracing::warn!("relays: the linked meetings could not be read: {e}");
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(CHECK) => {}
            }
        }
        // Every relay leaves its seats at once, not one after another.
        let all: Vec<(String, Running)> = self.running().drain().collect();
        let mut stopping = tokio::task::JoinSet::new();
        for (meeting, r) in all {
            self.seats.withdraw(&r.tokens);
            let signaling = self.signaling.clone();
            stopping.spawn(async move {
                r.relay.stop().await;
                signaling.set_upstream(&meeting, None);
            });
        }
        while stopping.join_next().await.is_some() {}
    }

    /// Starts the relays that should run at `now` and stops the others.
    pub async fn sync(&self, now: i64) -> Result<(), room_admin::error::StoreError> {
        let wanted: HashMap<String, (Meeting, UpstreamLink)> = upstream::running(&self.db, now)
            .await?
            .into_iter()
            .map(|(m, l)| (m.id.clone(), (m, l)))
            .collect();
        let stale: Vec<String> = self
            .running()
            .iter()
            .filter(|(id, r)| {
                wanted.get(*id).is_none_or(|(_, l)| {
                    l.link != r.link || l.name != r.name || l.fingerprint != r.fingerprint
                })
            })
            .map(|(id, _)| id.clone())
            .collect();
        for meeting in stale {
            self.stop(&meeting).await;
        }
        for (id, (m, l)) in wanted {
            if !self.running().contains_key(&id) {
                self.start(&m, &l);
            }
        }
        Ok(())
    }

    fn start(&self, m: &Meeting, l: &UpstreamLink) {
        let Some(link) = l.relay_link() else {
            tracing::warn!(meeting = %m.id, "relays: the stored upstream link is not valid");
            return;
        };
        let grant = |point: &str, name: String| Grant {
            meeting_id: m.id.clone(),
            meeting_title: m.title.clone(),
            point: point.to_owned(),
            name,
            role: Role::Upstream,
            capacity: usize::try_from(m.capacity).unwrap_or(0),
        };
        let token = new_token();
        let floor_token = new_token();
        {
            let mut seats = self.seats.lock();
            seats.insert(token.clone(), grant(UPSTREAM_POINT, l.name.clone()));
            let floor_name = format!("{} ({FLOOR_SUFFIX})", l.name);
            seats.insert(floor_token.clone(), grant(UPSTREAM_FLOOR_POINT, floor_name));
        }
        // The link's host only: the token is a secret.
        tracing::info!(meeting = %m.id, upstream = ?link, "relays: starting the relay");
        let config = RelayConfig {
            tls_pin: l.tls_pin(),
            floor_token: Some(floor_token.clone()),
            ..RelayConfig::new(link, m.id.clone(), token.clone(), self.bind_ip)
        };
        let relay = Relay::spawn(config, self.signaling.clone());
        spawn_program_notices(self.signaling.clone(), m.id.clone(), relay.watch());
        self.running().insert(
            m.id.clone(),
            Running {
                link: l.link.clone(),
                name: l.name.clone(),
                fingerprint: l.fingerprint.clone(),
                tokens: [token, floor_token],
                relay,
            },
        );
    }

    async fn stop(&self, meeting: &str) {
        let Some(r) = self.running().remove(meeting) else {
            return;
        };
        self.seats.withdraw(&r.tokens);
        tracing::info!(%meeting, "relays: stopping the relay");
        r.relay.stop().await;
        self.signaling.set_upstream(meeting, None);
    }
}

/// Tells the linked meeting's pages where its program comes from (`room_state.upstream`) as
/// the relay's state changes, until the relay stops.
fn spawn_program_notices(
    signaling: Signaling,
    meeting: String,
    mut state: tokio::sync::watch::Receiver<RelayState>,
) {
    tokio::spawn(async move {
        loop {
            let program = match *state.borrow_and_update() {
                RelayState::Connecting => None,
                RelayState::Relaying => Some(UpstreamState::Live),
                // Refused as a loop: the local chair is the program, as when lost.
                RelayState::Lost | RelayState::Loop => Some(UpstreamState::Lost),
            };
            signaling.set_upstream(&meeting, program);
            if state.changed().await.is_err() {
                break;
            }
        }
    });
}

impl RelayStatus for Relays {
    fn relay_state(&self, meeting: &str) -> Option<&'static str> {
        self.running().get(meeting).map(|r| match r.relay.state() {
            RelayState::Connecting => "connecting",
            RelayState::Relaying => "relaying",
            RelayState::Lost => "lost",
            RelayState::Loop => "loop",
        })
    }

    fn changed(&self, _meeting: &str) {
        self.wake.notify_one();
    }
}

/// The address the relays bind: the media plane's own, or the announced one when the media
/// plane listens on every address.
pub fn bind_ip(media_bind: IpAddr, public_ip: IpAddr) -> IpAddr {
    if media_bind.is_unspecified() {
        public_ip
    } else {
        media_bind
    }
}

#[cfg(test)]
#[path = "relays_tests.rs"]
mod tests;
