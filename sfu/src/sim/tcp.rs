//! Virtual TCP for ICE-TCP (RFC 6544) in virtual time: reliable, in-order byte streams between
//! a client's address and the server's passive TCP candidate, no sockets.
//!
//! Each direction of a stream is a pipe: bytes written are cut into MSS-sized segments that
//! leave at the line's rate, one after the other, and arrive a one-way delay later; the reader
//! takes whatever has arrived. Like the datagram network ([`super::net`]), every segment's
//! arrival is known when it is written, so the next event is exact. What TCP does to a lossy
//! line (retransmission, congestion control, receive windows) is left out: a virtual stream
//! never loses or reorders a byte, and the sender's only limit is its send buffer. Opening a
//! stream costs the handshake's round trip before the first byte leaves.
//!
//! The server side is read and written by the production core through the [`super::server`]
//! outbox (the same `Output` calls the shell makes on sockets); the client side by
//! [`PeerTcp`], which gives the `rtc` client its ICE-TCP traffic in RFC 4571 frames.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::net::LinkConfig;
use crate::framing::FrameReader;

/// A TCP segment's payload at most (an Ethernet MTU less IP and TCP headers with timestamps).
const MSS: usize = 1448;
/// Where the clients' ephemeral ports start.
const FIRST_PORT: u16 = 40_000;

/// One end of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

struct Segment {
    departs: Instant,
    arrives: Instant,
    bytes: Bytes,
}

/// One direction of a stream: segments written, in order, not read yet.
struct Pipe {
    rate_bps: Option<u64>,
    delay: Duration,
    /// When the line finishes sending the last segment written.
    busy_until: Instant,
    segments: VecDeque<Segment>,
    /// Bytes of the front segment already read.
    read_offset: usize,
    delivered: u64,
}

impl Pipe {
    fn new(config: &LinkConfig, first_byte_at: Instant) -> Self {
        Self {
            rate_bps: config.rate_bps,
            delay: config.delay,
            busy_until: first_byte_at,
            segments: VecDeque::new(),
            read_offset: 0,
            delivered: 0,
        }
    }

    fn write(&mut self, now: Instant, bytes: &[u8]) {
        for chunk in bytes.chunks(MSS) {
            let start = self.busy_until.max(now);
            let service = self.rate_bps.map_or(Duration::ZERO, |rate| {
                Duration::from_nanos(chunk.len() as u64 * 8 * 1_000_000_000 / rate.max(1))
            });
            self.busy_until = start + service;
            self.segments.push_back(Segment {
                departs: self.busy_until,
                arrives: self.busy_until + self.delay,
                bytes: Bytes::copy_from_slice(chunk),
            });
        }
    }

    /// Bytes written that the line has not sent by `at` (what SIOCOUTQNSD reports).
    fn unsent(&self, at: Instant) -> usize {
        self.segments
            .iter()
            .rev()
            .take_while(|s| s.departs > at)
            .map(|s| s.bytes.len())
            .sum()
    }

    /// Bytes written and not read yet: the sender's buffer holds them until they are acked.
    fn held(&self) -> usize {
        self.segments.iter().map(|s| s.bytes.len()).sum::<usize>() - self.read_offset
    }

    /// The first instant from which fewer than `below` bytes are unsent.
    fn unsent_below_at(&self, below: usize) -> Option<Instant> {
        // Unsent from a segment's departure on: the segments after it. The latest segment
        // whose suffix (itself included) reaches `below` is the one whose leaving gets under.
        let mut suffix = 0;
        for s in self.segments.iter().rev() {
            suffix += s.bytes.len();
            if suffix >= below {
                return Some(s.departs);
            }
        }
        None
    }

    fn read(&mut self, now: Instant, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            let Some(s) = self.segments.front().filter(|s| s.arrives <= now) else {
                break;
            };
            let rest = &s.bytes[self.read_offset..];
            let take = rest.len().min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&rest[..take]);
            n += take;
            self.read_offset += take;
            if self.read_offset == s.bytes.len() {
                self.segments.pop_front();
                self.read_offset = 0;
            }
        }
        self.delivered += n as u64;
        n
    }

    fn next_arrival(&self) -> Option<Instant> {
        self.segments.front().map(|s| s.arrives)
    }
}

struct Stream {
    client: SocketAddr,
    server: SocketAddr,
    up: Pipe,
    down: Pipe,
    /// Handed to the server's worker (its acceptor has seen the first frame).
    adopted: bool,
    closed: bool,
}

impl Stream {
    fn pipe_to(&mut self, reader: Side) -> &mut Pipe {
        match reader {
            Side::Server => &mut self.up,
            Side::Client => &mut self.down,
        }
    }
}

#[derive(Default)]
struct Inner {
    streams: Vec<Stream>,
    /// A client's line by its IP: (up, down); unset, a line is ideal.
    lines: HashMap<IpAddr, (LinkConfig, LinkConfig)>,
    next_port: u16,
}

/// The virtual TCP streams, shared by the server's outbox and the clients (handles clone).
#[derive(Clone, Default)]
pub struct TcpNet(Arc<Mutex<Inner>>);

impl TcpNet {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The line a client's streams take from now on (rate and delay; loss is not modelled).
    pub fn set_line(&self, client: IpAddr, up: LinkConfig, down: LinkConfig) {
        self.lock().lines.insert(client, (up, down));
    }

