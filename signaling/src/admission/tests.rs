use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Admission, AdmissionLimits, Refusal};

fn ip(last: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, last)))
}

fn admission(f: impl FnOnce(&mut AdmissionLimits)) -> Arc<Admission> {
    let mut limits = AdmissionLimits::with_max_open(100);
    f(&mut limits);
    Arc::new(Admission::new(limits))
}

#[test]
fn an_address_upgrading_too_fast_is_told_when_to_retry() {
    let a = admission(|_| {});
    let now = Instant::now();
    let mut tickets = Vec::new();
    for _ in 0..20 {
        tickets.push(a.admit(ip(1), now).expect("within the burst").ticket);
    }
    match a.admit(ip(1), now) {
        Err(Refusal::Rate { retry_after }) => {
            assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_millis(200))
        }
        other => panic!("expected a rate refusal, got {:?}", other.err()),
    }
    // Another address is not slowed down, and the first one recovers with time.
    assert!(a.admit(ip(2), now).is_ok());
    assert!(a.admit(ip(1), now + Duration::from_millis(250)).is_ok());
}

#[test]
fn the_oldest_unjoined_socket_of_an_address_gives_its_slot_to_a_new_one() {
    let a = admission(|_| {});
    let now = Instant::now();
    let tickets: Vec<_> = (0..8)
        .map(|_| a.admit(ip(1), now).unwrap().ticket)
        .collect();
    assert_eq!(a.counts(), (8, 8));
    let mut newest = a.admit(ip(1), now).unwrap();
    assert_eq!(newest.evicted, 1);
    assert_eq!(a.counts(), (8, 8), "one in, one out");
    // The evicted one learns it (the notification is kept until it listens).
    let evicted = &tickets[0];
    let told = futures_util::FutureExt::now_or_never(evicted.evicted());
    assert!(told.is_some(), "the oldest socket is told to go");
    newest.ticket.joined();
    drop(tickets);
    assert_eq!(
        a.counts(),
        (1, 0),
        "dropping an evicted ticket counts nothing twice"
    );
    drop(newest);
    assert_eq!(a.counts(), (0, 0));
}

#[test]
fn joined_sessions_are_never_evicted_and_cap_an_address() {
    let a = admission(|l| l.per_address_open = 3);
    let now = Instant::now();
    let mut joined: Vec<_> = (0..3)
        .map(|_| a.admit(ip(1), now).unwrap().ticket)
        .collect();
    for t in &mut joined {
        t.joined();
    }
    assert!(matches!(a.admit(ip(1), now), Err(Refusal::AddressFull)));
    assert!(a.admit(ip(2), now).is_ok());
    joined.pop();
    assert!(a.admit(ip(1), now).is_ok(), "a slot comes back");
}

#[test]
fn by_default_many_halls_behind_one_nat_address_all_stay_joined() {
    // A province's halls may reach the server through one address; each joined session holds
    // the seat of a valid link, so only the upgrade rate slows them, never a per-address cap.
    let a = admission(|_| {});
    let start = Instant::now();
    let mut joined = Vec::new();
    for i in 0..90u64 {
        let at = start + Duration::from_millis(200 * i);
        let mut t = a.admit(ip(1), at).expect("within the rate").ticket;
        t.joined();
        joined.push(t);
    }
    assert_eq!(a.counts().0, 90);
}

#[test]
fn unjoined_sockets_hold_at_most_their_share_of_the_server() {
    let a = admission(|l| {
        l.max_open = 8;
        l.max_unjoined = 2;
    });
    let now = Instant::now();
    // Two hundred addresses each opening a socket that never joins: they churn two slots.
    let mut held = Vec::new();
    for i in 0..200u8 {
        held.push(a.admit(ip(i), now).unwrap().ticket);
    }
    assert_eq!(a.counts(), (2, 2));
    // Joined sessions fill the rest; then only joined sessions make the server full.
    let mut joined = Vec::new();
    for i in 0..8u8 {
        let mut t = a.admit(ip(200 + (i % 50)), now).unwrap().ticket;
        t.joined();
        joined.push(t);
    }
    assert_eq!(a.counts().0, 8);
    assert!(matches!(a.admit(ip(99), now), Err(Refusal::ServerFull)));
}

#[test]
fn loopback_is_exempt_only_when_trusted_and_ipv6_counts_by_prefix() {
    let now = Instant::now();
    let lo = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    // By default an attack from the host itself meets the per-address limits like any other.
    let a = admission(|_| {});
    let _burst: Vec<_> = (0..20).map(|_| a.admit(lo, now).unwrap()).collect();
    assert!(matches!(a.admit(lo, now), Err(Refusal::Rate { .. })));

    let trusted = admission(|l| l.exempt_loopback = true);
    let _many: Vec<_> = (0..50)
        .map(|_| trusted.admit(lo, now).expect("loopback trusted").ticket)
        .collect();

    let v6 = |last: u16| {
        Some(IpAddr::V6(Ipv6Addr::new(
            0x2001, 0xdb8, 1, 2, 0, 0, 0, last,
        )))
    };
    let _v6: Vec<_> = (0..20u16).map(|i| a.admit(v6(i), now).unwrap()).collect();
    assert!(
        matches!(a.admit(v6(999), now), Err(Refusal::Rate { .. })),
        "one /64 is one address"
    );
}

#[test]
fn a_socket_evicted_while_joining_keeps_a_slot_counted_once() {
    let a = admission(|l| l.per_address_unjoined = 1);
    let now = Instant::now();
    let mut first = a.admit(ip(1), now).unwrap().ticket;
    let second = a.admit(ip(1), now).unwrap().ticket;
    assert_eq!(a.counts(), (1, 1));
    first.joined();
    assert_eq!(a.counts(), (2, 1));
    drop(first);
    drop(second);
    assert_eq!(a.counts(), (0, 0));
}

#[test]
fn idle_addresses_are_forgotten() {
    let a = admission(|_| {});
    let now = Instant::now();
    for i in 0..200u8 {
        drop(a.admit(ip(i), now).unwrap());
    }
    // Buckets not yet refilled are kept (closing a socket must not reset the rate).
    assert_eq!(a.state().addrs.len(), 200);
    let later = now + Duration::from_secs(10);
    a.state().sweep(later, &a.limits);
    assert_eq!(a.state().addrs.len(), 0);
}

#[test]
fn shutdown_refuses_new_sockets_and_reports_idle() {
    let a = admission(|_| {});
    let now = Instant::now();
    let t = a.admit(ip(1), now).unwrap().ticket;
    a.stop();
    assert!(matches!(a.admit(ip(2), now), Err(Refusal::Stopping)));
    let idle = a.until_idle();
    futures_util::pin_mut!(idle);
    assert!(futures_util::FutureExt::now_or_never(&mut idle).is_none());
    drop(t);
    assert!(futures_util::FutureExt::now_or_never(&mut idle).is_some());
}
