//! Link emulation as a pure state machine: a packet of some size enters at `now`; the emulator
//! answers when it leaves the far end of the link, or that it was dropped and why.
//!
//! The model, in the order a packet meets it:
//! 1. **UDP blocked** (`tcp-only` sites): every datagram is dropped.
//! 2. **Loss**: independent random loss, or a Gilbert–Elliott two-state chain for bursts (in the
//!    bad state every packet is lost; the chain is parameterised by the mean loss and the mean
//!    burst length).
//! 3. **Rate limit with a drop-tail queue**: the link serialises one packet after another at the
//!    current rate; a packet that would wait longer than the queue holds is dropped. The rate can
//!    follow a schedule (`flap`).
//! 4. **One-way delay and jitter** (uniform in ±jitter), added after serialisation; packets stay
//!    in order (a FIFO link, as a real access line is).
//!
//! Deterministic for a given seed: the relay and the unit tests feed it explicit times.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// What one direction of a link does to packets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkParams {
    /// Profile name (`custom` when built from values).
    pub name: String,
    /// Bits per second; `None`: unlimited.
    pub rate_bps: Option<u64>,
    /// Rate changes: from `at` (since the link started) on, the rate is `rate_bps`.
    pub schedule: Vec<RateStep>,
    /// Longest a packet may wait in the queue before the rate limiter drops it.
    pub queue: Duration,
    /// Mean packet loss, 0..=1.
    pub loss: f64,
    /// Mean loss burst length in packets; 1 means independent losses.
    pub burst: f64,
    pub delay: Duration,
    /// Uniform jitter: the one-way delay varies in `delay ± jitter`.
    pub jitter: Duration,
    /// Every UDP datagram is dropped (a site that allows only TCP).
    pub udp_blocked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateStep {
    #[serde(serialize_with = "secs")]
    pub at: Duration,
    pub rate_bps: u64,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Default for LinkParams {
    fn default() -> Self {
        LinkParams {
            name: "custom".into(),
            rate_bps: None,
            schedule: Vec::new(),
            queue: Duration::from_millis(200),
            loss: 0.0,
            burst: 1.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            udp_blocked: false,
        }
    }
}

/// Named profiles.
pub const PROFILES: &[&str] = &["fibre", "adsl", "bad", "flap", "tcp-only"];

impl LinkParams {
    /// A named profile, or `None`.
    pub fn profile(name: &str) -> Option<LinkParams> {
        let ms = Duration::from_millis;
        let p = match name {
            // A good provincial fibre line: plenty of rate, short delay.
            "fibre" => LinkParams {
                rate_bps: Some(100_000_000),
                delay: ms(5),
                jitter: ms(1),
                ..Default::default()
            },
            "adsl" => LinkParams {
                rate_bps: Some(1_000_000),
                loss: 0.02,
                delay: ms(40),
                jitter: ms(5),
                ..Default::default()
            },
            "bad" => LinkParams {
                rate_bps: Some(300_000),
                loss: 0.05,
                burst: 2.0,
                delay: ms(100),
                jitter: ms(15),
                queue: ms(300),
                ..Default::default()
            },
            // 2 Mbit/s, down to 150 kbit/s from 10 s to 30 s, then back.
            "flap" => LinkParams {
                rate_bps: Some(2_000_000),
                schedule: vec![
                    RateStep {
                        at: Duration::from_secs(10),
                        rate_bps: 150_000,
                    },
                    RateStep {
                        at: Duration::from_secs(30),
                        rate_bps: 2_000_000,
                    },
                ],
                delay: ms(30),
                jitter: ms(5),
                ..Default::default()
            },
            "tcp-only" => LinkParams {
                udp_blocked: true,
                ..Default::default()
            },
            _ => return None,
        };
        Some(LinkParams {
            name: name.into(),
            ..p
        })
    }

    /// Checks the values are physically possible.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.loss) || self.loss.is_nan() {
            return Err(format!(
                "loss must be between 0 and 100 %, got {} %",
                self.loss * 100.0
            ));
        }
        if self.burst < 1.0 || self.burst.is_nan() {
            return Err(format!(
                "mean burst length must be at least 1 packet, got {}",
                self.burst
            ));
        }
        if self.rate_bps == Some(0) || self.schedule.iter().any(|s| s.rate_bps == 0) {
            return Err("rate must be positive".into());
        }
        if self.jitter > self.delay {
            return Err(format!(
                "jitter ({} ms) cannot exceed the one-way delay ({} ms)",
                self.jitter.as_millis(),
                self.delay.as_millis()
            ));
        }
        Ok(())
    }

    /// The rate in force `since` after the link started.
    pub fn rate_at(&self, since: Duration) -> Option<u64> {
        let mut rate = self.rate_bps;
        for step in &self.schedule {
            if since >= step.at {
                rate = Some(step.rate_bps);
            }
        }
        rate
    }
}

