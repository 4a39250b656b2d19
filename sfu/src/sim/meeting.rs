//! A meeting in virtual time: the server's worker core, a chair publishing Chromium-like
//! simulcast, and points that receive it, each behind its own line; the signaling a session
//! does (subscribe offers answered, video-paused notices kept) done between steps.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::net::{LinkConfig, LinkId, LinkKey, Net, QueueLimit};
use super::peer::{PeerOptions, SimPeer};
use super::publish::PublisherConfig;
use super::record::StreamStats;
use super::server::SimServer;
use super::tcp::TcpNet;
use super::{Clock, Node, progress};
use crate::api::{MediaEvent, ParticipantId, Subscription};

/// Signaling is handled between steps this long (a session's round trip is about this).
const STEP: Duration = Duration::from_millis(10);
pub const ROOM: &str = "sim";
pub const CHAIR: ParticipantId = ParticipantId(1);

pub fn server_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 10_000))
}

/// The server's passive ICE-TCP candidate (a meeting built with [`Meeting::with_ice_tcp`]).
pub fn server_tcp_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 10_443))
}

fn chair_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 1, 1], 5000))
}

pub fn point_addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 2, i as u8], 5000))
}

pub fn point_id(i: usize) -> ParticipantId {
    ParticipantId(100 + i as u64)
}

/// A clean line: plenty of rate, 20 ms each way, a 20-packet queue.
pub fn clean_line() -> LinkConfig {
    LinkConfig {
        rate_bps: Some(20_000_000),
        queue: QueueLimit::Packets(20),
        delay: Duration::from_millis(20),
        loss: 0.0,
    }
}

/// What happened to one point, besides what its peer recorded.
#[derive(Debug, Default)]
pub struct PointLog {
    /// Subscribe offers answered: (virtual time, revision, media sections in it).
    pub offers: Vec<(Duration, u64, usize)>,
    /// Video-paused notices: (virtual time, how many videos paused).
    pub paused: Vec<(Duration, usize)>,
    /// Subscribe offers the point could not apply, or answers the server refused.
    pub errors: Vec<String>,
    /// The `tracks` of the latest subscribe offer.
    pub tracks: Vec<crate::api::OfferedTrack>,
}

pub struct Meeting {
    pub clock: Clock,
    pub net: Net,
    pub server: SimServer,
    pub chair: SimPeer,
    pub points: Vec<SimPeer>,
    pub logs: Vec<PointLog>,
    /// The line from the server to each point.
    pub downlinks: Vec<LinkId>,
    /// The virtual TCP streams (none unless built [`Meeting::with_ice_tcp`]).
    pub tcp: TcpNet,
}

/// A set of nodes on one network, with the signaling done between steps.
pub(super) trait Stage {
    fn now(&self) -> Instant;
    /// Moves every node and the network on to `until`.
    fn progress_to(&mut self, until: Instant);
    /// What the sessions do with the server's events.
    fn signal(&mut self);
}

/// Moves the server, `peers` and the network on to `until`.
pub(super) fn progress_all<'a>(
    clock: &mut Clock,
    net: &mut Net,
    server: &'a mut SimServer,
    peers: impl Iterator<Item = &'a mut SimPeer>,
    until: Instant,
) {
    let mut nodes: Vec<&mut dyn Node> = vec![server];
    nodes.extend(peers.map(|p| p as &mut dyn Node));
    progress(clock, net, &mut nodes, until);
    stamp(clock.elapsed());
}

/// Runs `stage` for `d` of virtual time, signaling every [`STEP`].
pub(super) fn run_stage(stage: &mut impl Stage, d: Duration) {
    let end = stage.now() + d;
    while stage.now() < end {
        let until = (stage.now() + STEP).min(end);
        stage.progress_to(until);
        stage.signal();
    }
}

impl Stage for Meeting {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn progress_to(&mut self, until: Instant) {
        let peers = std::iter::once(&mut self.chair).chain(self.points.iter_mut());
        progress_all(
            &mut self.clock,
            &mut self.net,
            &mut self.server,
            peers,
            until,
        );
    }

    fn signal(&mut self) {
        Meeting::signal(self);
    }
}

impl Meeting {
    /// A chair and `points` points, each point behind `line` (server → point; the way back
    /// is clean), the network's random draws from `seed`. Everyone joins, the chair publishes
    /// and every point receives the chair's audio and camera.
    pub fn new(seed: u64, points: usize, line: LinkConfig) -> Self {
        Self::build(seed, points, line, None)
    }

    /// As [`Meeting::new`], with ICE-TCP: the server announces a passive TCP candidate
    /// ([`server_tcp_addr`]) and every point an active one, as Chromium does; the chair has
    /// UDP only. Whether a point ends up on UDP or TCP is its ICE agent's choice.
    pub fn with_ice_tcp(seed: u64, points: usize, line: LinkConfig) -> Self {
        Self::build(seed, points, line, Some(TcpNet::default()))
    }

