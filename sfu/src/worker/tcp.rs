//! ICE-TCP connections a worker owns (handed over by `ice_tcp.rs`): read from the worker's own
//! loop, framed per RFC 4571, fed to the connection their first binding request named, and
//! written back through a bounded queue per TCP connection.
//!
//! A TCP connection belongs to one ICE connection for its whole life. Its peer address is the
//! key for writes: the engine says where a packet goes (the selected pair's remote address) and
//! which protocol, and a TCP peer address is only ever one of our accepted streams.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use rtc::shared::{TransportContext, TransportProtocol};

use super::WorkerCore;
use crate::framing::{FrameReader, FrameWriter};
use crate::ice_tcp::Handoff;
use crate::packet::stun_local_ufrag;

/// Tokens at and above this are TCP connections (slab key + base).
pub(crate) const TCP_BASE: usize = 2;
/// A browser opens one TCP connection per candidate pair it tries; a few is plenty.
const MAX_LINKS_PER_CONN: usize = 4;
const MAX_LINKS: usize = 8192;
/// Bytes queued per TCP connection beyond what the kernel holds: a peer that stops reading
/// costs at most this. Past it packets are dropped whole.
const OUT_CAP: usize = 256 << 10;
/// How long a packet may wait in our queue: older ones are dropped from its head, so a line
/// slower than what we send shows loss (NACK and the estimate handle it), not growing delay.
/// TCP would otherwise deliver a backlog of seconds, audio included (measured before this
/// bound at 300 kbit/s: 3 s of delay after one step up too many, 10-15 s to drain).
const MAX_QUEUE_DELAY: std::time::Duration = std::time::Duration::from_millis(300);
/// Bytes given to the kernel that it has not sent yet, at most: the backlog stays in our queue,
/// where it can be dropped, instead of in the socket buffer. The socket reports writable again
/// below this (TCP_NOTSENT_LOWAT), so it is topped up as the line drains.
pub(crate) const KERNEL_UNSENT: usize = 8 << 10;
/// Packets up to this size go ahead of queued video on an ICE-TCP connection: Opus with
/// SRTP (RED included) is 100-400 bytes, RTCP and STUN less; a video packet is near the MTU
/// (the odd small one, a frame's tail, is promoted harmlessly).
const URGENT_MAX: usize = 500;
/// Bytes read from one TCP connection per pass before the others get their turn.
const READ_PER_PASS: usize = 64 << 10;

/// One ICE-TCP connection as the core sees it: its framing and queue. Its stream is the
/// shell's ([`super::Output`]), under the same key.
pub(crate) struct TcpLink {
    peer: SocketAddr,
    conn: usize,
    reader: FrameReader,
    writer: FrameWriter,
    /// Listed in `WorkerCore::flush_tcp`.
    flush_listed: bool,
}

/// The worker's ICE-TCP state.
#[derive(Default)]
pub(crate) struct TcpLinks {
    links: slab::Slab<TcpLink>,
    by_peer: std::collections::HashMap<SocketAddr, usize>,
    /// Links with bytes queued this pass.
    flush: Vec<usize>,
    /// Links read up to `READ_PER_PASS` that may hold more (edge-triggered readiness will not
    /// say so again).
    pub again: Vec<usize>,
    /// Readiness of links from the last poll: (link, readable, writable).
    pub ready: Vec<(usize, bool, bool)>,
    /// The address announced in our TCP candidate (the local address of every TCP packet).
    pub local: Option<SocketAddr>,
}

impl TcpLinks {
    pub fn new(local: Option<SocketAddr>) -> Self {
        Self {
            local,
            ..Default::default()
        }
    }
}

impl WorkerCore {
    pub(super) fn adopt_tcp(&mut self, now: Instant, h: Handoff) {
        let Handoff {
            stream,
            peer,
            buffered,
        } = h;
        let reader = FrameReader::from_bytes(buffered);
        // The acceptor checked that the first frame is a binding request naming this worker;
        // the connection may have left since.
        let conn = match reader.peek_frame() {
            Ok(Some(first)) => stun_local_ufrag(first).and_then(|u| self.demux.key_of_ufrag(u)),
            _ => None,
        };
        let Some(conn) = conn else {
            tracing::debug!(%peer, "ice-tcp: no such connection");
            return;
        };
        let links_of_conn = self
            .tcp
            .links
            .iter()
            .filter(|(_, l)| l.conn == conn)
            .count();
        if links_of_conn >= MAX_LINKS_PER_CONN
            || self.tcp.links.len() >= MAX_LINKS
            || self.tcp.by_peer.contains_key(&peer)
        {
            tracing::debug!(%peer, "ice-tcp: too many connections");
            return;
        }
        let entry = self.tcp.links.vacant_entry();
        let key = entry.key();
        if let Err(e) = self.output.tcp_adopt(key, stream) {
            tracing::debug!(%peer, "ice-tcp register: {e}");
            return;
        }
        entry.insert(TcpLink {
            peer,
            conn,
            reader,
            writer: FrameWriter::new(OUT_CAP),
            flush_listed: false,
        });
        self.tcp.by_peer.insert(peer, key);
        self.metrics.tcp_links.inc();
        tracing::debug!(participant = %self.conns[conn].participant, %peer, "ice-tcp connection");
        self.feed_tcp_frames(now, key);
    }

    /// Readiness of link `link`, as the shell's poll reports it (edge-triggered); taken by the
    /// next [`Self::service_tcp`]. For the virtual-time harness, whose streams are not mio's.
    #[cfg(test)]
    pub(crate) fn tcp_ready(&mut self, link: usize, readable: bool, writable: bool) {
        self.tcp.ready.push((link, readable, writable));
    }

