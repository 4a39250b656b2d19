//! How many HTTP(S) connections may be open: per client address and in all.
//!
//! A connection takes an [`Admission`] when it is accepted and gives it back when it closes. The
//! per-address slot covers the HTTP part of a connection's life (TLS handshake, request headers,
//! requests); a WebSocket upgraded from it is signaling's to limit, so the slot is returned at
//! the upgrade. The global permit stays with the socket to the end, upgraded or not, since what
//! it protects is the process's file descriptors.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address already has the most connections allowed.
    PerAddress,
    /// The server has the most connections it can hold.
    Total,
}

impl Refusal {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::PerAddress => "per_address",
            Refusal::Total => "total",
        }
    }
}

/// The address a connection counts against: the IPv4 address (an IPv4-mapped IPv6 address is
/// the IPv4 one), or the IPv6 /64 prefix, since one IPv6 subscriber usually holds a whole /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressKey(IpAddr);

impl AddressKey {
    pub fn of(ip: IpAddr) -> AddressKey {
        match ip {
            IpAddr::V4(_) => AddressKey(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    AddressKey(IpAddr::V6(Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }
}

/// The counters; cheap to clone.
#[derive(Clone)]
pub struct ConnLimits {
    per_address: usize,
    open: Arc<Mutex<HashMap<AddressKey, usize>>>,
    total: Arc<Semaphore>,
}

impl ConnLimits {
    pub fn new(per_address: usize, total: usize) -> ConnLimits {
        ConnLimits {
            per_address: per_address.max(1),
            open: Arc::default(),
            total: Arc::new(Semaphore::new(total.max(1))),
        }
    }

    /// A place for one more connection from `ip`, or why there is none.
    pub fn admit(&self, ip: IpAddr) -> Result<Admission, Refusal> {
        let key = AddressKey::of(ip);
        {
            let mut open = self.lock();
            let n = open.entry(key).or_insert(0);
            if *n >= self.per_address {
                return Err(Refusal::PerAddress);
            }
            *n += 1;
        }
        let slot = AddressSlot {
            limits: self.clone(),
            key,
        };
        match self.total.clone().try_acquire_owned() {
            Ok(permit) => Ok(Admission { slot, permit }),
            // `slot` is dropped here, giving the address its place back.
            Err(_) => Err(Refusal::Total),
        }
    }

    /// Connections open from `ip`'s address.
    #[cfg(test)]
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.lock().get(&AddressKey::of(ip)).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AddressKey, usize>> {
        // Plain counters: a panic elsewhere cannot leave them half-updated.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One connection's places: its address slot and its global permit.
pub struct Admission {
    pub slot: AddressSlot,
    pub permit: OwnedSemaphorePermit,
}

/// One connection's place among its address's; returned on drop.
pub struct AddressSlot {
    limits: ConnLimits,
    key: AddressKey,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.limits.lock();
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                // Addresses that have gone leave nothing behind.
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_gets_its_share_and_no_more() {
        let limits = ConnLimits::new(2, 100);
        let a = limits.admit(ip("192.0.2.1")).unwrap();
        let _b = limits.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(
            limits.admit(ip("192.0.2.1")).err(),
            Some(Refusal::PerAddress)
        );
        // Another address is not affected.
        assert!(limits.admit(ip("192.0.2.2")).is_ok());
        drop(a);
        assert!(limits.admit(ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn the_total_bounds_all_addresses_and_refusal_returns_the_slot() {
        let limits = ConnLimits::new(10, 2);
        let _a = limits.admit(ip("192.0.2.1")).unwrap();
        let _b = limits.admit(ip("192.0.2.2")).unwrap();
        assert_eq!(limits.admit(ip("192.0.2.3")).err(), Some(Refusal::Total));
        assert_eq!(limits.open_from(ip("192.0.2.3")), 0);
    }

    #[test]
    fn closed_connections_leave_no_entry() {
        let limits = ConnLimits::new(4, 4);
        drop(limits.admit(ip("192.0.2.1")).unwrap());
        assert!(limits.lock().is_empty());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            AddressKey::of(ip("2001:db8:1:2:aaaa::1")),
            AddressKey::of(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            AddressKey::of(ip("2001:db8:1:2::1")),
            AddressKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            AddressKey::of(ip("::ffff:192.0.2.7")),
            AddressKey::of(ip("192.0.2.7"))
        );
    }
}
