//! Who may open a WebSocket: global and per-address caps, an upgrade rate per address, and the
//! slots of sockets that have not joined yet.
//!
//! One address must never lock everyone out (a flood of raw upgrades once took all 4,096 slots
//! and real chairs got 503). So:
//! - each address (an IPv6 address counts by its /64, as one host usually owns a whole /64) may
//!   open [`AdmissionLimits::upgrades_per_sec`] sockets per second (token bucket, 429 beyond);
//! - each address may hold [`AdmissionLimits::per_address_open`] sockets, of which at most
//!   [`AdmissionLimits::per_address_unjoined`] have not joined; globally, unjoined sockets hold at
//!   most [`AdmissionLimits::max_unjoined`] of the [`AdmissionLimits::max_open`] slots;
//! - when an unjoined limit is reached, the **oldest unjoined socket gives its slot** to the new
//!   one (it had its chance). A flood of sockets that never join therefore only churns itself: a
//!   client with a valid link, which joins within a round trip, always gets in (from another
//!   address at once, from the flooding address after the rate limit's `Retry-After`). Only a
//!   server full of *joined* sessions answers 503.
//!
//! Per-address state lives in a map whose entries go when their address has no socket and a
//! full bucket; the map is also bounded in size. Loopback clients may be exempted (a reverse
//! proxy or a load test on the server itself shows every client as 127.0.0.1).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Limits on open WebSockets (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionLimits {
    /// Open sockets, joined or not.
    pub max_open: usize,
    /// Sockets that have not joined yet, over all addresses (at most `max_open`).
    pub max_unjoined: usize,
    /// Open sockets of one address.
    pub per_address_open: usize,
    /// Unjoined sockets of one address.
    pub per_address_unjoined: usize,
    /// Upgrades per second one address may make, sustained.
    pub upgrades_per_sec: f64,
    /// Upgrades one address may make in a burst.
    pub upgrade_burst: f64,
    /// Loopback clients are subject to the global limits only.
    pub exempt_loopback: bool,
}

/// Distinct addresses tracked at once; beyond, new addresses are refused until some go.
const MAX_ADDRESSES: usize = 65_536;

impl AdmissionLimits {
    /// The defaults for `max_open` sockets: a quarter of them for unjoined sockets, 8 unjoined
    /// per address, 5 upgrades per second per address in bursts of 20, loopback not exempt.
    pub fn with_max_open(max_open: usize) -> Self {
        let max_open = max_open.max(1);
        Self {
            max_open,
            max_unjoined: (max_open / 4).max(1),
            // Joined sessions are not capped per address: each holds a seat of a valid link, and
            // a province's halls may all reach the server through one NAT address.
            per_address_open: max_open,
            per_address_unjoined: 8,
            upgrades_per_sec: 5.0,
            upgrade_burst: 20.0,
            // Off unless the operator says the loopback clients are a proxy or a load test
            // (`--trust-loopback`): otherwise an attack from the host itself would bypass
            // every per-address limit.
            exempt_loopback: false,
        }
    }
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        Self::with_max_open(crate::DEFAULT_MAX_CONNECTIONS)
    }
}

/// Why an upgrade was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The address upgrades too fast: retry after this long (HTTP 429).
    Rate { retry_after: Duration },
    /// The address has its share of joined sessions open (HTTP 503).
    AddressFull,
    /// The server has its share of joined sessions open (HTTP 503).
    ServerFull,
    /// Too many distinct addresses are connected or throttled (HTTP 503).
    TooManyAddresses,
    /// The server is shutting down (HTTP 503).
    Stopping,
}

impl Refusal {
    /// The label of `hoinghi_ws_refused_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Rate { .. } => "rate",
            Self::AddressFull => "address_full",
            Self::ServerFull => "server_full",
            Self::TooManyAddresses => "too_many_addresses",
            Self::Stopping => "stopping",
        }
    }
}