    /// Whether a link was left with bytes to read (the shell then polls without waiting).
    #[cfg(test)]
    pub(crate) fn tcp_again(&self) -> bool {
        !self.tcp.again.is_empty()
    }

    /// Handles readiness of the links polled this pass, and links with unread bytes.
    pub(crate) fn service_tcp(&mut self, now: Instant, buf: &mut [u8]) {
        self.now = now;
        let mut again = std::mem::take(&mut self.tcp.again);
        for link in again.drain(..) {
            self.read_tcp(now, link, buf);
        }
        self.tcp.again = again;
        let mut ready = std::mem::take(&mut self.tcp.ready);
        for (link, readable, writable) in ready.drain(..) {
            if readable {
                self.read_tcp(now, link, buf);
            }
            if writable {
                self.write_tcp(link);
            }
        }
        self.tcp.ready = ready;
    }

    fn read_tcp(&mut self, now: Instant, link: usize, buf: &mut [u8]) {
        let mut total = 0;
        let mut closed = false;
        let mut more = false;
        {
            let Some(l) = self.tcp.links.get_mut(link) else {
                return;
            };
            loop {
                match self.output.tcp_read(link, buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => {
                        l.reader.extend(&buf[..n]);
                        total += n;
                        if total >= READ_PER_PASS {
                            more = true;
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
        }
        if more && !self.tcp.again.contains(&link) {
            self.tcp.again.push(link);
        }
        self.metrics.tcp_bytes_in += total as u64;
        self.feed_tcp_frames(now, link);
        if closed {
            self.close_tcp(link);
        }
    }

    fn feed_tcp_frames(&mut self, now: Instant, link: usize) {
        let Some(l) = self.tcp.links.get(link) else {
            return;
        };
        let (conn, peer) = (l.conn, l.peer);
        let Some(local) = self.tcp.local else {
            return;
        };
        loop {
            let frame = match self.tcp.links.get_mut(link).map(|l| l.reader.next_frame()) {
                Some(Ok(Some(f))) => f,
                Some(Ok(None)) | None => return,
                Some(Err(e)) => {
                    tracing::debug!(%peer, "ice-tcp: {e}; closing");
                    self.metrics.bad_datagrams += 1;
                    self.close_tcp(link);
                    return;
                }
            };
            let transport = TransportContext {
                local_addr: local,
                peer_addr: peer,
                ecn: None,
                transport_protocol: TransportProtocol::TCP,
            };
            self.feed(now, conn, transport, frame);
            if !self.conns.contains(conn) {
                self.close_tcp(link);
                return;
            }
        }
    }

    /// Queues a packet for the TCP connection from `peer` (the connection `key` owns).
    pub(super) fn send_tcp(&mut self, key: usize, peer: SocketAddr, packet: BytesMut) {
        let Some(&link) = self.tcp.by_peer.get(&peer) else {
            self.metrics.send_dropped += 1;
            return;
        };
        let l = &mut self.tcp.links[link];
        if l.conn != key {
            self.metrics.send_dropped += 1;
            return;
        }
        // Audio, RTCP and ICE checks are small; video packets are near the MTU. The small ones
        // never wait behind queued video (issue 11: audio first in every queue we keep).
        let queued = if packet.len() <= URGENT_MAX {
            l.writer.push_urgent(self.now, &packet)
        } else {
            l.writer.push(self.now, &packet)
        };
        if !queued {
            self.metrics.tcp_dropped += 1;
            return;
        }
        if !l.flush_listed {
            l.flush_listed = true;
            self.tcp.flush.push(link);
        }
    }

    /// Writes what this pass queued, as far as each socket takes it; the rest waits for the
    /// socket's writable readiness.
    pub(super) fn flush_tcp(&mut self) {
        let mut flush = std::mem::take(&mut self.tcp.flush);
        for link in flush.drain(..) {
            if let Some(l) = self.tcp.links.get_mut(link) {
                l.flush_listed = false;
            }
            self.write_tcp(link);
        }
        self.tcp.flush = flush;
    }

    fn write_tcp(&mut self, link: usize) {
        let Some(l) = self.tcp.links.get_mut(link) else {
            return;
        };
        if let Some(before) = self.now.checked_sub(MAX_QUEUE_DELAY) {
            self.metrics.tcp_dropped += l.writer.drop_queued_before(before) as u64;
        }
        let mut failed = false;
        while !l.writer.is_empty() {
            let room = KERNEL_UNSENT.saturating_sub(self.output.tcp_unsent(link));
            if room == 0 {
                break;
            }
            let pending = l.writer.pending();
            match self
                .output
                .tcp_write(link, &pending[..pending.len().min(room)])
            {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => {
                    l.writer.consume(n);
                    self.metrics.tcp_bytes_out += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            self.close_tcp(link);
        }
    }

    pub(super) fn close_tcp(&mut self, link: usize) {
        let Some(l) = self.tcp.links.try_remove(link) else {
            return;
        };
        self.output.tcp_close(link);
        if self.tcp.by_peer.get(&l.peer) == Some(&link) {
            self.tcp.by_peer.remove(&l.peer);
        }
        self.tcp.again.retain(|&k| k != link);
        self.tcp.flush.retain(|&k| k != link);
        self.metrics.tcp_links.dec();
    }

    /// Closes the TCP connections of a connection that is going away (after writing what is
    /// queued, e.g. its DTLS close_notify, as far as the socket takes it).
    pub(super) fn close_tcp_of_conn(&mut self, conn: usize) {
        let links: Vec<usize> = self
            .tcp
            .links
            .iter()
            .filter(|(_, l)| l.conn == conn)
            .map(|(k, _)| k)
            .collect();
        for link in links {
            self.write_tcp(link);
            self.close_tcp(link);
        }
    }
}
