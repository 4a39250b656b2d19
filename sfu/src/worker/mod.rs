//! A media worker: one thread, one UDP socket, every peer connection of the rooms placed on it.
//!
//! The thread is the only place that touches the socket and the clock. Each pass of its loop:
//! wait for the socket, a command or the earliest deadline; feed datagrams to the connection the
//! demultiplexer names; apply commands; fire due timers; then drain every connection that was
//! touched (its writes go to the socket, its RTP is forwarded, which touches other connections)
//! until nothing is left. No locks: rooms never span workers.

mod allocate;
mod conn;
mod decide;
mod feedback;
mod lifecycle;
mod link_allocation;
mod media;
mod negotiate;
pub(crate) mod offline;
mod routing;
mod shell;
pub(crate) use shell::{WAKER, Worker};
mod stats;
mod tcp;
pub(crate) use tcp::KERNEL_UNSENT;
mod track;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use slab::Slab;
use tokio::sync::mpsc;

use crate::api::{Command, MediaEvent, ParticipantId, SfuError};
use crate::demux::Demux;
use crate::metrics::WorkerMetrics;
use crate::udp::{Flushed, SendQueue};
use conn::{Conn, PcFactory};
use negotiate::SubscribeNegotiation;
use track::PublishedTrack;

/// Datagrams queued before a flush mid-pass.
const MAX_QUEUED_SENDS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Conn(usize),
    /// A deferred keyframe request: track, simulcast rank.
    Keyframe(usize, u8),
    /// Link statistics of every participant (see `stats.rs`).
    Stats,
    /// Simulcast layer allocation for every subscriber (see `allocate.rs`).
    Allocate,
    /// The answer to this subscribe offer revision is due (see `negotiate.rs`).
    Answer(ParticipantId, u64),
    /// A subscribe restart that waited for the gap since the last one (see `negotiate.rs`).
    Restart(ParticipantId),
    /// The padding of a probe cluster on this subscribe connection (see `probe.rs`).
    Pace(usize),
}

/// The core's only way out: the shell's sockets, or a test's network.
pub(crate) trait Output: Send {
    /// Sends every queued datagram and empties the queue. Called at the end of each pass and
    /// mid-pass when a fan-out burst fills the queue, so that burst leaves in `sendmmsg`
    /// batches without the queue growing with the room.
    fn send_udp(&mut self, queue: &mut SendQueue) -> Flushed;
    /// Takes an ICE-TCP stream (handed over by the acceptor) as link `link`.
    fn tcp_adopt(&mut self, link: usize, stream: crate::ice_tcp::Stream) -> std::io::Result<()>;
    /// Reads from link `link`, as `Read::read` (0: closed by the peer).
    fn tcp_read(&mut self, link: usize, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Writes to link `link`, as `Write::write`.
    fn tcp_write(&mut self, link: usize, bytes: &[u8]) -> std::io::Result<usize>;
    /// Bytes the kernel holds for link `link` and has not sent yet (0 if it cannot say).
    fn tcp_unsent(&self, link: usize) -> usize;
    /// Drops link `link`'s stream.
    fn tcp_close(&mut self, link: usize);
}

pub(crate) struct Participant {
    room: String,
    events: mpsc::Sender<MediaEvent>,
    publish: Option<usize>,
    subscribe: Option<usize>,
    /// What this participant receives (the room's routing decision).
    receives: Vec<crate::api::Subscription>,
    /// The publish offer's mid → source declarations.
    sources: HashMap<String, crate::api::TrackSource>,
    negotiation: SubscribeNegotiation,
    /// Tracks this participant publishes (keys into `tracks`).
    published: Vec<usize>,
    /// Cumulative (received, lost) of the publish connection at the last stats pass.
    upstream: (u64, i64),
}

pub(crate) struct WorkerCore {
    /// The local address of every UDP packet as the engine sees it: the announced candidate's,
    /// not the bound one. The engine matches a packet to a local candidate by this address, and
    /// bound to 0.0.0.0 (the default when listening on every interface) nothing would match.
    local_addr: SocketAddr,
    factory: PcFactory,
    conns: Slab<Conn>,
    demux: Demux<usize>,
    participants: HashMap<ParticipantId, Participant>,
    tracks: Slab<PublishedTrack>,
    /// (publisher conn, SSRC) → (track, simulcast rank).
    track_by_ssrc: HashMap<(usize, u32), (usize, u8)>,
    /// (subscriber conn, our SSRC) → track, for keyframe requests from subscribers.
    track_by_down_ssrc: HashMap<(usize, u32), usize>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    dirty: Vec<usize>,
    /// Participants whose subscribe side changed (see `negotiate.rs`).
    offer_queue: Vec<ParticipantId>,
    /// Participants whose subscribe connection failed on our side in this pass.
    failed_subscribes: Vec<ParticipantId>,
    out: crate::udp::SendQueue,
    /// Where `out` goes: the shell's socket, or a test's network.
    output: Box<dyn Output>,
    metrics: WorkerMetrics,
    next_ufrag: u64,
    worker_index: usize,
    shutting_down: bool,
    tcp: tcp::TcpLinks,
    /// Rewritten VP8 payloads of the packet being forwarded (capacity kept across packets).
    vp8_rewrites: crate::vp8::Rewrites,
    /// The time of the input being handled (for the ICE-TCP queues' ages).
    now: Instant,
}

impl WorkerCore {
    pub fn new(
        worker_index: usize,
        announced: SocketAddr,
        tcp_announced: Option<SocketAddr>,
        metrics: WorkerMetrics,
        output: Box<dyn Output>,
        now: Instant,
    ) -> Result<Self, SfuError> {
        let mut core = Self {
            local_addr: announced,
            factory: PcFactory::new(announced, tcp_announced)?,
            conns: Slab::new(),
            demux: Demux::default(),
            participants: HashMap::new(),
            tracks: Slab::new(),
            track_by_ssrc: HashMap::new(),
            track_by_down_ssrc: HashMap::new(),
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            offer_queue: Vec::new(),
            failed_subscribes: Vec::new(),
            out: crate::udp::SendQueue::default(),
            output,
            metrics,
            next_ufrag: 0,
            worker_index,
            shutting_down: false,
            tcp: tcp::TcpLinks::new(tcp_announced),
            vp8_rewrites: Default::default(),
            now,
        };
        core.timers
            .push(Reverse((now + stats::STATS_INTERVAL, Timer::Stats)));
        core.timers.push(Reverse((
            now + allocate::ALLOCATE_INTERVAL,
            Timer::Allocate,
        )));
        Ok(core)
    }

