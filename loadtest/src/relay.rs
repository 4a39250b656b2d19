//! A userspace UDP relay per simulated point, where its link is emulated.
//!
//! The point's peer connections believe the server lives at the relay's client-facing address
//! (the server's candidates are rewritten in the SDP); the relay forwards each datagram through
//! the point's [`LinkEmulator`] for that direction and sends it on from its own server-facing
//! socket. The server is ICE-lite and answers whatever address talks to it, so it sees the
//! relay as the point. Both of a point's connections share one link (one emulator per
//! direction), as they share one access line in a commune hall.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::link::{LinkCounters, LinkEmulator, LinkParams, Verdict};

/// One point's access line: an emulator for each direction.
#[derive(Debug)]
pub struct PointLink {
    /// Point → server.
    pub up: Mutex<LinkEmulator>,
    /// Server → point.
    pub down: Mutex<LinkEmulator>,
    /// When both emulators started: their rate schedules count from here.
    pub started: Instant,
}

impl PointLink {
    pub fn new(params: LinkParams, seed: u64) -> Arc<PointLink> {
        let now = Instant::now();
        Arc::new(PointLink {
            up: Mutex::new(LinkEmulator::new(params.clone(), seed, now)),
            down: Mutex::new(LinkEmulator::new(
                params,
                seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 1,
                now,
            )),
            started: now,
        })
    }

    /// Cuts the line (every datagram dropped, both ways) or restores it.
    pub fn set_cut(&self, cut: bool) {
        for m in [&self.up, &self.down] {
            m.lock()
                .unwrap_or_else(|e| e.into_inner())
                .set_udp_blocked(cut);
        }
    }

    pub fn counters(&self) -> (LinkCounters, LinkCounters) {
        let get = |m: &Mutex<LinkEmulator>| m.lock().unwrap_or_else(|e| e.into_inner()).counters;
        (get(&self.up), get(&self.down))
    }
}

fn verdict(link: &Mutex<LinkEmulator>, now: Instant, len: usize) -> Verdict {
    link.lock()
        .unwrap_or_else(|e| e.into_inner())
        .on_packet(now, len)
}

/// A running relay; dropping it stops the forwarding task.
pub struct Relay {
    /// Where the point's peer connection should send (replaces the server's candidate).
    pub client_facing: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    /// Starts relaying between a point (whatever address first talks to `client_facing`) and
    /// `server`.
    pub async fn start(
        link: Arc<PointLink>,
        server: SocketAddr,
        bind_ip: IpAddr,
    ) -> std::io::Result<Relay> {
        let client_side = UdpSocket::bind(SocketAddr::new(bind_ip, 0)).await?;
        let server_side = UdpSocket::bind(SocketAddr::new(bind_ip, 0)).await?;
        server_side.connect(server).await?;
        let client_facing = client_side.local_addr()?;
        let task = tokio::spawn(run(link, client_side, server_side));
        Ok(Relay {
            client_facing,
            task,
        })
    }
}

/// Which RTP sequence numbers one direction has carried, per SSRC: a bit per sequence number,
/// so a repeat (a retransmission) is found without allocating per packet.
#[derive(Default)]
pub struct RepeatTracker {
    seen: Vec<(u32, Box<[u64; 1_024]>)>,
}

impl RepeatTracker {
    /// Whether this datagram is an RTP packet already seen. SRTP leaves the RTP header in the
    /// clear; RTCP (payload types 64–95 after the marker bit), STUN and DTLS are not RTP.
    pub fn is_repeat(&mut self, d: &[u8]) -> bool {
        if !is_rtp(d) {
            return false;
        }
        let seq = u16::from_be_bytes([d[2], d[3]]);
        let ssrc = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
        let i = match self.seen.iter().position(|(s, _)| *s == ssrc) {
            Some(i) => i,
            None => {
                self.seen.push((ssrc, Box::new([0; 1_024])));
                self.seen.len() - 1
            }
        };
        let bits = &mut self.seen[i].1;
        let (w, b) = (usize::from(seq >> 6), 1u64 << (seq & 63));
        let repeat = bits[w] & b != 0;
        bits[w] |= b;
        // Forget the half of the sequence space opposite to this one, so numbers come back
        // fresh after a wrap.
        let far = seq ^ 0x8000;
        bits[usize::from(far >> 6)] &= !(1u64 << (far & 63));
        repeat
    }
}

/// Whether a datagram is an RTP packet (SRTP leaves the header in the clear; RTCP has payload
/// types 64–95 after the marker bit; STUN and DTLS start otherwise).
fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && d[0] >> 6 == 2 && !(64..96).contains(&(d[1] & 0x7F))
}

/// Whether a datagram is an RTP packet with the padding bit set (in the clear under SRTP).
pub fn is_padded_rtp(d: &[u8]) -> bool {
    is_rtp(d) && d[0] & 0x20 != 0
}

