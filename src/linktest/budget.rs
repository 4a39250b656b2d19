//! The link test's byte budgets: one for the whole server, one per seat (meeting and point of a
//! join token) and one per client address, each per [`WINDOW`]. A transfer is charged to all
//! three at once or to none, so one token or one address draining its share leaves the others
//! theirs, and all of them together still cannot take the server's uplink.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::front::limits::AddressKey;

/// The length of every budget's window.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Seats and addresses tracked at once; past it, a new one waits for old windows to end.
const MAX_TRACKED: usize = 4096;

/// Bytes allowed per window.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub total: u64,
    pub per_seat: u64,
    pub per_address: u64,
}

/// A join token's seat: meeting id and point code.
pub type Seat = (String, String);

/// Who asks for a transfer.
#[derive(Debug, Clone)]
pub struct Tester {
    pub seat: Seat,
    /// `None` when the request came without a peer address (in-process tests).
    pub address: Option<AddressKey>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    used: u64,
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            start: now,
            used: 0,
        }
    }

    /// The bytes used in the window that holds `now` (a window that ended counts as empty).
    fn used_at(&self, now: Instant) -> u64 {
        if now.duration_since(self.start) >= WINDOW {
            0
        } else {
            self.used
        }
    }

    fn charge(&mut self, n: u64, now: Instant) {
        if now.duration_since(self.start) >= WINDOW {
            *self = Window::new(now);
        }
        self.used += n;
    }
}

/// Windows per key, bounded in number.
struct Windows<K> {
    map: HashMap<K, Window>,
}

impl<K: Eq + Hash + Clone> Windows<K> {
    fn new() -> Self {
        Windows {
            map: HashMap::new(),
        }
    }

    fn used(&self, key: &K, now: Instant) -> u64 {
        self.map.get(key).map_or(0, |w| w.used_at(now))
    }

    /// Whether `key` can get a window: it has one, or there is room (after dropping ended ones).
    fn has_room_for(&mut self, key: &K, now: Instant) -> bool {
        if self.map.contains_key(key) || self.map.len() < MAX_TRACKED {
            return true;
        }
        self.map.retain(|_, w| now.duration_since(w.start) < WINDOW);
        self.map.len() < MAX_TRACKED
    }

    fn charge(&mut self, key: &K, n: u64, now: Instant) {
        self.map
            .entry(key.clone())
            .or_insert_with(|| Window::new(now))
            .charge(n, now);
    }
}

/// All the budgets; the caller holds it behind one lock, so a charge is all-or-nothing.
pub struct Budgets {
    limits: Limits,
    total: Window,
    seats: Windows<Seat>,
    addresses: Windows<AddressKey>,
}

impl Budgets {
    pub fn new(limits: Limits, now: Instant) -> Budgets {
        Budgets {
            limits,
            total: Window::new(now),
            seats: Windows::new(),
            addresses: Windows::new(),
        }
    }

    /// Takes `n` bytes from every budget `who` draws on, or from none when one would overflow.
    pub fn take(&mut self, who: &Tester, n: u64, now: Instant) -> bool {
        let l = self.limits;
        let fits = self.total.used_at(now) + n <= l.total
            && self.seats.has_room_for(&who.seat, now)
            && self.seats.used(&who.seat, now) + n <= l.per_seat
            && who.address.is_none_or(|a| {
                self.addresses.has_room_for(&a, now)
                    && self.addresses.used(&a, now) + n <= l.per_address
            });
        if fits {
            self.total.charge(n, now);
            self.seats.charge(&who.seat, n, now);
            if let Some(a) = who.address {
                self.addresses.charge(&a, n, now);
            }
        }
        fits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        total: 1000,
        per_seat: 300,
        per_address: 500,
    };

    fn tester(point: &str, ip: &str) -> Tester {
        Tester {
            seat: ("m".to_owned(), point.to_owned()),
            address: Some(AddressKey::of(ip.parse().unwrap())),
        }
    }

    #[test]
    fn a_seat_that_used_its_share_leaves_others_theirs() {
        let now = Instant::now();
        let mut b = Budgets::new(LIMITS, now);
        let a = tester("a", "192.0.2.1");
        assert!(b.take(&a, 300, now));
        assert!(!b.take(&a, 1, now));
        assert!(b.take(&tester("b", "192.0.2.2"), 300, now));
        // The next window gives the seat its share again.
        assert!(b.take(&a, 300, now + WINDOW));
    }

    #[test]
    fn an_address_is_bounded_across_its_seats_and_the_total_across_addresses() {
        let now = Instant::now();
        let mut b = Budgets::new(LIMITS, now);
        assert!(b.take(&tester("a", "192.0.2.1"), 300, now));
        assert!(b.take(&tester("b", "192.0.2.1"), 200, now));
        assert!(!b.take(&tester("c", "192.0.2.1"), 1, now));
        assert!(b.take(&tester("d", "192.0.2.2"), 300, now));
        assert!(b.take(&tester("e", "192.0.2.3"), 200, now));
        assert!(!b.take(&tester("f", "192.0.2.4"), 1, now));
    }

    #[test]
    fn a_refused_transfer_charges_nothing() {
        let now = Instant::now();
        let mut b = Budgets::new(LIMITS, now);
        let a = tester("a", "192.0.2.1");
        assert!(!b.take(&a, 301, now));
        assert!(b.take(&a, 300, now));
    }

    #[test]
    fn tracked_seats_are_bounded_and_ended_windows_make_room() {
        let now = Instant::now();
        let mut b = Budgets::new(
            Limits {
                total: u64::MAX,
                per_seat: 10,
                per_address: u64::MAX,
            },
            now,
        );
        for i in 0..MAX_TRACKED {
            let t = Tester {
                seat: ("m".into(), i.to_string()),
                address: None,
            };
            assert!(b.take(&t, 1, now));
        }
        let late = Tester {
            seat: ("m".into(), "late".into()),
            address: None,
        };
        assert!(!b.take(&late, 1, now));
        assert!(b.take(&late, 1, now + WINDOW));
        assert!(b.seats.map.len() <= MAX_TRACKED);
    }
}
