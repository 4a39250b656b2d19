//! Which peer connection a datagram on a shared port belongs to.
//!
//! A connection is found by its source address once known. An address is learnt from a STUN
//! binding request whose USERNAME starts with a ufrag we issued; the connection itself then
//! checks MESSAGE-INTEGRITY, so a forged request only makes that connection drop a packet.
//! STUN with a known ufrag wins over the address table: a client whose NAT rebinds, or a port
//! reused by another client, is re-routed by its next check.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;

use crate::packet::{DatagramKind, classify, stun_local_ufrag};

#[derive(Debug)]
pub struct Demux<K> {
    by_ufrag: HashMap<String, K>,
    by_addr: HashMap<SocketAddr, K>,
}

impl<K: Copy + Eq + Hash> Default for Demux<K> {
    fn default() -> Self {
        Self {
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
        }
    }
}

/// Result of routing one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<K> {
    pub key: K,
    /// The address was not known for this key before this datagram.
    pub new_addr: bool,
}

impl<K: Copy + Eq + Hash> Demux<K> {
    pub fn add_ufrag(&mut self, ufrag: String, key: K) {
        self.by_ufrag.insert(ufrag, key);
    }

    /// The connection a ufrag names (ICE-TCP: a TCP connection belongs to one ICE connection
    /// for its whole life, named by its first binding request).
    pub fn key_of_ufrag(&self, ufrag: &str) -> Option<K> {
        self.by_ufrag.get(ufrag).copied()
    }

    /// Routes a datagram from `from`.
    pub fn route(&mut self, from: SocketAddr, datagram: &[u8]) -> Option<Route<K>> {
        if classify(datagram) == DatagramKind::Stun
            && let Some(ufrag) = stun_local_ufrag(datagram)
            && let Some(&key) = self.by_ufrag.get(ufrag)
        {
            let previous = self.by_addr.insert(from, key);
            return Some(Route {
                key,
                new_addr: previous != Some(key),
            });
        }
        self.by_addr.get(&from).map(|&key| Route {
            key,
            new_addr: false,
        })
    }

    /// Records that `key` sends to `addr` (replies to our own checks carry no USERNAME).
    pub fn learn(&mut self, addr: SocketAddr, key: K) {
        self.by_addr.entry(addr).or_insert(key);
    }

    /// Forgets a connection: its ufrag and every address that still points at it.
    pub fn remove(&mut self, ufrag: &str, addrs: &[SocketAddr], key: K) {
        if self.by_ufrag.get(ufrag) == Some(&key) {
            self.by_ufrag.remove(ufrag);
        }
        for a in addrs {
            if self.by_addr.get(a) == Some(&key) {
                self.by_addr.remove(a);
            }
        }
    }

    pub fn len(&self) -> (usize, usize) {
        (self.by_ufrag.len(), self.by_addr.len())
    }
}

/// A fresh ufrag for a connection of `worker`. It must be unique per worker (it is the demux
/// key) and unguessable enough that a stranger cannot aim packets at a connection (the password
/// is what ICE checks). It names its worker, so a TCP connection can be handed to the right one
/// from its first binding request.
pub fn make_ufrag(worker: usize, seq: u64) -> String {
    format!("{:x}w{worker}n{seq}", rand::random::<u32>())
}

/// The worker a ufrag made by [`make_ufrag`] belongs to.
pub fn ufrag_worker(ufrag: &str) -> Option<usize> {
    let (_, rest) = ufrag.split_once('w')?;
    let (worker, _) = rest.split_once('n')?;
    if worker.is_empty() || worker.len() > 4 {
        return None;
    }
    worker.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::tests::binding_request;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_ufrag_names_its_worker() {
        for w in [0, 1, 7, 1023] {
            let u = make_ufrag(w, 42);
            assert_eq!(ufrag_worker(&u), Some(w), "{u}");
        }
        for bad in [
            "",
            "abc",
            "abcw",
            "abcwn1",
            "abcw1",
            "abcwxn1",
            "abcw99999n1",
        ] {
            assert_eq!(ufrag_worker(bad), None, "{bad}");
        }
    }

    #[test]
    fn routes_by_ufrag_then_by_address() {
        let mut d = Demux::default();
        d.add_ufrag("aaaa".into(), 1);
        d.add_ufrag("bbbb".into(), 2);
        let rtp = [0x80u8, 96, 0, 1];
        // Unknown address, not STUN: nobody's.
        assert_eq!(d.route(addr(5000), &rtp), None);
        let r = d.route(addr(5000), &binding_request("aaaa:x")).unwrap();
        assert_eq!((r.key, r.new_addr), (1, true));
        assert_eq!(d.route(addr(5000), &rtp).unwrap().key, 1);
        assert_eq!(
            d.route(addr(5001), &binding_request("bbbb:y")).unwrap().key,
            2
        );
        assert_eq!(d.route(addr(5001), &rtp).unwrap().key, 2);
        // Unknown ufrag from an unknown address is dropped.
        assert_eq!(d.route(addr(5002), &binding_request("zzzz:y")), None);
    }

    #[test]
    fn stun_reroutes_a_reused_address() {
        let mut d = Demux::default();
        d.add_ufrag("aaaa".into(), 1);
        d.add_ufrag("bbbb".into(), 2);
        d.route(addr(6000), &binding_request("aaaa:x"));
        let r = d.route(addr(6000), &binding_request("bbbb:x")).unwrap();
        assert_eq!((r.key, r.new_addr), (2, true));
        assert_eq!(d.route(addr(6000), &[0x80, 0]).unwrap().key, 2);
    }

    #[test]
    fn remove_forgets_only_its_own_entries() {
        let mut d = Demux::default();
        d.add_ufrag("aaaa".into(), 1);
        d.add_ufrag("bbbb".into(), 2);
        d.route(addr(1), &binding_request("aaaa:x"));
        d.route(addr(2), &binding_request("aaaa:x"));
        d.route(addr(3), &binding_request("bbbb:x"));
        d.learn(addr(4), 1);
        d.remove("aaaa", &[addr(1), addr(2), addr(3), addr(4)], 1);
        assert_eq!(d.route(addr(1), &[0x80]), None);
        assert_eq!(d.route(addr(4), &[0x80]), None);
        assert_eq!(d.route(addr(3), &[0x80]).unwrap().key, 2);
        assert_eq!(d.len(), (1, 1));
    }
}
