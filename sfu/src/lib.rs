//! # hoinghi media plane
//!
//! Selective forwarding on `rtc` (the sans-I/O core of webrtc-rs), driven by our own threads and
//! sockets: one media worker per core, one UDP port per worker, every peer connection of a room
//! on the same worker so fan-out is a loop in one thread with no locks.
//!
//! # Layout
//! - [`api`]: ids, commands and events exchanged with the async control plane.
//! - `worker`: the worker thread: socket loop, timers, connections, negotiation, forwarding.
//! - [`demux`] and [`packet`]: which connection a datagram belongs to (STUN ufrag, then address).
//! - [`forwarder`]: per-downtrack sequence/timestamp rewriting, continuous across source switches;
//!   [`vp8`] does the same for VP8's PictureID and TL0PICIDX.
//! - [`audio_level`]: voice activity from the audio-level header extension.
//! - [`keyframe`]: keyframe detection in VP8 and H.264 payloads.
//! - [`keyframe_requests`]: PLI coalescing towards publishers (per simulcast layer).
//! - [`bwe`], [`loss_control`] and [`queue_delay`]: per-subscriber bandwidth estimation from
//!   transport-wide feedback (loss tolerant of random loss, capped when a queue builds up).
//! - [`layer_meter`] and [`allocator`]: each layer's bitrate, and which layer each subscriber
//!   gets within its estimate; [`floor_gate`]: a video paused for its link stays paused (time
//!   and rate hysteresis); [`temporal`]: which temporal layers a downtrack forwards.
//! - [`nack_gate`]: which NACKed packets are worth resending on a link.
//! - [`red`]: redundant audio (RFC 2198): forwarded as is, or its primary as plain Opus.
//! - [`rtt`]: round-trip time from receiver reports.
//! - [`udp`]: batched sends with `sendmmsg`.
//! - `ice_tcp` and [`framing`]: ICE-TCP for points whose firewall drops UDP: one listener,
//!   RFC 4571 framing, each TCP connection handed to the worker its first binding request names.
//! - [`metrics`]: Prometheus counters, batched per loop pass.
//! - `sim` (tests only): a virtual-time harness: client peers on `rtc`, a virtual network with
//!   rate-limited, lossy, delayed links, synthetic VP8 simulcast; no sockets, no clock.
//!
//! [`Sfu`] is the handle the rest of the server holds: it places rooms on workers and sends them
//! commands over bounded channels.

pub mod allocator;
pub mod api;
pub mod audio_level;
pub mod bwe;
pub mod demux;
pub mod floor_gate;
pub mod forwarder;
pub mod framing;
mod ice_tcp;
pub mod keyframe;
pub mod keyframe_requests;
pub mod layer_meter;
pub mod loss_control;
pub mod metrics;
pub mod nack_gate;
pub mod packet;
pub mod probe;
pub mod queue_delay;
pub mod read_hook;
pub mod red;
pub mod rtt;
mod sdp_text;
pub mod temporal;
pub mod udp;
pub mod vp8;
mod worker;

/// The virtual-time test harness; parts of its API serve scenario tests that are not all
/// written yet, hence `dead_code` allowed.
#[cfg(test)]
#[allow(dead_code)]
mod sim;

/// What the fuzz targets in `fuzz/` (and the replay of their corpora) reach beyond the public
/// modules: a publish offer answered as a worker answers it, and `rtc`'s RTP types.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::worker::offline::answer_publish_offer;
    pub use rtc::rtp;
    pub use rtc::shared::marshal::{Marshal, Unmarshal};
}

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use api::{Command, Reply};
pub use api::{
    ConnState, LocalCandidate, MediaEvent, OfferedTrack, ParticipantId, PcKind, RemoteCandidate,
    SfuError, Subscription, TrackKind, TrackSource,
};
use metrics::SfuMetrics;

/// Commands queued per worker before callers get [`SfuError::Busy`].
const COMMAND_QUEUE: usize = 4096;
/// Socket buffers: a keyframe burst to 300 subscribers is ~4,000 datagrams.
const SOCKET_BUFFER: usize = 8 << 20;

#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Address announced in ICE candidates.
    pub public_ip: IpAddr,
    /// Address the media sockets bind to.
    pub bind_ip: IpAddr,
    /// Worker i listens on `base_port + i`; 0: every worker on any free port.
    pub base_port: u16,
    pub workers: usize,
    /// TCP port for ICE-TCP (0: any free port); `None`: UDP only.
    pub ice_tcp_port: Option<u16>,
}

/// Handle to the media plane; cheap to clone.
#[derive(Clone)]
pub struct Sfu {
    inner: Arc<Inner>,
}

struct WorkerHandle {
    commands: SyncSender<Command>,
    waker: Arc<mio::Waker>,
    port: u16,
}