async fn run(link: Arc<PointLink>, client_side: UdpSocket, server_side: UdpSocket) {
    let mut client: Option<SocketAddr> = None;
    let mut repeats = RepeatTracker::default();
    // Deliveries are in time order per direction (the emulator is FIFO).
    let mut to_server: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut to_client: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut buf_c = vec![0u8; 2_048];
    let mut buf_s = vec![0u8; 2_048];
    loop {
        let next = match (to_server.front(), to_client.front()) {
            (Some(a), Some(b)) => Some(a.0.min(b.0)),
            (Some(a), None) => Some(a.0),
            (None, Some(b)) => Some(b.0),
            (None, None) => None,
        };
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = client_side.recv_from(&mut buf_c) => {
                let Ok((n, from)) = r else { continue };
                client = Some(from);
                if let Verdict::DeliverAt(at) = verdict(&link.up, Instant::now(), n) {
                    to_server.push_back((at, buf_c[..n].to_vec()));
                }
            }
            r = server_side.recv(&mut buf_s) => {
                let Ok(n) = r else { continue };
                let padded = is_padded_rtp(&buf_s[..n]);
                if repeats.is_repeat(&buf_s[..n]) || padded {
                    let mut down = link.down.lock().unwrap_or_else(|e| e.into_inner());
                    down.counters.rtp_repeats += u64::from(!padded);
                    down.counters.rtp_padding += u64::from(padded);
                }
                match verdict(&link.down, Instant::now(), n) {
                    Verdict::DeliverAt(at) => to_client.push_back((at, buf_s[..n].to_vec())),
                    Verdict::Drop(_) if padded => {
                        link.down
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .counters
                            .rtp_padding_dropped += 1;
                    }
                    Verdict::Drop(_) => {}
                }
            }
            _ = sleep => {}
        }
        let now = Instant::now();
        while to_server.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, d)) = to_server.pop_front() {
                let _ = server_side.try_send(&d);
            }
        }
        while to_client.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, d)) = to_client.pop_front()
                && let Some(c) = client
            {
                let _ = client_side.try_send_to(&d, c);
            }
        }
    }
}

/// Rewrites the UDP host candidates in an SDP (or one `candidate:` line) through `map`:
/// `(address, port)` of the server → the relay's address. Lines `map` returns `None` for stay.
pub fn rewrite_candidates(
    sdp: &str,
    mut map: impl FnMut(SocketAddr) -> Option<SocketAddr>,
) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        let rewritten = candidate_addr(body).and_then(|(addr, at)| {
            let to = map(addr)?;
            let mut f: Vec<String> = body.split(' ').map(str::to_owned).collect();
            f[at] = to.ip().to_string();
            f[at + 1] = to.port().to_string();
            Some(f.join(" "))
        });
        out.push_str(rewritten.as_deref().unwrap_or(body));
        out.push_str(ending);
    }
    out
}

/// The address of a UDP candidate line (`a=candidate:...` or `candidate:...`) and the index of
/// its address field.
pub fn candidate_addr(line: &str) -> Option<(SocketAddr, usize)> {
    let l = line.strip_prefix("a=").unwrap_or(line);
    if !l.starts_with("candidate:") {
        return None;
    }
    let f: Vec<&str> = l.split(' ').collect();
    // candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>
    if f.len() < 8 || !f[2].eq_ignore_ascii_case("udp") {
        return None;
    }
    let ip: IpAddr = f[4].parse().ok()?;
    let port: u16 = f[5].parse().ok()?;
    Some((SocketAddr::new(ip, port), 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_rtp_packets_seen_before() {
        let rtp = |ssrc: u32, seq: u16| {
            let mut p = vec![0x80, 96];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&[0; 4]);
            p.extend_from_slice(&ssrc.to_be_bytes());
            p
        };
        let mut t = RepeatTracker::default();
        assert!(!t.is_repeat(&rtp(1, 10)));
        assert!(!t.is_repeat(&rtp(2, 10)), "another SSRC");
        assert!(t.is_repeat(&rtp(1, 10)));
        // RTCP (a receiver report, PT 201) and short datagrams are not RTP.
        let mut rr = rtp(1, 10);
        rr[1] = 201;
        assert!(!t.is_repeat(&rr) && !t.is_repeat(&rr));
        assert!(!t.is_repeat(&[0x80, 96, 0, 1]));
        // The padding bit, on RTP only.
        let mut padded = rtp(1, 99);
        assert!(!is_padded_rtp(&padded));
        padded[0] |= 0x20;
        assert!(is_padded_rtp(&padded));
        rr[0] |= 0x20;
        assert!(!is_padded_rtp(&rr), "RTCP's padding bit is not a probe");
        // After half the sequence space the old numbers are forgotten: a wrap is not a repeat.
        for s in 11..=(10 + 0x8000) {
            t.is_repeat(&rtp(1, s as u16));
        }
        assert!(!t.is_repeat(&rtp(1, 10)));
    }

    #[test]
    fn rewrites_udp_candidates_only() {
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n\
                   a=candidate:2 1 tcp 1 127.0.0.1 40001 typ host tcptype passive\r\nm=x\r\n";
        let out = rewrite_candidates(sdp, |a| {
            assert_eq!(a, "127.0.0.1:40000".parse::<SocketAddr>().unwrap());
            Some("127.0.0.1:5555".parse().unwrap())
        });
        assert_eq!(
            out,
            "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5555 typ host\r\n\
             a=candidate:2 1 tcp 1 127.0.0.1 40001 typ host tcptype passive\r\nm=x\r\n"
        );
        let line = "candidate:1 1 UDP 1 10.0.0.1 9 typ host";
        assert_eq!(
            rewrite_candidates(line, |_| Some("127.0.0.1:7".parse().unwrap())),
            "candidate:1 1 UDP 1 127.0.0.1 7 typ host"
        );
    }

    #[tokio::test]
    async fn relays_both_ways_through_the_link() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let link = PointLink::new("delay=20".parse().unwrap(), 1);
        let relay = Relay::start(
            link.clone(),
            server.local_addr().unwrap(),
            [127, 0, 0, 1].into(),
        )
        .await
        .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let t0 = Instant::now();
        client.send_to(b"ping", relay.client_facing).await.unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert!(t0.elapsed().as_millis() >= 19);
        server.send_to(b"pong", from).await.unwrap();
        let (n, _) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"pong");
        assert!(t0.elapsed().as_millis() >= 39);
        let (up, down) = link.counters();
        assert_eq!((up.delivered, down.delivered), (1, 1));
    }
}
