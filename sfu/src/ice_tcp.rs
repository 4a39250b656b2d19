//! ICE-TCP (RFC 6544, passive side): one TCP listener for the whole media plane.
//!
//! Points behind firewalls that drop UDP reach us over TCP. A connection is accepted here, held
//! until its first frame (RFC 4571) arrives, and that frame must be a STUN binding request whose
//! USERNAME names one of our connections: the ufrag says which worker owns it (see
//! [`crate::demux::make_ufrag`]). The TCP stream is then handed to that worker, which reads and
//! writes it from its own loop like its UDP socket. Anything else (no frame within a few
//! seconds, a frame that is not a binding request, an unknown worker) is closed here, so a
//! stranger's connections cost the workers nothing.

use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::api::Command;
use crate::framing::FrameReader;
use crate::packet::stun_local_ufrag;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;

/// Connections waiting for their first frame. Beyond this, a new one takes the slot of the
/// oldest pending connection of the address holding the most (see `accept_all`), or is
/// refused: a flood of idle connections cannot grow our memory.
const MAX_PENDING: usize = 512;
/// Of those, at most this many from one address (an IPv6 address counts by its /64): eight
/// flooding hosts once held all 512 slots and a real hall's TCP media was dropped. A browser
/// opens one connection per candidate pair, a handful per hall, and sends its first binding
/// request at once, so points behind one NAT stay well under this.
pub(crate) const MAX_PENDING_PER_IP: usize = 8;
/// How long a new connection has to send its first binding request.
const FIRST_FRAME_WITHIN: Duration = Duration::from_secs(5);
/// The kernel send buffer of a handed-over stream (in flight and unsent); how much of it may be
/// unsent is bounded by the worker (`worker/tcp.rs`), so a slow line's backlog stays in the
/// worker's queue, bounded in time, rather than hiding in the kernel.
pub(crate) const SEND_BUFFER: usize = 64 << 10;

/// A stream handed to a worker: an accepted socket, or (tests) a stream of the virtual-time
/// harness's network, by its number there (`sim/tcp.rs`), so the sim drives the same core code.
pub(crate) enum Stream {
    Socket(TcpStream),
    #[cfg(test)]
    Virtual(usize),
}

impl Stream {
    /// The accepted socket; a virtual stream has none.
    pub fn into_socket(self) -> Option<TcpStream> {
        match self {
            Stream::Socket(s) => Some(s),
            #[cfg(test)]
            Stream::Virtual(_) => None,
        }
    }
}

/// A TCP stream for a worker, with the bytes read so far (its first frame at least).
pub(crate) struct Handoff {
    pub stream: Stream,
    pub peer: SocketAddr,
    pub buffered: bytes::BytesMut,
}

/// Where the acceptor delivers streams: each worker's command queue and waker.
pub(crate) struct WorkerPort {
    pub commands: SyncSender<Command>,
    pub waker: Arc<Waker>,
}

/// Stops the acceptor thread.
pub(crate) struct Stop {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl Stop {
    pub fn stop(&self) {
        self.flag.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }
}

struct Pending {
    stream: TcpStream,
    peer: SocketAddr,
    reader: FrameReader,
    deadline: Instant,
}

/// Starts the acceptor thread on `listener`.
pub(crate) fn start(
    listener: std::net::TcpListener,
    workers: Vec<WorkerPort>,
    metrics: crate::metrics::IceTcpMetrics,
) -> std::io::Result<(Stop, std::thread::JoinHandle<()>)> {
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let flag = Arc::new(AtomicBool::new(false));
    let stop = Stop {
        flag: flag.clone(),
        waker,
    };
    let acceptor = Acceptor {
        poll,
        listener,
        pending: Slab::new(),
        workers,
        stop: flag,
        metrics,
    };
    let thread = std::thread::Builder::new()
        .name("ice-tcp".to_owned())
        .spawn(move || acceptor.run())?;
    Ok((stop, thread))
}

struct Acceptor {
    poll: Poll,
    listener: TcpListener,
    pending: Slab<Pending>,
    workers: Vec<WorkerPort>,
    stop: Arc<AtomicBool>,
    metrics: crate::metrics::IceTcpMetrics,
}

/// Why a pending connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Closed,
    Timeout,
    NotIce,
    UnknownWorker,
    /// Its slot went to a connection from a less busy address.
    Displaced,
}