/// What one address is counted under: itself (IPv4) or its /64 (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AddrKey {
    V4(u32),
    V6Prefix(u64),
}

impl AddrKey {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.into()),
                None => Self::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant, limits: &AdmissionLimits) {
        let add = now.saturating_duration_since(self.at).as_secs_f64() * limits.upgrades_per_sec;
        self.tokens = (self.tokens + add).min(limits.upgrade_burst);
        self.at = now;
    }

    fn is_full(&self, now: Instant, limits: &AdmissionLimits) -> bool {
        let add = now.saturating_duration_since(self.at).as_secs_f64() * limits.upgrades_per_sec;
        self.tokens + add >= limits.upgrade_burst
    }
}

struct AddrState {
    open: usize,
    /// This address's unjoined sockets, oldest first.
    unjoined: VecDeque<u64>,
    bucket: Bucket,
}

#[derive(Default)]
struct State {
    next_id: u64,
    open: usize,
    /// Every unjoined socket, oldest first (ids grow), with how to tell it to go.
    unjoined: BTreeMap<u64, (Option<AddrKey>, Arc<Notify>)>,
    addrs: HashMap<AddrKey, AddrState>,
    /// Map size that triggers the next sweep of idle addresses.
    sweep_at: usize,
    stopping: bool,
}

impl State {
    /// Takes socket `id` out of the unjoined sets and tells it to go (its slot is free now).
    fn evict(&mut self, id: u64) {
        if let Some((addr, notify)) = self.unjoined.remove(&id) {
            if let Some(a) = addr.and_then(|k| self.addrs.get_mut(&k)) {
                a.unjoined.retain(|&u| u != id);
                a.open = a.open.saturating_sub(1);
            }
            self.open = self.open.saturating_sub(1);
            notify.notify_one();
        }
    }

    fn sweep(&mut self, now: Instant, limits: &AdmissionLimits) {
        self.addrs
            .retain(|_, a| a.open > 0 || !a.bucket.is_full(now, limits));
        self.sweep_at = (self.addrs.len() * 2).max(1024);
    }
}

/// Counts open sockets and decides on new ones; shared by every upgrade.
pub(crate) struct Admission {
    limits: AdmissionLimits,
    state: Mutex<State>,
    /// Signalled whenever the last socket closes (for shutdown).
    idle: Notify,
}