/// `--link` values: a profile name, or `key=value` pairs (`rate=1M,loss=2,burst=3,delay=40,
/// jitter=5,queue=200`), optionally after a profile (`adsl,loss=5`). Rates take `k`/`M`
/// suffixes (bits per second); loss is in percent; times in milliseconds.
impl FromStr for LinkParams {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut params = LinkParams::default();
        let mut overridden = false;
        for (i, part) in s.split(',').map(str::trim).enumerate() {
            if part.is_empty() {
                continue;
            }
            let Some((key, value)) = part.split_once('=') else {
                if i == 0 {
                    params = LinkParams::profile(part).ok_or_else(|| {
                        format!(
                            "unknown link profile {part:?} (known: {}, or key=value pairs)",
                            PROFILES.join(", ")
                        )
                    })?;
                    continue;
                }
                return Err(format!("expected key=value, got {part:?}"));
            };
            let num = |v: &str| -> Result<f64, String> {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| format!("{key}: not a number: {v:?}"))
            };
            let non_negative = |x: f64| -> Result<f64, String> {
                if x < 0.0 {
                    Err(format!("{key} cannot be negative (got {x})"))
                } else {
                    Ok(x)
                }
            };
            let millis = |v: &str| -> Result<Duration, String> {
                Ok(Duration::from_secs_f64(non_negative(num(v)?)? / 1000.0))
            };
            match key {
                "rate" => {
                    let (digits, mult) = match value.chars().last() {
                        Some('k' | 'K') => (&value[..value.len() - 1], 1e3),
                        Some('M' | 'm') => (&value[..value.len() - 1], 1e6),
                        Some('G' | 'g') => (&value[..value.len() - 1], 1e9),
                        _ => (value, 1.0),
                    };
                    let bps = non_negative(num(digits)?)? * mult;
                    if bps < 1.0 {
                        return Err("rate must be positive".into());
                    }
                    params.rate_bps = Some(bps as u64);
                }
                "loss" => {
                    let pct = non_negative(num(value)?)?;
                    if pct > 100.0 {
                        return Err(format!("loss cannot exceed 100 % (got {pct})"));
                    }
                    params.loss = pct / 100.0;
                }
                "burst" => params.burst = non_negative(num(value)?)?,
                "delay" => params.delay = millis(value)?,
                "jitter" => params.jitter = millis(value)?,
                "queue" => params.queue = millis(value)?,
                "udp" => {
                    params.udp_blocked = match value {
                        "blocked" | "off" | "no" => true,
                        "on" | "yes" => false,
                        _ => return Err(format!("udp: expected on or blocked, got {value:?}")),
                    }
                }
                _ => {
                    return Err(format!(
                        "unknown link key {key:?} (rate, loss, burst, delay, jitter, queue, udp)"
                    ));
                }
            }
            overridden = true;
        }
        params.name = match (params.name.as_str(), overridden) {
            ("custom", _) => "custom".into(),
            (name, true) => format!("{name}*"),
            (name, false) => name.to_owned(),
        };
        params.validate()?;
        Ok(params)
    }
}

impl fmt::Display for LinkParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)
    }
}