    /// The earliest time [`Self::process`] has work to do (a timer), if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Whether a `Shutdown` command was handled.
    pub fn shut_down(&self) -> bool {
        self.shutting_down
    }

    /// Fires the timers due at `now`, then drains every connection an input touched: their
    /// writes go out, their RTP is forwarded, their events reach the sessions. Call it after
    /// the inputs of a pass (datagrams, frames, commands) and at [`Self::poll_timeout`].
    pub fn process(&mut self, now: Instant) {
        self.now = now;
        self.fire_timers(now);
        self.drain(now);
    }

    /// After a pass panicked: forget what was half done, keep serving.
    pub fn recover_from_panic(&mut self) {
        self.dirty.clear();
        for (_, c) in self.conns.iter_mut() {
            c.dirty = false;
        }
    }

    /// Closes every connection (their DTLS close_notify goes out) before the worker ends.
    pub fn close(&mut self, now: Instant) {
        self.now = now;
        self.close_all(now);
        self.flush_sends();
    }

    pub fn metrics_mut(&mut self) -> &mut WorkerMetrics {
        &mut self.metrics
    }

    /// One datagram from the network (UDP). Drained by the next [`Self::process`].
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.now = now;
        self.metrics.datagrams_in += 1;
        self.metrics.bytes_in += datagram.len() as u64;
        let Some(route) = self.demux.route(from, datagram) else {
            self.metrics.unroutable += 1;
            return;
        };
        let Some(conn) = self.conns.get_mut(route.key) else {
            return;
        };
        if route.new_addr {
            conn.remember_addr(from);
        }
        let transport = TransportContext {
            local_addr: self.local_addr,
            peer_addr: from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        };
        self.feed(now, route.key, transport, BytesMut::from(datagram));
    }

