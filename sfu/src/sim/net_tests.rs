use super::*;

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 5000))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Sends `n` datagrams of `size` bytes from A to B, one every `gap`, and collects their arrivals.
fn run(net: &mut Net, epoch: Instant, n: usize, size: usize, gap: Duration) -> Vec<Instant> {
    let mut arrivals = Vec::new();
    for i in 0..n {
        let now = epoch + gap * i as u32;
        arrivals.extend(net.deliver_due(now).into_iter().map(|_| now));
        net.send(now, addr(1), addr(2), BytesMut::zeroed(size));
        // Pick up everything that arrives before the next send at its exact time.
        while let Some(t) = net.next_delivery() {
            if t >= now + gap {
                break;
            }
            arrivals.extend(net.deliver_due(t).into_iter().map(|_| t));
        }
    }
    while let Some(t) = net.next_delivery() {
        arrivals.extend(net.deliver_due(t).into_iter().map(|_| t));
    }
    arrivals
}

#[test]
fn an_ideal_path_delivers_at_once_in_order() {
    let epoch = Instant::now();
    let mut net = Net::new(1);
    net.send(epoch, addr(1), addr(2), BytesMut::from(&b"a"[..]));
    net.send(epoch, addr(1), addr(2), BytesMut::from(&b"b"[..]));
    assert_eq!(net.next_delivery(), Some(epoch));
    let got = net.deliver_due(epoch);
    assert_eq!(
        got.iter().map(|(_, _, b)| &b[..]).collect::<Vec<_>>(),
        [b"a", b"b"]
    );
    assert_eq!(got[0].0, addr(1));
    assert_eq!(got[0].1, addr(2));
    assert_eq!(net.next_delivery(), None);
}

#[test]
fn delay_is_added_to_every_datagram() {
    let epoch = Instant::now();
    let mut net = Net::new(1);
    let link = net.add_link(
        LinkKey::To(addr(2)),
        LinkConfig {
            delay: ms(40),
            ..Default::default()
        },
    );
    net.send(epoch, addr(1), addr(2), BytesMut::zeroed(100));
    assert_eq!(net.next_delivery(), Some(epoch + ms(40)));
    assert!(net.deliver_due(epoch + ms(39)).is_empty());
    assert_eq!(net.deliver_due(epoch + ms(40)).len(), 1);
    // The other direction is not on this link.
    net.send(epoch, addr(2), addr(1), BytesMut::zeroed(100));
    assert_eq!(net.next_delivery(), Some(epoch));
    assert_eq!(net.stats(link).delivered, 1);
    assert_eq!(net.stats(link).bytes_delivered, 100);
}

#[test]
fn the_bottleneck_spaces_packets_at_the_line_rate() {
    let epoch = Instant::now();
    let mut net = Net::new(1);
    // 1,000 bytes at 800 kbit/s: 10 ms each; a burst of 5 leaves 10 ms apart.
    net.add_link(
        LinkKey::To(addr(2)),
        LinkConfig {
            rate_bps: Some(800_000),
            delay: ms(5),
            ..Default::default()
        },
    );
    let arrivals = run(&mut net, epoch, 5, 1_000, Duration::ZERO);
    let expected: Vec<Instant> = (1..=5).map(|i| epoch + ms(5 + 10 * i)).collect();
    assert_eq!(arrivals, expected);
}

#[test]
fn a_full_queue_drops_the_excess_and_delivers_the_line_rate() {
    let epoch = Instant::now();
    let mut net = Net::new(1);
    // Offer 2 Mbit/s (1,250 bytes every 5 ms) to a 1 Mbit/s line with a 20-packet queue.
    let link = net.add_link(
        LinkKey::Pair {
            from: addr(1),
            to: addr(2),
        },
        LinkConfig {
            rate_bps: Some(1_000_000),
            queue: QueueLimit::Packets(20),
            ..Default::default()
        },
    );
    let arrivals = run(&mut net, epoch, 2_000, 1_250, ms(5));
    let s = net.stats(link);
    assert_eq!(s.sent, 2_000);
    assert_eq!(s.dropped_loss, 0);
    assert_eq!(s.delivered as usize, arrivals.len());
    assert_eq!(s.delivered + s.dropped_queue, 2_000);
    // 10 s of sending at twice the rate: about half gets through (plus the queue's 20).
    assert!((1_000..=1_025).contains(&s.delivered), "{s:?}");
    let last = *arrivals.last().unwrap();
    let rate = s.bytes_delivered as f64 * 8.0 / (last - epoch).as_secs_f64();
    assert!((rate - 1_000_000.0).abs() < 10_000.0, "{rate}");
}

#[test]
fn a_byte_limit_counts_bytes() {
    let epoch = Instant::now();
    let mut net = Net::new(1);
    let link = net.add_link(
        LinkKey::To(addr(2)),
        LinkConfig {
            rate_bps: Some(80_000),
            queue: QueueLimit::Bytes(3_000),
            ..Default::default()
        },
    );
    // A burst of ten 1,000-byte packets: three fit, the rest is dropped.
    for _ in 0..10 {
        net.send(epoch, addr(1), addr(2), BytesMut::zeroed(1_000));
    }
    assert_eq!(net.stats(link).accepted, 3);
    assert_eq!(net.stats(link).dropped_queue, 7);
}

#[test]
fn random_loss_matches_its_probability_and_repeats_with_the_seed() {
    let epoch = Instant::now();
    let losses = |seed: u64| {
        let mut net = Net::new(seed);
        let link = net.add_link(
            LinkKey::From(addr(1)),
            LinkConfig {
                loss: 0.05,
                ..Default::default()
            },
        );
        let accepted: Vec<bool> = (0..20_000)
            .map(|i| net.send(epoch + ms(i), addr(1), addr(2), BytesMut::zeroed(10)))
            .collect();
        assert_eq!(
            net.stats(link).dropped_loss as usize,
            accepted.iter().filter(|a| !**a).count()
        );
        accepted
    };
    let a = losses(7);
    let lost = a.iter().filter(|x| !**x).count() as f64 / a.len() as f64;
    assert!((lost - 0.05).abs() < 0.005, "{lost}");
    assert_eq!(a, losses(7), "same seed, same fates");
    assert_ne!(a, losses(8));
}

#[test]
fn a_rate_drop_and_recovery_follow_the_schedule() {
    let epoch = Instant::now();
    let mut net = Net::new(1);
    let link = net.add_link(
        LinkKey::To(addr(2)),
        LinkConfig {
            rate_bps: Some(2_000_000),
            queue: QueueLimit::Packets(20),
            ..Default::default()
        },
    );
    // The line drops to 400 kbit/s from 2 s to 4 s; 1 Mbit/s is offered throughout.
    net.schedule_rate(link, epoch + Duration::from_secs(2), Some(400_000));
    net.schedule_rate(link, epoch + Duration::from_secs(4), Some(2_000_000));
    let arrivals = run(&mut net, epoch, 600, 1_250, ms(10));
    let delivered_in = |from: u64, to: u64| {
        arrivals
            .iter()
            .filter(|a| **a >= epoch + ms(from) && **a < epoch + ms(to))
            .count()
    };
    // 100 packets a second offered: all through before and after, 40 a second during.
    assert_eq!(delivered_in(0, 2_000), 200);
    let during = delivered_in(2_200, 3_800) as f64 / 1.6;
    assert!((during - 40.0).abs() <= 2.0, "{during}");
    assert!(delivered_in(4_500, 6_000) >= 145);
    assert!(net.stats(link).dropped_queue > 50);
}