impl Acceptor {
    fn run(mut self) {
        let mut events = Events::with_capacity(128);
        let mut buf = vec![0u8; 4096];
        while !self.stop.load(Ordering::Acquire) {
            let timeout = self
                .pending
                .iter()
                .map(|(_, p)| p.deadline)
                .min()
                .map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != ErrorKind::Interrupted
            {
                tracing::error!("ice-tcp poll failed: {e}");
                return;
            }
            let ready: Vec<Token> = events.iter().map(|e| e.token()).collect();
            for token in ready {
                match token {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    Token(t) => self.read_first_frame(t - FIRST_CONN, &mut buf),
                }
            }
            let now = Instant::now();
            let late: Vec<usize> = self
                .pending
                .iter()
                .filter(|(_, p)| p.deadline <= now)
                .map(|(k, _)| k)
                .collect();
            for k in late {
                self.refuse(k, Refusal::Timeout);
            }
        }
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, peer)) => {
                    if !self.make_room(peer.ip()) {
                        continue;
                    }
                    let entry = self.pending.vacant_entry();
                    let token = Token(FIRST_CONN + entry.key());
                    if let Err(e) =
                        self.poll
                            .registry()
                            .register(&mut stream, token, Interest::READABLE)
                    {
                        tracing::debug!(%peer, "ice-tcp register: {e}");
                        continue;
                    }
                    entry.insert(Pending {
                        stream,
                        peer,
                        reader: FrameReader::default(),
                        deadline: Instant::now() + FIRST_FRAME_WITHIN,
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // Per-connection failures (ECONNABORTED) and fd exhaustion: try again on the
                // next readiness; the listener itself stays up.
                Err(e) => {
                    tracing::debug!("ice-tcp accept: {e}");
                    return;
                }
            }
        }
    }

    /// Whether a new connection from `ip` may wait for its first frame: its address is under
    /// its quota, and the pool has a slot, if need be the one of the oldest pending connection
    /// of the busiest address (when that address holds more than `ip`'s), so that hosts that
    /// fill their quotas cannot keep a new host out.
    fn make_room(&mut self, ip: IpAddr) -> bool {
        let key = address_key(ip);
        // Per address: (count, oldest pending connection).
        let mut by_address: HashMap<IpAddr, (usize, usize, Instant)> = HashMap::new();
        for (k, p) in &self.pending {
            let e = by_address
                .entry(address_key(p.peer.ip()))
                .or_insert((0, k, p.deadline));
            e.0 += 1;
            if p.deadline < e.2 {
                (e.1, e.2) = (k, p.deadline);
            }
        }
        let mine = by_address.get(&key).map_or(0, |e| e.0);
        if mine >= MAX_PENDING_PER_IP {
            self.metrics.refused("busy_address");
            return false;
        }
        if self.pending.len() < MAX_PENDING {
            return true;
        }
        match by_address
            .values()
            .max_by_key(|e| (e.0, std::cmp::Reverse(e.2)))
        {
            Some(&(count, oldest, _)) if count > mine => {
                self.refuse(oldest, Refusal::Displaced);
                true
            }
            _ => {
                self.metrics.refused("busy");
                false
            }
        }
    }

    fn read_first_frame(&mut self, key: usize, buf: &mut [u8]) {
        let Some(p) = self.pending.get_mut(key) else {
            return;
        };
        loop {
            match p.stream.read(buf) {
                Ok(0) => return self.refuse(key, Refusal::Closed),
                Ok(n) => p.reader.extend(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return self.refuse(key, Refusal::Closed),
            }
            // Nothing legitimate sends more than one frame before we answer the first.
            if p.reader.buffered() > 2 * crate::framing::MAX_FRAME {
                break;
            }
        }
        let worker = match p.reader.peek_frame() {
            Ok(None) => return,
            Err(_) => return self.refuse(key, Refusal::NotIce),
            Ok(Some(frame)) => match stun_local_ufrag(frame).map(crate::demux::ufrag_worker) {
                None => return self.refuse(key, Refusal::NotIce),
                Some(None) => return self.refuse(key, Refusal::UnknownWorker),
                Some(Some(w)) => w,
            },
        };
        let Some(port) = self.workers.get(worker) else {
            return self.refuse(key, Refusal::UnknownWorker);
        };
        let mut p = self.pending.remove(key);
        let _ = self.poll.registry().deregister(&mut p.stream);
        let _ = p.stream.set_nodelay(true);
        let _ = socket2::SockRef::from(&p.stream).set_send_buffer_size(SEND_BUFFER);
        set_notsent_lowat(&p.stream, crate::worker::KERNEL_UNSENT);
        let handoff = Handoff {
            stream: Stream::Socket(p.stream),
            peer: p.peer,
            buffered: p.reader.into_inner(),
        };
        match port.commands.try_send(Command::TcpStream(handoff)) {
            Ok(()) => {
                let _ = port.waker.wake();
                self.metrics.accepted.inc();
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.metrics.refused("busy");
            }
        }
    }

    fn refuse(&mut self, key: usize, why: Refusal) {
        if let Some(mut p) = self.pending.try_remove(key) {
            let _ = self.poll.registry().deregister(&mut p.stream);
            tracing::debug!(peer = %p.peer, ?why, "ice-tcp connection refused");
            self.metrics.refused(match why {
                Refusal::Closed => "closed",
                Refusal::Timeout => "timeout",
                Refusal::NotIce => "not_ice",
                Refusal::UnknownWorker => "unknown_worker",
                Refusal::Displaced => "displaced",
            });
        }
    }
}

/// What pending connections are counted under: the address, or its /64 for IPv6 (one host
/// usually owns a whole /64).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// The socket reports writable only while fewer than `bytes` are unsent (TCP_NOTSENT_LOWAT).
fn set_notsent_lowat(stream: &TcpStream, bytes: usize) {
    use std::os::fd::AsRawFd;
    let v = bytes as libc::c_int;
    // SAFETY: setsockopt reads one c_int from `v`, which outlives the call.
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        tracing::debug!("TCP_NOTSENT_LOWAT: {}", std::io::Error::last_os_error());
    }
}