    /// Hands one packet from the network to connection `key`.
    fn feed(&mut self, now: Instant, key: usize, transport: TransportContext, message: BytesMut) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let from = transport.peer_addr;
        let msg = TaggedBytesMut {
            now,
            transport,
            message,
        };
        // The engine parses hostile input (DTLS, SRTP, RTCP, SCTP). Should it ever panic on a
        // crafted packet, only that connection is lost, not the worker and its rooms.
        let participant = conn.participant;
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| conn.pc.handle_read(msg)));
        match outcome {
            Ok(Ok(())) => self.mark_dirty(key),
            Ok(Err(e)) => {
                // A bad packet from the network is the peer's problem, not ours: count and go on.
                tracing::trace!(%participant, "handle_read: {e}");
                self.metrics.bad_datagrams += 1;
                self.mark_dirty(key);
            }
            Err(_) => {
                tracing::error!(%participant, %from, "media engine panicked on input; closing that connection");
                self.metrics.bad_datagrams += 1;
                self.drop_conn_after_panic(key);
            }
        }
    }

    /// One command from the sessions. Its reply is sent now; its effects drain in the next
    /// [`Self::process`].
    pub fn handle_command(&mut self, now: Instant, cmd: Command) {
        self.now = now;
        match cmd {
            Command::Join {
                room,
                participant,
                events,
                reply,
            } => {
                let result = match self.participants.entry(participant) {
                    std::collections::hash_map::Entry::Occupied(_) => Err(SfuError::AlreadyJoined),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(Participant {
                            room,
                            events,
                            publish: None,
                            subscribe: None,
                            receives: Vec::new(),
                            sources: HashMap::new(),
                            negotiation: SubscribeNegotiation::default(),
                            published: Vec::new(),
                            upstream: (0, 0),
                        });
                        Ok(())
                    }
                };
                let _ = reply.send(result);
            }
            Command::PublishOffer {
                participant,
                sdp,
                sources,
                reply,
            } => {
                if let Some(p) = self.participants.get_mut(&participant) {
                    p.sources.extend(sources);
                }
                let _ = reply.send(self.publish_offer(now, participant, sdp));
            }
            Command::SubscribeAnswer {
                participant,
                revision,
                sdp,
                reply,
            } => {
                let _ = reply.send(self.subscribe_answer(now, participant, revision, sdp));
            }
            Command::Candidate {
                participant,
                pc,
                candidate,
                reply,
            } => {
                let _ = reply.send(self.remote_candidate(participant, pc, candidate));
            }
            Command::SetReceives {
                participant,
                subscriptions,
            } => self.set_receives(now, participant, subscriptions),
            Command::RestartSubscribe {
                participant,
                revision,
                reply,
            } => {
                let _ = reply.send(self.client_subscribe_failed(now, participant, revision));
            }
            Command::Leave { participant } => self.leave(now, participant),
            Command::TcpStream(handoff) => self.adopt_tcp(now, handoff),
            Command::Shutdown => self.shutting_down = true,
        }
    }

    fn mark_dirty(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key)
            && !c.dirty
        {
            c.dirty = true;
            self.dirty.push(key);
        }
    }

    fn schedule(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(at) = c.pc.poll_timeout()
            && c.scheduled.is_none_or(|s| at < s)
        {
            c.scheduled = Some(at);
            self.timers.push(Reverse((at, Timer::Conn(key))));
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Conn(key) => {
                    let Some(c) = self.conns.get_mut(key) else {
                        continue;
                    };
                    // Stale entries (a later deadline replaced this one) are skipped.
                    if c.scheduled != Some(at) {
                        continue;
                    }
                    c.scheduled = None;
                    if let Err(e) = c.pc.handle_timeout(now) {
                        tracing::debug!(participant = %c.participant, "handle_timeout: {e}");
                    }
                    self.mark_dirty(key);
                }
                Timer::Keyframe(track, rank) => self.keyframe_timer(now, track, rank),
                Timer::Answer(participant, revision) => {
                    self.answer_overdue(now, participant, revision)
                }
                Timer::Restart(participant) => self.restart_due(now, participant),
                Timer::Pace(key) => self.pace_probe(now, key),
                Timer::Allocate => {
                    self.allocate_layers(now);
                    self.timers.push(Reverse((
                        now + allocate::ALLOCATE_INTERVAL,
                        Timer::Allocate,
                    )));
                }
                Timer::Stats => {
                    self.collect_link_stats(now);
                    self.metrics.sample_thread_cpu();
                    self.timers
                        .push(Reverse((now + stats::STATS_INTERVAL, Timer::Stats)));
                }
            }
        }
    }

    /// Drains every touched connection until none is left: writes to the socket, RTP to the
    /// forwarding path, events to the session; then re-arms its timer.
    fn drain(&mut self, now: Instant) {
        self.drain_dirty(now);
        for participant in std::mem::take(&mut self.failed_subscribes) {
            tracing::info!(%participant, "subscribe connection failed on our side; restarting it");
            self.restart_subscribe_soon(now, participant);
        }
        // Offers queue output on their connections (marked dirty): one more round drains it.
        self.send_pending_offers(now);
        self.drain_dirty(now);
        self.flush_sends();
    }

    fn drain_dirty(&mut self, now: Instant) {
        while let Some(key) = self.dirty.pop() {
            let Some(c) = self.conns.get_mut(key) else {
                continue;
            };
            c.dirty = false;
            loop {
                let mut progressed = false;
                while let Some(TaggedRTCMessage { message, .. }) = self.conns[key].pc.poll_read() {
                    progressed = true;
                    match message {
                        RTCMessage::RtpPacket(_, packet) => self.on_rtp(now, key, packet),
                        RTCMessage::RtcpPacket(_, packets) => self.on_rtcp(now, key, &packets),
                        _ => {}
                    }
                }
                while let Some(event) = self.conns[key].pc.poll_event() {
                    progressed = true;
                    self.watch_subscribe_state(key, &event);
                    self.on_pc_event(now, key, event);
                    if !self.conns.contains(key) {
                        break;
                    }
                }
                if !self.conns.contains(key) {
                    break;
                }
                while let Some(out) = self.conns[key].pc.poll_write() {
                    progressed = true;
                    self.send(key, out.transport, out.message);
                }
                if !progressed {
                    break;
                }
            }
            self.schedule(key);
        }
    }

    /// What a subscribe connection's state means for restarting it (see `negotiate.rs`).
    fn watch_subscribe_state(
        &mut self,
        key: usize,
        event: &rtc::peer_connection::event::RTCPeerConnectionEvent,
    ) {
        use rtc::peer_connection::event::RTCPeerConnectionEvent::OnConnectionStateChangeEvent;
        use rtc::peer_connection::state::RTCPeerConnectionState;
        let OnConnectionStateChangeEvent(state) = event else {
            return;
        };
        let c = &self.conns[key];
        if c.kind != crate::api::PcKind::Subscribe {
            return;
        }
        // Our side heard nothing for the ICE failure timeout: the path is dead, and a failed
        // connection stays dead. A new one (after this pass: this one is being drained) lets
        // the client back in once its line returns, whether or not it reports the failure.
        if *state == RTCPeerConnectionState::Failed {
            self.failed_subscribes.push(c.participant);
        }
    }

    /// Queues a packet for the end of the pass (see [`crate::udp`]), on UDP or on the ICE-TCP
    /// connection the engine chose.
    fn send(&mut self, key: usize, transport: TransportContext, datagram: BytesMut) {
        let over_tcp = transport.transport_protocol == TransportProtocol::TCP;
        if let Some(c) = self.conns.get_mut(key) {
            c.over_tcp = over_tcp;
        }
        if over_tcp {
            return self.send_tcp(key, transport.peer_addr, datagram);
        }
        let to = transport.peer_addr;
        // Under ICE-lite every address was learnt from the peer's own check; this only matters
        // for a peer that answers from an address it never checked from.
        if let Some(c) = self.conns.get_mut(key)
            && !c.addrs.contains(&to)
        {
            c.remember_addr(to);
            self.demux.learn(to, key);
        }
        self.out.push(to, datagram);
        // Bounds the queue (and the delay of its first datagram) in a pass that fans a burst out
        // to hundreds of subscribers.
        if self.out.len() >= MAX_QUEUED_SENDS {
            self.flush_sends();
        }
    }

    fn flush_sends(&mut self) {
        self.flush_tcp();
        if self.out.is_empty() {
            return;
        }
        let f = self.output.send_udp(&mut self.out);
        self.metrics.datagrams_out += f.sent;
        self.metrics.bytes_out += f.bytes;
        self.metrics.send_dropped += f.dropped;
    }

    fn notify(&self, participant: ParticipantId, event: MediaEvent) {
        if let Some(p) = self.participants.get(&participant)
            && p.events.try_send(event).is_err()
        {
            // The session is gone or not keeping up; it will learn of its state on reconnect.
            tracing::warn!(%participant, "event queue full or closed; event dropped");
        }
    }
}