    /// Opens a stream from `client`'s IP (a fresh port) to `server`; the first byte can leave
    /// a round trip later (SYN, SYN-ACK). Returns the stream's number and client address.
    pub fn connect(&self, now: Instant, client: IpAddr, server: SocketAddr) -> (usize, SocketAddr) {
        let mut inner = self.lock();
        let (up, down) = inner.lines.get(&client).cloned().unwrap_or_default();
        let port = FIRST_PORT + inner.next_port;
        inner.next_port += 1;
        let addr = SocketAddr::new(client, port);
        let handshake = now + up.delay + down.delay;
        inner.streams.push(Stream {
            client: addr,
            server,
            up: Pipe::new(&up, handshake),
            down: Pipe::new(&down, now),
            adopted: false,
            closed: false,
        });
        (inner.streams.len() - 1, addr)
    }

    /// Writes from `from`'s end of stream `id` at `now`; how much its send buffer took.
    pub fn write(&self, id: usize, from: Side, now: Instant, bytes: &[u8], cap: usize) -> usize {
        let mut inner = self.lock();
        let s = &mut inner.streams[id];
        let to = match from {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        };
        if s.closed {
            return 0;
        }
        let pipe = s.pipe_to(to);
        let n = bytes.len().min(cap.saturating_sub(pipe.held()));
        pipe.write(now, &bytes[..n]);
        n
    }

    /// Reads what has reached `reader`'s end of stream `id` by `now`.
    pub fn read(&self, id: usize, reader: Side, now: Instant, buf: &mut [u8]) -> usize {
        self.lock().streams[id].pipe_to(reader).read(now, buf)
    }

    /// When the next bytes reach `reader`'s end of stream `id`.
    pub fn next_arrival(&self, id: usize, reader: Side) -> Option<Instant> {
        self.lock().streams[id].pipe_to(reader).next_arrival()
    }

    /// Bytes the server wrote on stream `id` that its line has not sent by `at`.
    pub fn server_unsent(&self, id: usize, at: Instant) -> usize {
        self.lock().streams[id].down.unsent(at)
    }

    /// When fewer than `below` of the server's bytes on stream `id` will be unsent.
    pub fn server_unsent_below_at(&self, id: usize, below: usize) -> Option<Instant> {
        self.lock().streams[id].down.unsent_below_at(below)
    }

    pub fn close(&self, id: usize) {
        self.lock().streams[id].closed = true;
    }

    /// Streams to `server` its acceptor has not handed over yet: (number, client address).
    pub fn pending(&self, server: SocketAddr) -> Vec<(usize, SocketAddr)> {
        let inner = self.lock();
        (0..inner.streams.len())
            .filter(|&i| {
                let s = &inner.streams[i];
                s.server == server && !s.adopted && !s.closed
            })
            .map(|i| (i, inner.streams[i].client))
            .collect()
    }

    pub fn set_adopted(&self, id: usize) {
        self.lock().streams[id].adopted = true;
    }

    /// Bytes delivered to the client on its streams, and how many streams it opened.
    pub fn delivered_to(&self, client: IpAddr) -> (u64, usize) {
        let inner = self.lock();
        let mine = inner.streams.iter().filter(|s| s.client.ip() == client);
        mine.fold((0, 0), |(b, n), s| (b + s.down.delivered, n + 1))
    }
}

/// A client's ICE-TCP streams (active candidates, RFC 6544): one per server address its
/// agent sends to, opened at the first packet; packets framed per RFC 4571 both ways.
pub struct PeerTcp {
    net: TcpNet,
    ip: IpAddr,
    /// (server address, stream, client address, what has arrived of the next frame).
    streams: Vec<(SocketAddr, usize, SocketAddr, FrameReader)>,
}

impl PeerTcp {
    pub fn new(net: TcpNet, ip: IpAddr) -> Self {
        Self {
            net,
            ip,
            streams: Vec::new(),
        }
    }

    /// Sends one packet to `to`, framed; a stream is opened for a new destination.
    pub fn send(&mut self, now: Instant, to: SocketAddr, packet: &[u8]) {
        let id = match self.streams.iter().find(|s| s.0 == to) {
            Some(s) => s.1,
            None => {
                let (id, local) = self.net.connect(now, self.ip, to);
                self.streams.push((to, id, local, FrameReader::default()));
                id
            }
        };
        let mut framed = Vec::with_capacity(2 + packet.len());
        framed.extend_from_slice(&(packet.len() as u16).to_be_bytes());
        framed.extend_from_slice(packet);
        // A browser's send buffer is large next to what ICE checks and feedback need.
        self.net.write(id, Side::Client, now, &framed, usize::MAX);
    }

    pub fn next_arrival(&self) -> Option<Instant> {
        let arrivals = self.streams.iter();
        arrivals
            .filter_map(|s| self.net.next_arrival(s.1, Side::Client))
            .min()
    }

    /// The packets that have arrived by `now`: (our address, the server's, packet).
    pub fn receive(&mut self, now: Instant) -> Vec<(SocketAddr, SocketAddr, BytesMut)> {
        let mut out = Vec::new();
        let mut buf = [0u8; 16 << 10];
        for (server, id, local, reader) in &mut self.streams {
            loop {
                let n = self.net.read(*id, Side::Client, now, &mut buf);
                if n == 0 {
                    break;
                }
                reader.extend(&buf[..n]);
            }
            // The server writes whole frames; a bad length would be its bug, and shows as
            // media missing from the test.
            while let Ok(Some(frame)) = reader.next_frame() {
                out.push((*local, *server, frame));
            }
        }
        out
    }
}