/// Why a packet did not cross.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    UdpBlocked,
    Loss,
    QueueFull,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    DeliverAt(Instant),
    Drop(DropReason),
}

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LinkCounters {
    pub packets: u64,
    pub bytes: u64,
    pub delivered: u64,
    pub lost: u64,
    pub queue_drops: u64,
    pub blocked: u64,
    /// RTP packets whose SSRC and sequence number this direction already carried: NACK
    /// retransmissions on the original SSRC (there is no RTX yet), counted as offered.
    pub rtp_repeats: u64,
    /// RTP packets with the padding bit (the server's padding-only probes; media is never
    /// padded here), and of those, how many the line dropped (lost or queue full): a lost probe
    /// packet leaves a sequence gap no retransmission fills, though no picture misses it.
    pub rtp_padding: u64,
    pub rtp_padding_dropped: u64,
}

/// One direction of one emulated link.
#[derive(Debug)]
pub struct LinkEmulator {
    params: LinkParams,
    rng: StdRng,
    start: Instant,
    /// When the serialiser is free again.
    busy_until: Instant,
    /// Latest delivery time handed out (FIFO order).
    last_delivery: Instant,
    /// Gilbert–Elliott state.
    in_burst: bool,
    pub counters: LinkCounters,
}

impl LinkEmulator {
    pub fn new(params: LinkParams, seed: u64, start: Instant) -> LinkEmulator {
        LinkEmulator {
            params,
            rng: StdRng::seed_from_u64(seed),
            start,
            busy_until: start,
            last_delivery: start,
            in_burst: false,
            counters: LinkCounters::default(),
        }
    }

    pub fn params(&self) -> &LinkParams {
        &self.params
    }

    /// Drops every datagram from now on (a line that went dead), or no longer.
    pub fn set_udp_blocked(&mut self, blocked: bool) {
        self.params.udp_blocked = blocked;
    }

    /// A packet of `size` bytes (IP payload) enters the link at `now`.
    pub fn on_packet(&mut self, now: Instant, size: usize) -> Verdict {
        self.counters.packets += 1;
        self.counters.bytes += size as u64;
        if self.params.udp_blocked {
            self.counters.blocked += 1;
            return Verdict::Drop(DropReason::UdpBlocked);
        }
        if self.lose() {
            self.counters.lost += 1;
            return Verdict::Drop(DropReason::Loss);
        }
        let mut leaves = now;
        if let Some(rate) = self
            .params
            .rate_at(now.saturating_duration_since(self.start))
        {
            let begin = self.busy_until.max(now);
            if begin - now > self.params.queue {
                self.counters.queue_drops += 1;
                return Verdict::Drop(DropReason::QueueFull);
            }
            // IP + UDP headers count against the line rate too.
            let bits = (size as u64 + 28) * 8;
            leaves = begin + Duration::from_nanos(bits * 1_000_000_000 / rate);
            self.busy_until = leaves;
        }
        let mut at = leaves + self.params.delay;
        if !self.params.jitter.is_zero() {
            let j = self.params.jitter.as_secs_f64();
            let offset = self.rng.random_range(-j..=j);
            at = if offset >= 0.0 {
                at + Duration::from_secs_f64(offset)
            } else {
                at - Duration::from_secs_f64(-offset)
            };
        }
        let at = at.max(self.last_delivery).max(now);
        self.last_delivery = at;
        self.counters.delivered += 1;
        Verdict::DeliverAt(at)
    }