/// What the decision says about a new socket.
pub(crate) struct Admitted {
    pub ticket: Ticket,
    /// Sockets that lost their slot to this one (counted for metrics).
    pub evicted: usize,
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(State::default()),
            idle: Notify::new(),
        }
    }

    pub fn limits(&self) -> &AdmissionLimits {
        &self.limits
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update is a few arithmetic steps; state after a panic is still consistent
        // enough to count with.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides on a new socket from `ip` (`None`: the address is unknown, global limits only).
    pub fn admit(self: &Arc<Self>, ip: Option<IpAddr>, now: Instant) -> Result<Admitted, Refusal> {
        let limits = &self.limits;
        let key = ip
            .filter(|ip| !(limits.exempt_loopback && ip.is_loopback()))
            .map(AddrKey::of);
        let mut st = self.state();
        if st.stopping {
            return Err(Refusal::Stopping);
        }
        let mut evicted = 0;
        if let Some(key) = key {
            if !st.addrs.contains_key(&key) {
                if st.addrs.len() >= st.sweep_at.max(1024) {
                    st.sweep(now, limits);
                }
                if st.addrs.len() >= MAX_ADDRESSES {
                    return Err(Refusal::TooManyAddresses);
                }
            }
            let a = st.addrs.entry(key).or_insert_with(|| AddrState {
                open: 0,
                unjoined: VecDeque::new(),
                bucket: Bucket {
                    tokens: limits.upgrade_burst,
                    at: now,
                },
            });
            a.bucket.refill(now, limits);
            if a.bucket.tokens < 1.0 {
                let wait = (1.0 - a.bucket.tokens) / limits.upgrades_per_sec;
                return Err(Refusal::Rate {
                    retry_after: Duration::from_secs_f64(wait.clamp(0.0, 3600.0)),
                });
            }
            a.bucket.tokens -= 1.0;
            // This address's own unjoined sockets make room first.
            let oldest = if a.unjoined.len() >= limits.per_address_unjoined
                || a.open >= limits.per_address_open
            {
                match a.unjoined.front() {
                    Some(&id) => Some(id),
                    None => return Err(Refusal::AddressFull),
                }
            } else {
                None
            };
            if let Some(id) = oldest {
                st.evict(id);
                evicted += 1;
            }
        }
        if st.unjoined.len() >= limits.max_unjoined || st.open >= limits.max_open {
            match st.unjoined.keys().next() {
                Some(&id) => {
                    st.evict(id);
                    evicted += 1;
                }
                None => return Err(Refusal::ServerFull),
            }
        }
        st.next_id += 1;
        let id = st.next_id;
        let notify = Arc::new(Notify::new());
        st.open += 1;
        st.unjoined.insert(id, (key, notify.clone()));
        if let Some(a) = key.and_then(|k| st.addrs.get_mut(&k)) {
            a.open += 1;
            a.unjoined.push_back(id);
        }
        Ok(Admitted {
            ticket: Ticket {
                admission: self.clone(),
                id,
                key,
                evict: notify,
                state: TicketState::Unjoined,
            },
            evicted,
        })
    }

    /// Open sockets and those not joined yet.
    pub fn counts(&self) -> (usize, usize) {
        let st = self.state();
        (st.open, st.unjoined.len())
    }

    /// Refuses every new socket from now on.
    pub fn stop(&self) {
        self.state().stopping = true;
    }

    /// Resolves once no socket is open.
    pub async fn until_idle(&self) {
        loop {
            // Created before the check: a wake-up between the check and the wait is kept.
            let idle = self.idle.notified();
            if self.state().open == 0 {
                return;
            }
            idle.await;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TicketState {
    Unjoined,
    Joined,
}

/// One admitted socket's slot, given back on drop.
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    key: Option<AddrKey>,
    evict: Arc<Notify>,
    state: TicketState,
}

impl Ticket {
    /// The socket joined: it keeps its slot and no longer counts as unjoined. A socket evicted
    /// while its join was being checked takes a slot back (one at most per socket): its client
    /// did nothing wrong.
    pub fn joined(&mut self) {
        if self.state == TicketState::Joined {
            return;
        }
        let mut st = self.admission.state();
        let was_unjoined = st.unjoined.remove(&self.id).is_some();
        if !was_unjoined {
            st.open += 1;
        }
        if let Some(a) = self.key.and_then(|k| st.addrs.get_mut(&k)) {
            a.unjoined.retain(|&u| u != self.id);
            if !was_unjoined {
                a.open += 1;
            }
        }
        self.state = TicketState::Joined;
    }

    /// Resolves when a newer socket took this unjoined socket's slot.
    pub async fn evicted(&self) {
        self.evict.notified().await
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut st = self.admission.state();
        let counted = match self.state {
            TicketState::Joined => true,
            // Not in the unjoined set any more: evicted, and already uncounted.
            TicketState::Unjoined => st.unjoined.remove(&self.id).is_some(),
        };
        if !counted {
            return;
        }
        st.open = st.open.saturating_sub(1);
        if let Some(key) = self.key
            && let Some(a) = st.addrs.get_mut(&key)
        {
            a.unjoined.retain(|&u| u != self.id);
            a.open = a.open.saturating_sub(1);
            let now = Instant::now();
            if a.open == 0 && a.bucket.is_full(now, &self.admission.limits) {
                st.addrs.remove(&key);
            }
        }
        if st.open == 0 {
            self.admission.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests;