    fn build(seed: u64, points: usize, line: LinkConfig, tcp: Option<TcpNet>) -> Self {
        trace_from_env();
        let clock = Clock::new();
        let now = clock.now();
        let mut net = Net::new(seed);
        let mut server = match &tcp {
            Some(t) => SimServer::with_ice_tcp(now, server_addr(), server_tcp_addr(), t.clone()),
            None => SimServer::new(now, server_addr()),
        };
        for key in [LinkKey::To(chair_addr()), LinkKey::From(chair_addr())] {
            net.add_link(key, clean_line());
        }
        let mut chair = SimPeer::publisher(
            now,
            chair_addr(),
            PublisherConfig::default(),
            PeerOptions::default(),
        )
        .expect("chair peer");
        server.join(now, CHAIR, ROOM);
        let offer = chair.offer(now).expect("chair offer");
        let answer = server.publish(now, CHAIR, &offer);
        chair
            .accept_answer(now, &answer)
            .expect("chair applies the answer");
        let mut peers = Vec::new();
        let mut downlinks = Vec::new();
        for i in 0..points {
            let addr = point_addr(i);
            downlinks.push(net.add_link(LinkKey::To(addr), line.clone()));
            net.add_link(LinkKey::From(addr), clean_line());
            let mut point = SimPeer::subscriber(now, addr, PeerOptions::default()).expect("point");
            if let Some(t) = &tcp {
                point = point
                    .with_ice_tcp(t.clone())
                    .expect("an active TCP candidate");
            }
            peers.push(point);
            server.join(now, point_id(i), ROOM);
        }
        let mut m = Self {
            clock,
            net,
            server,
            chair,
            points: peers,
            logs: (0..points).map(|_| PointLog::default()).collect(),
            downlinks,
            tcp: tcp.unwrap_or_default(),
        };
        for i in 0..points {
            m.route(i, Subscription::all(CHAIR));
        }
        m
    }

    /// What point `i` receives from now on.
    pub fn route(&mut self, i: usize, sub: Subscription) {
        let now = self.clock.now();
        self.server.set_receives(now, point_id(i), vec![sub]);
        self.signal();
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }

    /// Runs the meeting for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        run_stage(self, d);
    }

    /// Does what each point's session and browser do with the server's events.
    fn signal(&mut self) {
        let now = self.clock.now();
        let at = self.clock.elapsed();
        for i in 0..self.points.len() {
            for event in self.server.events(point_id(i)) {
                match event {
                    MediaEvent::SubscribeOffer {
                        revision,
                        sdp,
                        tracks,
                        ..
                    } => {
                        let sections = sdp.matches("\nm=").count();
                        self.logs[i].offers.push((at, revision, sections));
                        self.logs[i].tracks = tracks;
                        let answer = match self.points[i].accept_offer(now, &sdp) {
                            Ok(a) => a,
                            Err(e) => {
                                self.logs[i].errors.push(format!("offer {revision}: {e}"));
                                continue;
                            }
                        };
                        if let Err(e) =
                            self.server
                                .subscribe_answer(now, point_id(i), revision, answer)
                        {
                            self.logs[i].errors.push(format!("answer {revision}: {e}"));
                        }
                    }
                    MediaEvent::VideoPaused { tracks } => {
                        self.logs[i].paused.push((at, tracks.len()));
                    }
                    _ => {}
                }
            }
        }
        // The chair's events (its publish connection's state, speaking) matter to no test yet.
        self.server.events(CHAIR);
    }

    /// The video point `i` receives (the stream that carried keyframes).
    pub fn video(&self, i: usize) -> Option<&StreamStats> {
        self.points[i]
            .recorder
            .streams
            .values()
            .find(|s| !s.keyframes.is_empty())
    }

    /// The SSRC of the video point `i` receives.
    pub fn video_ssrc(&self, i: usize) -> Option<u32> {
        self.points[i]
            .recorder
            .streams
            .iter()
            .find(|(_, s)| !s.keyframes.is_empty())
            .map(|(ssrc, _)| *ssrc)
    }

    /// The chair's audio as point `i` receives it.
    pub fn audio(&self, i: usize) -> Option<&StreamStats> {
        self.points[i]
            .recorder
            .streams
            .values()
            .find(|s| !s.video && s.packets > 0)
    }

    /// The height of the picture point `i` was decoding at `t` (from the last keyframe before
    /// it), 0 before the first.
    pub fn height_at(&self, i: usize, t: Duration) -> u16 {
        self.video(i)
            .and_then(|s| s.keyframes.iter().rev().find(|k| k.0 <= t))
            .map_or(0, |k| k.2)
    }

    /// Now, in the clock's terms.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }
}

thread_local! {
    /// The virtual time of the meeting running on this thread, for log lines.
    static VIRTUAL: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
}

/// Log lines from now on carry this virtual time.
pub(super) fn stamp(elapsed: Duration) {
    VIRTUAL.with(|v| v.set(elapsed));
}

/// Stamps log lines with the virtual time.
struct VirtualTime;

impl tracing_subscriber::fmt::time::FormatTime for VirtualTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "{:>9.3}s", VIRTUAL.with(|v| v.get()).as_secs_f64())
    }
}

/// `SIM_LOG=sfu::worker::allocate=debug` (a tracing filter) shows what the worker decided,
/// at the virtual time it decided it.
pub(super) fn trace_from_env() {
    if let Ok(filter) = std::env::var("SIM_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_timer(VirtualTime)
            .with_test_writer()
            .try_init();
    }
}
