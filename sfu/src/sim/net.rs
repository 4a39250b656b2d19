//! A virtual network: datagrams between fake addresses, each through a [`Link`] model.
//!
//! A link is one direction of an access line, in the order a datagram meets it: random loss
//! (seeded, so a run repeats exactly), a drop-tail FIFO at a bottleneck of some bit rate (like
//! `tc ... pfifo limit 20`), then a one-way propagation delay. Since the FIFO serves packets in
//! order and a link's rate schedule is known in advance, a packet's departure time is computed
//! when it enters the queue: the network is a heap of datagrams keyed by arrival time, and
//! [`Net::next_delivery`] is exact (no internal events the driver must visit).
//!
//! A datagram from A to B takes the link configured for the pair (A, B), else B's downlink,
//! else A's uplink, else an ideal path (no loss, no delay, unlimited).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How much the bottleneck queue holds (packets waiting or in service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueLimit {
    Packets(usize),
    Bytes(usize),
    /// A packet that would wait longer than this for the bottleneck is dropped (the load
    /// generator's lines and most router buffers are sized in time).
    Time(Duration),
    Unbounded,
}

/// One direction of a line.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Bottleneck rate in bit/s; `None`: unlimited (no queue ever builds).
    pub rate_bps: Option<u64>,
    pub queue: QueueLimit,
    /// One-way propagation delay, added after the bottleneck.
    pub delay: Duration,
    /// Independent random loss probability, 0..=1, drawn before the queue.
    pub loss: f64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            rate_bps: None,
            queue: QueueLimit::Packets(20),
            delay: Duration::ZERO,
            loss: 0.0,
        }
    }
}

/// What a link did, since the network was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub sent: u64,
    pub dropped_queue: u64,
    pub dropped_loss: u64,
    /// Datagrams accepted by the queue (delivered or still in flight).
    pub accepted: u64,
    pub bytes_accepted: u64,
    pub delivered: u64,
    pub bytes_delivered: u64,
}

/// Which datagrams a link carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKey {
    Pair { from: SocketAddr, to: SocketAddr },
    To(SocketAddr),
    From(SocketAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(usize);

struct Link {
    config: LinkConfig,
    /// (from, rate): the rate in force from that instant on, in time order.
    schedule: Vec<(Instant, Option<u64>)>,
    /// Departure times and sizes of packets still in the queue (waiting or in service).
    backlog: VecDeque<(Instant, usize)>,
    backlog_bytes: usize,
    /// When the bottleneck finishes sending the last accepted packet.
    busy_until: Option<Instant>,
    /// Each link draws from its own generator: traffic on one link never shifts another's
    /// losses, so adding a flow to a scenario leaves the others' fates unchanged.
    rng: StdRng,
    stats: LinkStats,
}

impl Link {
    fn rate_at(&self, at: Instant) -> Option<u64> {
        self.schedule
            .iter()
            .rev()
            .find(|(from, _)| *from <= at)
            .map_or(self.config.rate_bps, |(_, rate)| *rate)
    }

    /// Accepts a packet entering at `now`, or says why not; `Ok` is the departure time.
    fn enqueue(&mut self, now: Instant, size: usize) -> Result<Instant, DropCause> {
        self.stats.sent += 1;
        if self.config.loss > 0.0 && self.rng.random_bool(self.config.loss.min(1.0)) {
            self.stats.dropped_loss += 1;
            return Err(DropCause::Loss);
        }
        while let Some(&(departs, bytes)) = self.backlog.front() {
            if departs > now {
                break;
            }
            self.backlog.pop_front();
            self.backlog_bytes -= bytes;
        }
        let start = self.busy_until.map_or(now, |b| b.max(now));
        let full = match self.config.queue {
            QueueLimit::Packets(n) => self.backlog.len() >= n,
            QueueLimit::Bytes(n) => self.backlog_bytes + size > n,
            QueueLimit::Time(d) => start.saturating_duration_since(now) > d,
            QueueLimit::Unbounded => false,
        };
        let Some(rate) = self.rate_at(start) else {
            return Ok(self.accept(now, now, size));
        };
        if full {
            self.stats.dropped_queue += 1;
            return Err(DropCause::Queue);
        }
        // A rate change while a packet is in service applies from the next packet on.
        let service = Duration::from_nanos((size as u64 * 8 * 1_000_000_000) / rate.max(1));
        Ok(self.accept(now, start + service, size))
    }

    fn accept(&mut self, now: Instant, departs: Instant, size: usize) -> Instant {
        if departs > now {
            self.backlog.push_back((departs, size));
            self.backlog_bytes += size;
        }
        self.busy_until = Some(departs);
        self.stats.accepted += 1;
        self.stats.bytes_accepted += size as u64;
        departs
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DropCause {
    Loss,
    Queue,
}

/// A datagram on its way: ordered by arrival, then by send order (ties stay FIFO).
struct InFlight {
    arrives: Instant,
    order: u64,
    link: Option<LinkId>,
    from: SocketAddr,
    to: SocketAddr,
    bytes: BytesMut,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.arrives, self.order) == (other.arrives, other.order)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.arrives, self.order).cmp(&(other.arrives, other.order))
    }
}

