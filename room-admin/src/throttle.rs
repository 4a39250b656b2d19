//! Login throttling: failed logins counted per account and per client address over a sliding
//! window. Over the limit, logins are refused without checking the password (so guessing costs
//! the attacker time, not our CPU) until the window moves on.
//!
//! In memory: a restart clears it, which only gives an attacker a few more guesses per restart.
//! The maps are bounded: when full, the oldest entries go first.

use std::collections::HashMap;
use std::sync::Mutex;

/// Failures allowed per account in a window.
pub const PER_ACCOUNT: usize = 5;
/// Failures allowed per address in a window (an office behind one NAT shares an address).
pub const PER_IP: usize = 20;
pub const WINDOW_SECS: i64 = 15 * 60;
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    inner: Mutex<Maps>,
}

#[derive(Debug, Default)]
struct Maps {
    accounts: HashMap<String, Vec<i64>>,
    ips: HashMap<String, Vec<i64>>,
}

fn recent(list: &mut Vec<i64>, now: i64) -> usize {
    list.retain(|&t| t > now - WINDOW_SECS);
    list.len()
}

fn bound(map: &mut HashMap<String, Vec<i64>>, now: i64) {
    if map.len() >= MAX_KEYS {
        map.retain(|_, v| recent(v, now) > 0);
    }
    if map.len() >= MAX_KEYS {
        let oldest = map
            .iter()
            .min_by_key(|(_, v)| v.last().copied().unwrap_or(0))
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            map.remove(&k);
        }
    }
}

impl LoginThrottle {
    /// Seconds to wait before the next try, or `None` when a try is allowed now.
    pub fn check(&self, account: &str, ip: &str, now: i64) -> Option<i64> {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let wait = |list: &mut Vec<i64>, limit: usize| {
            (recent(list, now) >= limit).then(|| {
                list.first()
                    .map_or(WINDOW_SECS, |first| first + WINDOW_SECS - now)
            })
        };
        let a = m
            .accounts
            .get_mut(account)
            .and_then(|l| wait(l, PER_ACCOUNT));
        let i = m.ips.get_mut(ip).and_then(|l| wait(l, PER_IP));
        a.max(i).map(|s| s.max(1))
    }

    pub fn failed(&self, account: &str, ip: &str, now: i64) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        bound(&mut m.accounts, now);
        bound(&mut m.ips, now);
        m.accounts.entry(account.to_owned()).or_default().push(now);
        m.ips.entry(ip.to_owned()).or_default().push(now);
    }

    /// A successful login clears the account's failures (not the address's).
    pub fn succeeded(&self, account: &str) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.accounts.remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_account_then_per_ip_then_window_moves_on() {
        let t = LoginThrottle::default();
        for _ in 0..PER_ACCOUNT {
            assert_eq!(t.check("admin", "1.2.3.4", 100), None);
            t.failed("admin", "1.2.3.4", 100);
        }
        assert!(
            t.check("admin", "5.6.7.8", 101).is_some(),
            "account locked from any address"
        );
        assert_eq!(t.check("other", "1.2.3.4", 101), None);
        for i in 0..PER_IP {
            t.failed(&format!("u{i}"), "9.9.9.9", 100);
        }
        assert!(
            t.check("fresh", "9.9.9.9", 101).is_some(),
            "address locked for any account"
        );
        assert_eq!(t.check("admin", "1.2.3.4", 100 + WINDOW_SECS + 1), None);
        t.succeeded("admin");
    }
}