#[derive(Default)]
struct Placement {
    /// Room → (worker, participants placed).
    rooms: HashMap<String, (usize, usize)>,
    /// Participant → (worker, room).
    participants: HashMap<ParticipantId, (usize, String)>,
}

struct Inner {
    workers: Vec<WorkerHandle>,
    /// The ICE-TCP acceptor's port and its stop handle.
    ice_tcp: Option<(u16, ice_tcp::Stop)>,
    placement: Mutex<Placement>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

fn bind_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

impl Sfu {
    /// Binds one UDP socket per worker and starts the worker threads.
    pub fn start(config: SfuConfig, registry: &prometheus::Registry) -> std::io::Result<Sfu> {
        let metrics = SfuMetrics::new(registry).map_err(std::io::Error::other)?;
        // Bound before the workers start, so they announce its real port.
        let tcp_listener = match config.ice_tcp_port {
            Some(port) => {
                let addr = SocketAddr::new(config.bind_ip, port);
                let l = std::net::TcpListener::bind(addr).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot listen on ICE-TCP {addr}: {e}"))
                })?;
                Some(l)
            }
            None => None,
        };
        let tcp_announced = match &tcp_listener {
            Some(l) => Some(SocketAddr::new(config.public_ip, l.local_addr()?.port())),
            None => None,
        };
        let mut workers = Vec::new();
        let mut threads = Vec::new();
        for i in 0..config.workers.max(1) {
            // Base port 0: each worker takes any free port (tests; never a guessed number).
            let port = match config.base_port {
                0 => 0,
                base => base
                    .checked_add(i as u16)
                    .ok_or_else(|| std::io::Error::other("media port range exceeds 65535"))?,
            };
            let socket = bind_socket(SocketAddr::new(config.bind_ip, port)).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot bind media port {}:{port}: {e}", config.bind_ip),
                )
            })?;
            let port = socket.local_addr()?.port();
            let poll = mio::Poll::new()?;
            let waker = Arc::new(mio::Waker::new(poll.registry(), worker::WAKER)?);
            let (tx, rx) = sync_channel(COMMAND_QUEUE);
            let announced = SocketAddr::new(config.public_ip, port);
            let w = worker::Worker::new(
                i,
                &poll,
                socket,
                announced,
                tcp_announced,
                rx,
                metrics.for_worker(i),
            )
            .map_err(std::io::Error::other)?;
            let thread = std::thread::Builder::new()
                .name(format!("media-{i}"))
                .spawn(move || w.run(poll))?;
            tracing::info!(worker = i, %announced, "media worker started");
            threads.push(thread);
            workers.push(WorkerHandle {
                commands: tx,
                waker,
                port,
            });
        }
        let ice_tcp = match (tcp_listener, tcp_announced) {
            (Some(listener), Some(announced)) => {
                let ports = workers
                    .iter()
                    .map(|w| ice_tcp::WorkerPort {
                        commands: w.commands.clone(),
                        waker: w.waker.clone(),
                    })
                    .collect();
                let (stop, thread) = ice_tcp::start(listener, ports, metrics.ice_tcp())?;
                threads.push(thread);
                tracing::info!(%announced, "ICE-TCP listening");
                Some((announced.port(), stop))
            }
            _ => None,
        };
        Ok(Sfu {
            inner: Arc::new(Inner {
                workers,
                ice_tcp,
                placement: Mutex::new(Placement::default()),
                threads: Mutex::new(threads),
            }),
        })
    }

    /// The ICE-TCP port, when ICE-TCP is on.
    pub fn ice_tcp_port(&self) -> Option<u16> {
        self.inner.ice_tcp.as_ref().map(|(port, _)| *port)
    }

    /// The UDP port of each worker.
    pub fn media_ports(&self) -> Vec<u16> {
        self.inner.workers.iter().map(|w| w.port).collect()
    }

    fn placement(&self) -> std::sync::MutexGuard<'_, Placement> {
        // A panic while holding this lock cannot leave the maps inconsistent in a way that
        // matters more than stopping to serve: recover the data.
        self.inner
            .placement
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn worker_of(&self, participant: ParticipantId) -> Result<usize, SfuError> {
        self.placement()
            .participants
            .get(&participant)
            .map(|(w, _)| *w)
            .ok_or(SfuError::NoSuchParticipant)
    }

    fn send(&self, worker: usize, cmd: Command) -> Result<(), SfuError> {
        let w = &self.inner.workers[worker];
        match w.commands.try_send(cmd) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(SfuError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(SfuError::Closed),
        }
        w.waker.wake().map_err(|_| SfuError::Closed)
    }

    /// Sends a command that must not be lost (leave, routing): if the queue is full, a blocking
    /// thread waits for room rather than dropping it.
    fn send_reliably(&self, worker: usize, cmd: Command) {
        let w = &self.inner.workers[worker];
        match w.commands.try_send(cmd) {
            Ok(()) => {
                let _ = w.waker.wake();
            }
            Err(TrySendError::Full(cmd)) => {
                let tx = w.commands.clone();
                let waker = w.waker.clone();
                std::thread::spawn(move || {
                    if tx.send(cmd).is_ok() {
                        let _ = waker.wake();
                    }
                });
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    async fn call<T>(
        &self,
        worker: usize,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, SfuError> {
        let (tx, rx) = oneshot::channel();
        self.send(worker, make(tx))?;
        rx.await.map_err(|_| SfuError::Closed)?
    }

    /// Places `participant` in `room` (on the room's worker, or the least loaded one for a new
    /// room). Media events for it arrive on `events`.
    pub async fn join(
        &self,
        room: &str,
        participant: ParticipantId,
        events: mpsc::Sender<MediaEvent>,
    ) -> Result<(), SfuError> {
        let worker = {
            let mut p = self.placement();
            if p.participants.contains_key(&participant) {
                return Err(SfuError::AlreadyJoined);
            }
            let worker = match p.rooms.get(room) {
                Some((w, _)) => *w,
                None => {
                    let mut load = vec![0usize; self.inner.workers.len()];
                    for (w, n) in p.rooms.values() {
                        load[*w] += n;
                    }
                    (0..load.len()).min_by_key(|&w| load[w]).unwrap_or(0)
                }
            };
            p.rooms.entry(room.to_owned()).or_insert((worker, 0)).1 += 1;
            p.participants
                .insert(participant, (worker, room.to_owned()));
            worker
        };
        let room = room.to_owned();
        let result = self
            .call(worker, |reply| Command::Join {
                room,
                participant,
                events,
                reply,
            })
            .await;
        if result.is_err() {
            self.forget(participant);
        }
        result
    }

    fn forget(&self, participant: ParticipantId) -> Option<usize> {
        let mut p = self.placement();
        let (worker, room) = p.participants.remove(&participant)?;
        if let Some(entry) = p.rooms.get_mut(&room) {
            entry.1 -= 1;
            if entry.1 == 0 {
                p.rooms.remove(&room);
            }
        }
        Some(worker)
    }

    /// Applies the client's publish offer; returns the answer SDP. `sources` maps the offer's
    /// mids to what they carry (unlisted tracks: microphone for audio, camera for video).
    pub async fn publish_offer(
        &self,
        participant: ParticipantId,
        sdp: String,
        sources: Vec<(String, TrackSource)>,
    ) -> Result<String, SfuError> {
        let w = self.worker_of(participant)?;
        self.call(w, |reply| Command::PublishOffer {
            participant,
            sdp,
            sources,
            reply,
        })
        .await
    }

    /// Applies the client's answer to subscribe offer `revision`.
    pub async fn subscribe_answer(
        &self,
        participant: ParticipantId,
        revision: u64,
        sdp: String,
    ) -> Result<(), SfuError> {
        let w = self.worker_of(participant)?;
        self.call(w, |reply| Command::SubscribeAnswer {
            participant,
            revision,
            sdp,
            reply,
        })
        .await
    }

    /// The client's subscribe connection, on which it applied offer `revision`, failed: the
    /// worker replaces it (a new connection whose first offer says `restart`), at once or when
    /// the least gap between two restarts has passed. A report about a connection already
    /// replaced changes nothing.
    pub async fn restart_subscribe(
        &self,
        participant: ParticipantId,
        revision: u64,
    ) -> Result<(), SfuError> {
        let w = self.worker_of(participant)?;
        self.call(w, |reply| Command::RestartSubscribe {
            participant,
            revision,
            reply,
        })
        .await
    }

    pub async fn add_candidate(
        &self,
        participant: ParticipantId,
        pc: PcKind,
        candidate: RemoteCandidate,
    ) -> Result<(), SfuError> {
        let w = self.worker_of(participant)?;
        self.call(w, |reply| Command::Candidate {
            participant,
            pc,
            candidate,
            reply,
        })
        .await
    }

    /// Routing: `participant` receives exactly what `subscriptions` say.
    pub fn set_receives(&self, participant: ParticipantId, subscriptions: Vec<Subscription>) {
        if let Ok(w) = self.worker_of(participant) {
            self.send_reliably(
                w,
                Command::SetReceives {
                    participant,
                    subscriptions,
                },
            );
        }
    }

    /// Removes the participant and closes its connections.
    pub fn leave(&self, participant: ParticipantId) {
        if let Some(w) = self.forget(participant) {
            self.send_reliably(w, Command::Leave { participant });
        }
    }

    /// Stops every worker and waits for the threads.
    pub fn shutdown(&self) {
        if let Some((_, stop)) = &self.inner.ice_tcp {
            stop.stop();
        }
        for (i, _) in self.inner.workers.iter().enumerate() {
            self.send_reliably(i, Command::Shutdown);
        }
        let threads: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.inner.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}
