//! The `limit` probe: what one core of this machine can do at best for an SFU's hot path —
//! AES-128-GCM (the SRTP AEAD profile) over 1,200-byte packets, and `sendmmsg` of them in
//! batches to many loopback destinations (as fan-out sends to many subscribers). Every
//! forwarding result can then be written as a fraction of this ceiling.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::Context;
use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::Serialize;

#[derive(clap::Args, Clone)]
pub struct LimitArgs {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Packets per sendmmsg call.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Distinct loopback destinations (subscribers).
    #[arg(long, default_value_t = 64)]
    pub destinations: usize,
    /// Payload bytes.
    #[arg(long, default_value_t = 1_200)]
    pub size: usize,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: &'static str,
    pub packets: u64,
    pub cpu_seconds: f64,
    pub ns_per_packet: f64,
    pub packets_per_cpu_second: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LimitReport {
    /// Packets the draining reader got / packets sent (below 1: the reader fell behind and the
    /// kernel dropped some at full buffers, which is cheaper than delivering them).
    pub received_ratio: f64,
    pub size: usize,
    pub batch: usize,
    pub destinations: usize,
    pub steps: Vec<Step>,
}

/// CPU time of the calling thread.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn measure(step: &'static str, seconds: f64, mut batch: impl FnMut() -> u64) -> Step {
    let wall = Instant::now();
    let cpu0 = thread_cpu();
    let mut packets = 0u64;
    while wall.elapsed() < Duration::from_secs_f64(seconds) {
        for _ in 0..16 {
            packets += batch();
        }
    }
    let cpu = thread_cpu() - cpu0;
    Step {
        step,
        packets,
        cpu_seconds: cpu,
        ns_per_packet: cpu * 1e9 / packets.max(1) as f64,
        packets_per_cpu_second: packets as f64 / cpu.max(1e-9),
    }
}

pub fn probe(a: &LimitArgs) -> anyhow::Result<LimitReport> {
    anyhow::ensure!(
        a.seconds > 0.0 && a.seconds.is_finite(),
        "--seconds must be positive"
    );
    anyhow::ensure!((1..=1024).contains(&a.batch), "--batch must be 1..=1024");
    anyhow::ensure!(
        (1..=4096).contains(&a.destinations),
        "--destinations must be 1..=4096"
    );
    anyhow::ensure!((16..=9_000).contains(&a.size), "--size must be 16..=9000");
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[7u8; 16]).expect("16-byte key"));
    let mut counter = 0u64;
    let mut bufs: Vec<Vec<u8>> = (0..a.batch)
        .map(|_| {
            let mut v = vec![0xABu8; a.size];
            v.reserve(16);
            v
        })
        .collect();
    let header = [0x80u8, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
    let mut encrypt = |bufs: &mut [Vec<u8>]| {
        for b in bufs.iter_mut() {
            b.truncate(a.size);
            counter += 1;
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&counter.to_be_bytes());
            let _ = key.seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&header),
                b,
            );
        }
    };

    let sender = UdpSocket::bind("127.0.0.1:0").context("bind sender")?;
    let sinks: Vec<UdpSocket> = (0..a.destinations)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .context("bind destinations")?;
    let addrs: Vec<libc::sockaddr_in> = sinks
        .iter()
        .map(|s| {
            let port = s.local_addr().map(|a| a.port()).unwrap_or(0);
            libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
                },
                sin_zero: [0; 8],
            }
        })
        .collect();
    // A reader drains the destinations on another thread, so every packet takes the full
    // loopback path (queued to a socket and read) rather than being dropped at a full buffer.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drained = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let readers: Vec<UdpSocket> = sinks
        .iter()
        .map(|s| s.try_clone())
        .collect::<Result<_, _>>()?;
    for r in &readers {
        r.set_nonblocking(true)?;
    }
    let drain = {
        let stop = stop.clone();
        let drained = drained.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2_048];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut got = 0u64;
                for r in &readers {
                    while r.recv(&mut buf).is_ok() {
                        got += 1;
                    }
                }
                drained.fetch_add(got, std::sync::atomic::Ordering::Relaxed);
                if got == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        })
    };
    let fd = sender.as_raw_fd();
    let mut next_dest = 0usize;
    let mut send = |bufs: &[Vec<u8>]| -> u64 {
        let mut iovs: Vec<libc::iovec> = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = iovs
            .iter_mut()
            .map(|iov| {
                let dest = &addrs[next_dest % addrs.len()];
                next_dest += 1;
                // SAFETY: mmsghdr is plain data; zero is a valid initial state.
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_name = dest as *const libc::sockaddr_in as *mut libc::c_void;
                m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
                m.msg_hdr.msg_iov = iov as *mut libc::iovec;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        // SAFETY: msgs points at valid headers whose buffers outlive the call.
        let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), msgs.len() as u32, 0) };
        n.max(0) as u64
    };
    let mut steps = Vec::new();
    steps.push(measure("aes-128-gcm encrypt", a.seconds, || {
        encrypt(&mut bufs);
        bufs.len() as u64
    }));
    steps.push(measure("sendmmsg", a.seconds, || send(&bufs)));
    let mut both_bufs = bufs.clone();
    steps.push(measure("encrypt + sendmmsg", a.seconds, || {
        encrypt(&mut both_bufs);
        send(&both_bufs)
    }));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = drain.join();
    drop(sinks);
    let sent: u64 = steps.iter().skip(1).map(|s| s.packets).sum();
    let read = drained.load(std::sync::atomic::Ordering::Relaxed);
    Ok(LimitReport {
        received_ratio: if sent > 0 {
            read as f64 / sent as f64
        } else {
            0.0
        },
        size: a.size,
        batch: a.batch,
        destinations: a.destinations,
        steps,
    })
}

pub fn run(a: LimitArgs) -> anyhow::Result<()> {
    let r = probe(&a)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "limit probe: {}-byte packets, sendmmsg batches of {}, {} loopback destinations, one core",
        r.size, r.batch, r.destinations
    );
    println!(
        "(a reader thread drained {:.0} % of the sent packets)",
        r.received_ratio * 100.0
    );
    println!("| step | ns per packet | packets per CPU second |");
    println!("|---|---|---|");
    for s in &r.steps {
        println!(
            "| {} | {:.0} | {:.0} |",
            s.step, s.ns_per_packet, s.packets_per_cpu_second
        );
    }
    Ok(())
}