    fn lose(&mut self) -> bool {
        let p = self.params.loss;
        if p <= 0.0 {
            return false;
        }
        if self.params.burst <= 1.0 {
            return self.rng.random_bool(p.min(1.0));
        }
        if p >= 1.0 {
            return true;
        }
        // Two states; every packet in the bad state is lost. Mean burst = 1 / p(bad→good);
        // stationary loss = p(good→bad) / (p(good→bad) + p(bad→good)).
        let to_good = 1.0 / self.params.burst;
        let to_bad = (p * to_good / (1.0 - p)).min(1.0);
        self.in_burst = if self.in_burst {
            !self.rng.random_bool(to_good)
        } else {
            self.rng.random_bool(to_bad)
        };
        self.in_burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(params: LinkParams, seed: u64, n: usize, size: usize, gap: Duration) -> Vec<Verdict> {
        let t0 = Instant::now();
        let mut link = LinkEmulator::new(params, seed, t0);
        (0..n)
            .map(|i| link.on_packet(t0 + gap * i as u32, size))
            .collect()
    }

    fn losses(v: &[Verdict]) -> usize {
        v.iter()
            .filter(|v| matches!(v, Verdict::Drop(DropReason::Loss)))
            .count()
    }

    #[test]
    fn random_loss_matches_the_mean() {
        let p = LinkParams {
            loss: 0.05,
            ..Default::default()
        };
        let v = run(p, 7, 100_000, 1_000, Duration::from_millis(1));
        let rate = losses(&v) as f64 / 100_000.0;
        assert!((rate - 0.05).abs() < 0.005, "loss {rate}");
    }

    #[test]
    fn burst_loss_matches_mean_and_burst_length() {
        let p = LinkParams {
            loss: 0.02,
            burst: 4.0,
            ..Default::default()
        };
        let v = run(p, 11, 200_000, 1_000, Duration::from_millis(1));
        let lost: Vec<bool> = v
            .iter()
            .map(|v| matches!(v, Verdict::Drop(DropReason::Loss)))
            .collect();
        let rate = lost.iter().filter(|l| **l).count() as f64 / lost.len() as f64;
        assert!((rate - 0.02).abs() < 0.004, "loss {rate}");
        let bursts = lost.windows(2).filter(|w| !w[0] && w[1]).count();
        let mean_burst = lost.iter().filter(|l| **l).count() as f64 / bursts as f64;
        assert!((mean_burst - 4.0).abs() < 0.5, "mean burst {mean_burst}");
    }

    #[test]
    fn rate_limit_delivers_the_line_rate_and_drops_the_excess() {
        // 1 Mbit/s link, 2 Mbit/s offered for 10 s (1,222-byte datagrams on the wire).
        let p = LinkParams {
            rate_bps: Some(1_000_000),
            queue: Duration::from_millis(100),
            ..Default::default()
        };
        let t0 = Instant::now();
        let mut link = LinkEmulator::new(p, 1, t0);
        let gap = Duration::from_nanos(1_222 * 8 * 1_000_000_000 / 2_000_000);
        let mut last = t0;
        let mut delivered_bits = 0u64;
        let mut i = 0u32;
        while gap * i < Duration::from_secs(10) {
            if let Verdict::DeliverAt(at) = link.on_packet(t0 + gap * i, 1_194) {
                delivered_bits += 1_222 * 8;
                assert!(at >= last, "FIFO");
                // Waiting (≤ the queue) plus its own serialisation (≈ 9.8 ms).
                assert!(
                    at - (t0 + gap * i) <= Duration::from_millis(111),
                    "queue bound"
                );
                last = at;
            }
            i += 1;
        }
        let rate = delivered_bits as f64 / (last - t0).as_secs_f64();
        assert!((rate - 1_000_000.0).abs() < 20_000.0, "rate {rate}");
        let drops = link.counters.queue_drops as f64 / link.counters.packets as f64;
        assert!((drops - 0.5).abs() < 0.02, "drops {drops}");
    }

    #[test]
    fn delay_and_jitter_stay_in_bounds_with_the_right_mean() {
        let p = LinkParams {
            delay: Duration::from_millis(100),
            jitter: Duration::from_millis(15),
            ..Default::default()
        };
        // Packets far apart, so FIFO ordering never holds one back.
        let gap = Duration::from_millis(50);
        let start = Instant::now();
        let mut link = LinkEmulator::new(p, 3, start);
        let mut sum = 0.0;
        let (mut lo, mut hi) = (f64::MAX, 0.0f64);
        for i in 0..10_000u32 {
            let sent = start + gap * i;
            let Verdict::DeliverAt(at) = link.on_packet(sent, 200) else {
                panic!("no loss configured")
            };
            let d = (at - sent).as_secs_f64() * 1000.0;
            lo = lo.min(d);
            hi = hi.max(d);
            sum += d;
        }
        let mean = sum / 10_000.0;
        assert!((mean - 100.0).abs() < 0.5, "mean {mean}");
        assert!(lo >= 85.0 && hi <= 115.0, "range {lo}..{hi}");
        assert!(lo < 86.0 && hi > 114.0, "uses the whole range {lo}..{hi}");
    }

    #[test]
    fn same_seed_same_verdicts_different_seed_different() {
        let p = LinkParams::profile("bad").unwrap();
        let a = run(p.clone(), 42, 5_000, 800, Duration::from_millis(3));
        let b = run(p.clone(), 42, 5_000, 800, Duration::from_millis(3));
        let c = run(p, 43, 5_000, 800, Duration::from_millis(3));
        // Instants differ between runs (t0), so compare the drop pattern and offsets.
        let shape = |v: &[Verdict]| -> Vec<Option<DropReason>> {
            v.iter()
                .map(|v| match v {
                    Verdict::Drop(r) => Some(*r),
                    Verdict::DeliverAt(_) => None,
                })
                .collect()
        };
        assert_eq!(shape(&a), shape(&b));
        assert_ne!(shape(&a), shape(&c));
    }

    #[test]
    fn flap_schedule_changes_the_rate() {
        let p = LinkParams::profile("flap").unwrap();
        assert_eq!(p.rate_at(Duration::from_secs(5)), Some(2_000_000));
        assert_eq!(p.rate_at(Duration::from_secs(15)), Some(150_000));
        assert_eq!(p.rate_at(Duration::from_secs(31)), Some(2_000_000));
        // During the dip a 1 Mbit/s stream loses most of its packets to the queue.
        let t0 = Instant::now();
        let mut link = LinkEmulator::new(p, 5, t0);
        let gap = Duration::from_millis(8); // 1,000 bytes every 8 ms = 1 Mbit/s
        let mut dropped_in = [0u32; 3];
        for i in 0..5_000u32 {
            let at = gap * i;
            let phase = if at < Duration::from_secs(10) {
                0
            } else if at < Duration::from_secs(30) {
                1
            } else {
                2
            };
            if let Verdict::Drop(_) = link.on_packet(t0 + at, 1_000) {
                dropped_in[phase] += 1;
            }
        }
        assert_eq!(dropped_in[0], 0);
        assert!(dropped_in[1] > 1_500, "{dropped_in:?}");
        assert!(dropped_in[2] < 50, "{dropped_in:?}");
    }

    #[test]
    fn udp_blocked_drops_everything() {
        let v = run(
            LinkParams::profile("tcp-only").unwrap(),
            1,
            100,
            100,
            Duration::from_millis(1),
        );
        assert!(
            v.iter()
                .all(|v| *v == Verdict::Drop(DropReason::UdpBlocked))
        );
    }

    #[test]
    fn parses_profiles_and_values_and_rejects_the_impossible() {
        let adsl: LinkParams = "adsl".parse().unwrap();
        assert_eq!(adsl.rate_bps, Some(1_000_000));
        assert_eq!(adsl.loss, 0.02);
        assert_eq!(adsl.delay, Duration::from_millis(40));
        let c: LinkParams = "rate=512k,loss=3,burst=2,delay=60,jitter=10"
            .parse()
            .unwrap();
        assert_eq!(c.rate_bps, Some(512_000));
        assert!((c.loss - 0.03).abs() < 1e-12);
        assert_eq!(c.name, "custom");
        let over: LinkParams = "adsl,loss=5".parse().unwrap();
        assert_eq!(over.name, "adsl*");
        assert!((over.loss - 0.05).abs() < 1e-12);
        for bad in [
            "loss=101",
            "loss=-1",
            "rate=-5k",
            "rate=0",
            "delay=-3",
            "jitter=50,delay=10",
            "nonsense",
            "burst=0.5",
            "rate=abc",
        ] {
            let e = bad.parse::<LinkParams>().unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
    }
}
