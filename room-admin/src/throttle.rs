//! Login throttling: password checks counted over a sliding window per (account, address), per
//! address, and per account.
//!
//! - An **(account, address)** pair that failed [`PER_ACCOUNT`] times is refused until the
//!   window moves on: the guesser is locked out, the owner at another address is not.
//! - An **address** that failed [`PER_IP`] times (any accounts) is refused likewise.
//! - An **account** that failed [`SLOW_AFTER`] times from anywhere is only slowed down: one
//!   password check per [`SPACING_SECS`], so a guesser with many addresses gains little and
//!   the owner still logs in after a short wait.
//!
//! A check is *reserved* before the password is hashed ([`LoginThrottle::reserve`]): the
//! reservation counts as a failure at once, under the same lock as the limit check, so thirty
//! parallel guesses from one address cannot all slip through before the first one fails. A
//! success takes its reservation back ([`Attempt::succeeded`]).
//!
//! In memory: a restart clears it, which only gives an attacker a few more guesses per restart.
//! The maps are bounded: when full, the oldest entries go first.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

/// Failures allowed per account from one address in a window.
pub const PER_ACCOUNT: usize = 5;
/// Failures allowed per address in a window (an office behind one NAT shares an address).
pub const PER_IP: usize = 20;
/// Failures of an account from all addresses after which its checks are spaced out.
pub const SLOW_AFTER: usize = 10;
/// Seconds between two password checks of a slowed-down account.
pub const SPACING_SECS: i64 = 2;
pub const WINDOW_SECS: i64 = 15 * 60;
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    inner: Mutex<Maps>,
}

#[derive(Debug, Default)]
struct Maps {
    pairs: HashMap<(String, String), Vec<i64>>,
    ips: HashMap<String, Vec<i64>>,
    accounts: HashMap<String, Vec<i64>>,
    /// When each account's password was last checked (successes too), for the spacing.
    last_check: HashMap<String, i64>,
}

/// A reserved password check. Dropped without [`Attempt::succeeded`], it stays a failure.
#[must_use = "a reservation is a failure unless `succeeded` is called"]
#[derive(Debug)]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    account: String,
    ip: String,
    at: i64,
}

impl Attempt<'_> {
    /// The password was right: the reservation is taken back and the failures of this account
    /// from this address are forgotten (not those from elsewhere, nor the address's).
    pub fn succeeded(self) {
        let mut m = self.throttle.lock();
        let pair = (self.account.clone(), self.ip.clone());
        m.pairs.remove(&pair);
        unreserve(m.ips.get_mut(&self.ip), self.at);
        unreserve(m.accounts.get_mut(&self.account), self.at);
    }
}

fn unreserve(list: Option<&mut Vec<i64>>, at: i64) {
    if let Some(list) = list
        && let Some(i) = list.iter().rposition(|&t| t == at)
    {
        list.remove(i);
    }
}

fn recent(list: &mut Vec<i64>, now: i64) -> usize {
    list.retain(|&t| t > now - WINDOW_SECS);
    list.len()
}

/// Seconds until the oldest failure leaves the window, when `limit` is reached.
fn locked(list: Option<&mut Vec<i64>>, limit: usize, now: i64) -> Option<i64> {
    let list = list?;
    (recent(list, now) >= limit).then(|| {
        list.first()
            .map_or(WINDOW_SECS, |first| first + WINDOW_SECS - now)
    })
}

/// Seconds until a slowed-down account may be checked again.
fn spaced(failures: Option<&mut Vec<i64>>, last_check: Option<i64>, now: i64) -> Option<i64> {
    if recent(failures?, now) < SLOW_AFTER {
        return None;
    }
    let since = now - last_check?;
    (since < SPACING_SECS).then(|| SPACING_SECS - since)
}

fn bound<K: Clone + Eq + Hash>(map: &mut HashMap<K, Vec<i64>>, now: i64) {
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
    fn lock(&self) -> MutexGuard<'_, Maps> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves one password check of `account` from `ip` at `now`, or says how many seconds
    /// to wait (at least 1).
    pub fn reserve(&self, account: &str, ip: &str, now: i64) -> Result<Attempt<'_>, i64> {
        let mut guard = self.lock();
        let m = &mut *guard;
        let pair = (account.to_owned(), ip.to_owned());
        let wait = [
            locked(m.pairs.get_mut(&pair), PER_ACCOUNT, now),
            locked(m.ips.get_mut(ip), PER_IP, now),
            spaced(
                m.accounts.get_mut(account),
                m.last_check.get(account).copied(),
                now,
            ),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Err(wait.max(1));
        }
        bound(&mut m.pairs, now);
        bound(&mut m.ips, now);
        bound(&mut m.accounts, now);
        if m.last_check.len() >= MAX_KEYS {
            m.last_check.retain(|_, t| now - *t < SPACING_SECS);
        }
        if m.last_check.len() < MAX_KEYS {
            m.last_check.insert(account.to_owned(), now);
        }
        m.pairs.entry(pair).or_default().push(now);
        m.ips.entry(ip.to_owned()).or_default().push(now);
        m.accounts.entry(account.to_owned()).or_default().push(now);
        Ok(Attempt {
            throttle: self,
            account: account.to_owned(),
            ip: ip.to_owned(),
            at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(t: &LoginThrottle, account: &str, ip: &str, now: i64) {
        drop(t.reserve(account, ip, now).expect("allowed"));
    }

    #[test]
    fn a_pair_locks_only_itself_and_the_window_moves_on() {
        let t = LoginThrottle::default();
        for _ in 0..PER_ACCOUNT {
            fail(&t, "admin", "1.2.3.4", 100);
        }
        assert!(t.reserve("admin", "1.2.3.4", 101).is_err(), "the guesser");
        t.reserve("admin", "5.6.7.8", 101)
            .expect("the owner elsewhere")
            .succeeded();
        t.reserve("other", "1.2.3.4", 101)
            .expect("another account")
            .succeeded();
        assert!(t.reserve("admin", "1.2.3.4", 100 + WINDOW_SECS + 1).is_ok());
    }

    #[test]
    fn an_address_is_locked_for_every_account() {
        let t = LoginThrottle::default();
        for i in 0..PER_IP {
            fail(&t, &format!("u{i}"), "9.9.9.9", 100);
        }
        assert_eq!(
            t.reserve("fresh", "9.9.9.9", 101).unwrap_err(),
            WINDOW_SECS - 1
        );
    }

    #[test]
    fn a_much_guessed_account_is_slowed_not_locked() {
        let t = LoginThrottle::default();
        for i in 0..SLOW_AFTER {
            fail(&t, "admin", &format!("10.0.0.{i}"), 100);
        }
        // The owner, at an address that never failed: a wait of seconds, then in.
        assert_eq!(t.reserve("admin", "192.0.2.1", 101).unwrap_err(), 1);
        t.reserve("admin", "192.0.2.1", 102).unwrap().succeeded();
        // Checks stay spaced while the failures are in the window.
        assert!(t.reserve("admin", "10.0.0.99", 102).is_err());
        assert!(t.reserve("admin", "10.0.0.99", 104).is_ok());
    }

    #[test]
    fn a_success_takes_its_reservation_back() {
        let t = LoginThrottle::default();
        for _ in 0..PER_IP * 2 {
            t.reserve("admin", "1.2.3.4", 100).unwrap().succeeded();
        }
        assert!(t.reserve("other", "1.2.3.4", 100).is_ok());
    }
}
