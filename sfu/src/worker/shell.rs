//! The worker's I/O shell: the thread, its poll loop, the UDP socket and the command queue.
//!
//! Everything the worker decides is in [`WorkerCore`], which reads no clock and touches no
//! socket: each pass here reads the clock once, hands the core what arrived (datagrams,
//! ICE-TCP readiness, commands), lets it fire its timers and drain, and sends what it queued
//! with `sendmmsg` ([`SocketOutput`]). Tests drive the same core in virtual time.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use mio::{Events, Interest, Poll, Token};

use super::{Output, WorkerCore, tcp};
use crate::api::{Command, SfuError};
use crate::ice_tcp::Stream;
use crate::metrics::WorkerMetrics;
use crate::udp::{Flushed, SendQueue};

pub(crate) const SOCKET: Token = Token(0);
pub(crate) const WAKER: Token = Token(1);

/// Datagrams read per wake before looking at commands and timers again.
const READ_BATCH: usize = 256;
const MAX_DATAGRAM: usize = 1500;
/// Read buffer for ICE-TCP streams (many frames per read).
const TCP_READ: usize = 16 << 10;

/// The worker's sockets as the core reaches them: datagrams out on the UDP socket, batched
/// with `sendmmsg`; the ICE-TCP streams, registered with the worker's poll under
/// `TCP_BASE + link`.
struct Sockets {
    /// The shell's UDP socket, which outlives the core that holds this.
    fd: RawFd,
    registry: mio::Registry,
    streams: HashMap<usize, mio::net::TcpStream>,
}

impl Output for Sockets {
    fn send_udp(&mut self, queue: &mut SendQueue) -> Flushed {
        queue.flush(self.fd)
    }

    fn tcp_adopt(&mut self, link: usize, stream: Stream) -> std::io::Result<()> {
        let Some(mut stream) = stream.into_socket() else {
            return Err(ErrorKind::Unsupported.into());
        };
        self.registry.register(
            &mut stream,
            Token(tcp::TCP_BASE + link),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.streams.insert(link, stream);
        Ok(())
    }

    fn tcp_read(&mut self, link: usize, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.streams.get_mut(&link) {
            Some(s) => s.read(buf),
            None => Err(ErrorKind::NotConnected.into()),
        }
    }

    fn tcp_write(&mut self, link: usize, bytes: &[u8]) -> std::io::Result<usize> {
        match self.streams.get_mut(&link) {
            Some(s) => s.write(bytes),
            None => Err(ErrorKind::NotConnected.into()),
        }
    }

    fn tcp_unsent(&self, link: usize) -> usize {
        self.streams.get(&link).map_or(0, unsent)
    }

    fn tcp_close(&mut self, link: usize) {
        if let Some(mut s) = self.streams.remove(&link) {
            let _ = self.registry.deregister(&mut s);
        }
    }
}

/// Bytes the kernel holds for `stream` and has not sent yet (SIOCOUTQNSD); 0 if it cannot say.
fn unsent(stream: &mio::net::TcpStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQNSD writes one c_int into `n`, which outlives the call.
    let r = unsafe { libc::ioctl(stream.as_raw_fd(), libc::SIOCOUTQNSD, &mut n) };
    if r == 0 { n.max(0) as usize } else { 0 }
}

pub(crate) struct Worker {
    core: WorkerCore,
    socket: mio::net::UdpSocket,
    commands: Receiver<Command>,
}

impl Worker {
    /// A worker on `socket`, registered with `poll` (which [`Self::run`] then waits on).
    pub fn new(
        worker_index: usize,
        poll: &Poll,
        socket: std::net::UdpSocket,
        announced: SocketAddr,
        tcp_announced: Option<SocketAddr>,
        commands: Receiver<Command>,
        metrics: WorkerMetrics,
    ) -> Result<Self, SfuError> {
        socket
            .set_nonblocking(true)
            .map_err(super::conn::internal)?;
        let mut socket = mio::net::UdpSocket::from_std(socket);
        let io = |e: std::io::Error| SfuError::Internal(format!("worker {worker_index}: {e}"));
        poll.registry()
            .register(&mut socket, SOCKET, Interest::READABLE)
            .map_err(io)?;
        let output = Box::new(Sockets {
            fd: socket.as_raw_fd(),
            registry: poll.registry().try_clone().map_err(io)?,
            streams: HashMap::new(),
        });
        let core = WorkerCore::new(
            worker_index,
            announced,
            tcp_announced,
            metrics,
            output,
            Instant::now(),
        )?;
        Ok(Self {
            core,
            socket,
            commands,
        })
    }

    /// Runs until `Command::Shutdown` or the command channel closes.
    pub fn run(mut self, mut poll: Poll) {
        let index = self.core.worker_index;
        let mut events = Events::with_capacity(64);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut tcp_buf = vec![0u8; TCP_READ];
        while !self.core.shut_down() {
            let timeout = if self.core.tcp.again.is_empty() {
                self.core
                    .poll_timeout()
                    .map(|at| at.saturating_duration_since(Instant::now()))
            } else {
                Some(std::time::Duration::ZERO)
            };
            if let Err(e) = poll.poll(&mut events, timeout)
                && e.kind() != ErrorKind::Interrupted
            {
                tracing::error!(worker = index, "poll failed: {e}");
                break;
            }
            for e in events.iter() {
                if let Some(link) = e.token().0.checked_sub(tcp::TCP_BASE) {
                    let readable = e.is_readable() || e.is_read_closed() || e.is_error();
                    self.core.tcp.ready.push((link, readable, e.is_writable()));
                }
            }
            self.pass(&mut buf, &mut tcp_buf);
        }
        self.core.close(Instant::now());
    }

    /// One pass: everything in it happens at one "now".
    fn pass(&mut self, buf: &mut [u8], tcp_buf: &mut [u8]) {
        let now = Instant::now();
        let read_before = self.core.metrics.packets_in;
        // A bug that panics in one pass must not take every room of this worker down with it:
        // log, count, and keep serving (the per-datagram guard in `feed` already isolates the
        // hostile-input path to one connection).
        let pass = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.read_socket(now, buf);
            self.core.service_tcp(now, tcp_buf);
            self.apply_commands(now);
            self.core.process(now);
        }));
        if pass.is_err() {
            tracing::error!(
                worker = self.core.worker_index,
                "worker pass panicked; continuing"
            );
            self.core.recover_from_panic();
        }
        // What this pass added to the media it read: each packet left by the end of it.
        let metrics = self.core.metrics_mut();
        let read = metrics.packets_in.saturating_sub(read_before);
        if read > 0 {
            let took = now.elapsed().as_secs_f64();
            for _ in 0..read {
                metrics.forward_latency.observe(took);
            }
        }
        metrics.flush();
    }

    fn read_socket(&mut self, now: Instant, buf: &mut [u8]) {
        for _ in 0..READ_BATCH {
            match self.socket.recv_from(buf) {
                Ok((n, from)) => self.core.handle_datagram(now, from, &buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors surface here on Linux (ECONNREFUSED from a gone client).
                    tracing::debug!(worker = self.core.worker_index, "recv_from: {e}");
                }
            }
        }
    }

    fn apply_commands(&mut self, now: Instant) {
        loop {
            match self.commands.try_recv() {
                Ok(cmd) => self.core.handle_command(now, cmd),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.core.shutting_down = true;
                    break;
                }
            }
        }
    }
}
