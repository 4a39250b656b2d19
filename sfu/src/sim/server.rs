//! The server's media worker ([`WorkerCore`], the production code) as a node of the virtual
//! network, with the calls a signaling session makes on it: join, publish offer, routing,
//! subscribe answers. Replies come back at once (the core answers a command while handling
//! it); events queue per participant, as the sessions' channels do.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::BytesMut;
use tokio::sync::{mpsc, oneshot};

use super::Node;
use super::tcp::{Side, TcpNet};
use crate::api::{Command, MediaEvent, ParticipantId, SfuError, Subscription, TrackSource};
use crate::framing::FrameReader;
use crate::ice_tcp::{Handoff, SEND_BUFFER, Stream};
use crate::metrics::SfuMetrics;
use crate::udp::{Flushed, SendQueue};
use crate::worker::{KERNEL_UNSENT, Output, WorkerCore};

/// What the core sent, in order, for the network to take; and its ICE-TCP streams.
#[derive(Default, Clone)]
struct Outbox(Arc<Mutex<OutboxInner>>);

#[derive(Default)]
struct OutboxInner {
    datagrams: VecDeque<(SocketAddr, BytesMut)>,
    tcp: Option<TcpNet>,
    /// The core's link number → the virtual stream it adopted.
    links: HashMap<usize, usize>,
    /// The time of the input the core is handling: `Output` calls carry none, and a stream's
    /// bytes leave at the line's rate from when they are written.
    now: Option<Instant>,
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, OutboxInner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl OutboxInner {
    /// The virtual stream of link `link`, with the network and the time.
    fn stream(&self, link: usize) -> std::io::Result<(&TcpNet, usize, Instant)> {
        match (&self.tcp, self.links.get(&link), self.now) {
            (Some(net), Some(&id), Some(now)) => Ok((net, id, now)),
            _ => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

impl Output for Outbox {
    fn send_udp(&mut self, queue: &mut SendQueue) -> Flushed {
        let mut out = self.lock();
        let mut f = Flushed::default();
        for (to, d) in queue.take() {
            f.sent += 1;
            f.bytes += d.len() as u64;
            out.datagrams.push_back((to, d));
        }
        f
    }

    fn tcp_adopt(&mut self, link: usize, stream: Stream) -> std::io::Result<()> {
        let Stream::Virtual(id) = stream else {
            return Err(std::io::ErrorKind::Unsupported.into());
        };
        self.lock().links.insert(link, id);
        Ok(())
    }

    fn tcp_read(&mut self, link: usize, buf: &mut [u8]) -> std::io::Result<usize> {
        let inner = self.lock();
        let (net, id, now) = inner.stream(link)?;
        // Peers never close their streams here, so 0 bytes is "nothing yet", never EOF.
        match net.read(id, Side::Server, now, buf) {
            0 => Err(std::io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn tcp_write(&mut self, link: usize, bytes: &[u8]) -> std::io::Result<usize> {
        let inner = self.lock();
        let (net, id, now) = inner.stream(link)?;
        match net.write(id, Side::Server, now, bytes, SEND_BUFFER) {
            0 => Err(std::io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn tcp_unsent(&self, link: usize) -> usize {
        let inner = self.lock();
        inner
            .stream(link)
            .map_or(0, |(net, id, now)| net.server_unsent(id, now))
    }

    fn tcp_close(&mut self, link: usize) {
        let mut inner = self.lock();
        if let (Some(id), Some(net)) = (inner.links.remove(&link), &inner.tcp) {
            net.close(id);
        }
    }
}

/// A media server with one worker on the virtual network.
pub struct SimServer {
    pub core: WorkerCore,
    addr: SocketAddr,
    outbox: Outbox,
    tcp: Option<ServerTcp>,
    events: HashMap<ParticipantId, mpsc::Receiver<MediaEvent>>,
    /// The registry the worker's metrics are in (for tests that read a counter).
    pub registry: prometheus::Registry,
}

impl SimServer {
    pub fn new(now: Instant, addr: SocketAddr) -> Self {
        Self::build(now, addr, None)
    }

    /// A server that also announces a passive TCP candidate at `tcp_addr` (RFC 6544) and
    /// takes the streams clients open to it on `net`, as the production acceptor hands them to
    /// a worker.
    pub fn with_ice_tcp(now: Instant, addr: SocketAddr, tcp_addr: SocketAddr, net: TcpNet) -> Self {
        Self::build(now, addr, Some((tcp_addr, net)))
    }

    fn build(now: Instant, addr: SocketAddr, tcp: Option<(SocketAddr, TcpNet)>) -> Self {
        let registry = prometheus::Registry::new();
        let metrics = SfuMetrics::new(&registry).expect("metrics register in a fresh registry");
        let outbox = Outbox::default();
        outbox.lock().tcp = tcp.as_ref().map(|(_, net)| net.clone());
        let core = WorkerCore::new(
            0,
            addr,
            tcp.as_ref().map(|(a, _)| *a),
            metrics.for_worker(0),
            Box::new(outbox.clone()),
            now,
        )
        .expect("a worker core builds");
        Self {
            core,
            addr,
            outbox,
            tcp: tcp.map(|(addr, net)| ServerTcp::new(addr, net)),
            events: HashMap::new(),
            registry,
        }
    }

    /// Every input to the core happens at one `now`, which its streams' writes need.
    fn enter(&mut self, now: Instant) {
        self.outbox.lock().now = Some(now);
    }

    fn process(&mut self, now: Instant) {
        self.core.process(now);
        if let Some(t) = self.tcp.as_mut() {
            t.arm_writable(now, &self.outbox);
        }
    }

    /// Runs one command and returns its reply (the core replies while handling it).
    fn call<T>(
        &mut self,
        now: Instant,
        make: impl FnOnce(oneshot::Sender<Result<T, SfuError>>) -> Command,
    ) -> Result<T, SfuError> {
        let (tx, mut rx) = oneshot::channel();
        self.enter(now);
        self.core.handle_command(now, make(tx));
        self.process(now);
        rx.try_recv()
            .unwrap_or_else(|e| panic!("the core did not reply at once: {e}"))
    }

    pub fn join(&mut self, now: Instant, who: ParticipantId, room: &str) {
        let (events, rx) = mpsc::channel(256);
        self.events.insert(who, rx);
        let room = room.to_owned();
        self.call(now, |reply| Command::Join {
            room,
            participant: who,
            events,
            reply,
        })
        .expect("join");
    }

    /// A publish offer (sources declared by kind); returns the answer's SDP.
    pub fn publish(&mut self, now: Instant, who: ParticipantId, sdp: &str) -> String {
        let sdp = sdp.to_owned();
        let sources: Vec<(String, TrackSource)> = Vec::new();
        self.call(now, |reply| Command::PublishOffer {
            participant: who,
            sdp,
            sources,
            reply,
        })
        .expect("publish answer")
    }

    /// Routing: `who` receives exactly `subscriptions`.
    pub fn set_receives(&mut self, now: Instant, who: ParticipantId, subs: Vec<Subscription>) {
        self.enter(now);
        self.core.handle_command(
            now,
            Command::SetReceives {
                participant: who,
                subscriptions: subs,
            },
        );
        self.process(now);
    }

    pub fn subscribe_answer(
        &mut self,
        now: Instant,
        who: ParticipantId,
        revision: u64,
        sdp: String,
    ) -> Result<(), SfuError> {
        self.call(now, |reply| Command::SubscribeAnswer {
            participant: who,
            revision,
            sdp,
            reply,
        })
    }

    pub fn leave(&mut self, now: Instant, who: ParticipantId) {
        self.enter(now);
        self.core
            .handle_command(now, Command::Leave { participant: who });
        self.process(now);
    }

    /// The events queued for `who` since the last call.
    pub fn events(&mut self, who: ParticipantId) -> Vec<MediaEvent> {
        let mut out = Vec::new();
        if let Some(rx) = self.events.get_mut(&who) {
            while let Ok(e) = rx.try_recv() {
                out.push(e);
            }
        }
        out
    }

    /// A counter or gauge of the worker's metrics by name and labels (summed over series).
    pub fn metric(&mut self, name: &str) -> f64 {
        self.core.metrics_mut().flush();
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric().iter())
            .map(|m| m.get_counter().value() + m.get_gauge().value())
            .sum()
    }
}

impl Node for SimServer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: BytesMut) {
        self.enter(now);
        self.core.handle_datagram(now, from, &bytes);
        self.process(now);
    }

    fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.outbox.lock().datagrams.pop_front()
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let tcp = self
            .tcp
            .as_ref()
            .and_then(|t| t.deadline(&self.core, &self.outbox));
        match (self.core.poll_timeout(), tcp) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.enter(now);
        if let Some(t) = self.tcp.as_mut() {
            t.service(now, &mut self.core, &self.outbox);
        }
        self.process(now);
    }
}

/// The shell's ICE-TCP half on virtual streams: the acceptor (hold a stream until its first
/// frame, then hand it to the worker) and edge-triggered readiness (readable when bytes have
/// arrived; writable when the unsent bytes fall under the low-water mark, as
/// `TCP_NOTSENT_LOWAT` makes a socket report).
struct ServerTcp {
    addr: SocketAddr,
    net: TcpNet,
    /// Streams waiting for their first frame, with what has arrived of it.
    accepting: HashMap<usize, FrameReader>,
    /// Links whose unsent bytes reached the mark: the core waits for them to be writable.
    armed: HashSet<usize>,
}

impl ServerTcp {
    fn new(addr: SocketAddr, net: TcpNet) -> Self {
        Self {
            addr,
            net,
            accepting: HashMap::new(),
            armed: HashSet::new(),
        }
    }

    fn links(outbox: &Outbox) -> Vec<(usize, usize)> {
        let inner = outbox.lock();
        inner.links.iter().map(|(&l, &id)| (l, id)).collect()
    }

    /// The next instant this half has something for the core.
    fn deadline(&self, core: &WorkerCore, outbox: &Outbox) -> Option<Instant> {
        if core.tcp_again() {
            return outbox.lock().now;
        }
        let pending = self.net.pending(self.addr).into_iter().map(|(id, _)| id);
        let links = Self::links(outbox);
        let arrivals = pending
            .chain(links.iter().map(|&(_, id)| id))
            .filter_map(|id| self.net.next_arrival(id, Side::Server));
        let writable = links
            .iter()
            .filter(|(l, _)| self.armed.contains(l))
            .filter_map(|&(_, id)| self.net.server_unsent_below_at(id, KERNEL_UNSENT));
        arrivals.chain(writable).min()
    }

    fn service(&mut self, now: Instant, core: &mut WorkerCore, outbox: &Outbox) {
        self.accept(now, core, outbox);
        for (link, id) in Self::links(outbox) {
            let readable = self
                .net
                .next_arrival(id, Side::Server)
                .is_some_and(|t| t <= now);
            let writable =
                self.armed.contains(&link) && self.net.server_unsent(id, now) < KERNEL_UNSENT;
            if writable {
                self.armed.remove(&link);
            }
            if readable || writable {
                core.tcp_ready(link, readable, writable);
            }
        }
        let mut buf = vec![0u8; 16 << 10];
        core.service_tcp(now, &mut buf);
    }

    /// Hands over each stream whose first frame has arrived; the core checks it names one of
    /// its connections (the production acceptor's check, the worker index aside, is the same
    /// ufrag lookup) and refuses it otherwise, as the acceptor's stream is then dropped.
    fn accept(&mut self, now: Instant, core: &mut WorkerCore, outbox: &Outbox) {
        let mut buf = vec![0u8; 16 << 10];
        for (id, peer) in self.net.pending(self.addr) {
            let reader = self.accepting.entry(id).or_default();
            loop {
                let n = self.net.read(id, Side::Server, now, &mut buf);
                if n == 0 {
                    break;
                }
                reader.extend(&buf[..n]);
            }
            match reader.peek_frame() {
                Ok(None) => continue,
                Ok(Some(_)) => {}
                Err(_) => {
                    self.accepting.remove(&id);
                    self.net.close(id);
                    continue;
                }
            }
            let Some(reader) = self.accepting.remove(&id) else {
                continue;
            };
            self.net.set_adopted(id);
            let handoff = Handoff {
                stream: Stream::Virtual(id),
                peer,
                buffered: reader.into_inner(),
            };
            core.handle_command(now, Command::TcpStream(handoff));
            if !outbox.lock().links.values().any(|&v| v == id) {
                self.net.close(id);
            }
        }
    }

    /// After the core wrote: links at or over the mark wait for writable readiness.
    fn arm_writable(&mut self, now: Instant, outbox: &Outbox) {
        let links = Self::links(outbox);
        self.armed.retain(|l| links.iter().any(|(k, _)| k == l));
        for (link, id) in links {
            if self.net.server_unsent(id, now) >= KERNEL_UNSENT {
                self.armed.insert(link);
            }
        }
    }
}