/// The network: links, and the datagrams in flight.
pub struct Net {
    seed: u64,
    links: Vec<Link>,
    keys: HashMap<LinkKey, LinkId>,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    sent: u64,
}

impl Net {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            links: Vec::new(),
            keys: HashMap::new(),
            in_flight: BinaryHeap::new(),
            sent: 0,
        }
    }

    /// Puts a link on the datagrams `key` names (replacing the key's previous link, if any).
    pub fn add_link(&mut self, key: LinkKey, config: LinkConfig) -> LinkId {
        let id = LinkId(self.links.len());
        // Mixing the index in keeps links with the same config from losing the same packets.
        let seed = self.seed ^ (id.0 as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.links.push(Link {
            config,
            schedule: Vec::new(),
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            busy_until: None,
            rng: StdRng::seed_from_u64(seed),
            stats: LinkStats::default(),
        });
        self.keys.insert(key, id);
        id
    }

    /// From `at` on, the link's bottleneck runs at `rate_bps` (`None`: unlimited). Changes are
    /// known before the packets they affect are sent, so departure times stay exact.
    pub fn schedule_rate(&mut self, link: LinkId, at: Instant, rate_bps: Option<u64>) {
        let schedule = &mut self.links[link.0].schedule;
        schedule.push((at, rate_bps));
        schedule.sort_by_key(|(from, _)| *from);
    }

    pub fn stats(&self, link: LinkId) -> LinkStats {
        self.links[link.0].stats
    }

    fn route(&self, from: SocketAddr, to: SocketAddr) -> Option<LinkId> {
        [
            LinkKey::Pair { from, to },
            LinkKey::To(to),
            LinkKey::From(from),
        ]
        .iter()
        .find_map(|k| self.keys.get(k).copied())
    }

    /// A datagram leaves `from` at `now`. Returns whether the network accepted it (a drop is
    /// silent to the sender, as on a real network; the link's counters say why).
    pub fn send(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        bytes: BytesMut,
    ) -> bool {
        let link = self.route(from, to);
        let arrives = match link {
            Some(id) => {
                let l = &mut self.links[id.0];
                match l.enqueue(now, bytes.len()) {
                    Ok(departs) => departs + l.config.delay,
                    Err(_) => return false,
                }
            }
            None => now,
        };
        self.sent += 1;
        self.in_flight.push(Reverse(InFlight {
            arrives,
            order: self.sent,
            link,
            from,
            to,
            bytes,
        }));
        true
    }

    /// When the next datagram arrives, if any is in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse(d)| d.arrives)
    }

    /// The datagrams that have arrived by `now`, in arrival order: (from, to, bytes).
    pub fn deliver_due(&mut self, now: Instant) -> Vec<(SocketAddr, SocketAddr, BytesMut)> {
        let mut out = Vec::new();
        while self.next_delivery().is_some_and(|t| t <= now) {
            let Some(Reverse(d)) = self.in_flight.pop() else {
                break;
            };
            if let Some(id) = d.link {
                let s = &mut self.links[id.0].stats;
                s.delivered += 1;
                s.bytes_delivered += d.bytes.len() as u64;
            }
            out.push((d.from, d.to, d.bytes));
        }
        out
    }
}

#[cfg(test)]
#[path = "net_tests.rs"]
mod tests;
