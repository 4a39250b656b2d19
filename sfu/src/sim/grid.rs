//! A chair's grid in virtual time: points publishing simulcast on clean lines, and one viewer
//! (the chair) receiving every point's camera as a thumbnail behind its own line. What it is
//! for: a chair's link carries many paused videos at once after a dip, and they must come back
//! together, not one per probe (Chromium's `chairwalk.mjs` caught 36 of 45 thumbnails still
//! paused after 60 s when each probe brought back one).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Clock;
use super::meeting::{
    ROOM, Stage, clean_line, progress_all, run_stage, server_addr, trace_from_env,
};
use super::net::{LinkConfig, LinkId, LinkKey, Net};
use super::peer::{PeerOptions, SimPeer};
use super::publish::PublisherConfig;
use super::server::SimServer;
use super::vp8::LayerSpec;
use crate::api::{MediaEvent, ParticipantId, Subscription};

const VIEWER: ParticipantId = ParticipantId(1);

fn viewer_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 1, 1], 5000))
}

fn publisher_addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 3, i as u8], 5000))
}

fn publisher_id(i: usize) -> ParticipantId {
    ParticipantId(200 + i as u64)
}

pub struct Grid {
    pub clock: Clock,
    pub net: Net,
    pub server: SimServer,
    pub publishers: Vec<SimPeer>,
    pub viewer: SimPeer,
    /// The line from the server to the viewer.
    pub downlink: LinkId,
    /// Video-paused notices to the viewer: (virtual time, how many videos paused).
    pub paused: Vec<(Duration, usize)>,
    pub errors: Vec<String>,
}

impl Grid {
    /// `points` publishers (two simulcast layers each: a thumbnail only needs the lowest) and
    /// the viewer behind `line`, receiving every camera as a thumbnail, without audio (a
    /// chair's grid is muted but for the floor).
    pub fn new(seed: u64, points: usize, line: LinkConfig) -> Self {
        trace_from_env();
        let clock = Clock::new();
        let now = clock.now();
        let mut net = Net::new(seed);
        let mut server = SimServer::new(now, server_addr());
        let config = PublisherConfig {
            layers: vec![
                ("q".to_owned(), LayerSpec::new(320, 180, 150)),
                ("h".to_owned(), LayerSpec::new(640, 360, 500)),
            ],
            audio: true,
        };
        let mut publishers = Vec::new();
        for i in 0..points {
            let addr = publisher_addr(i);
            for key in [LinkKey::To(addr), LinkKey::From(addr)] {
                net.add_link(key, clean_line());
            }
            let mut p = SimPeer::publisher(now, addr, config.clone(), PeerOptions::default())
                .expect("publisher peer");
            server.join(now, publisher_id(i), ROOM);
            let offer = p.offer(now).expect("publisher offer");
            let answer = server.publish(now, publisher_id(i), &offer);
            p.accept_answer(now, &answer)
                .expect("publisher applies the answer");
            publishers.push(p);
        }
        let downlink = net.add_link(LinkKey::To(viewer_addr()), line);
        net.add_link(LinkKey::From(viewer_addr()), clean_line());
        let viewer =
            SimPeer::subscriber(now, viewer_addr(), PeerOptions::default()).expect("viewer");
        server.join(now, VIEWER, ROOM);
        let subs = (0..points)
            .map(|i| Subscription {
                audio: false,
                screen: false,
                thumbnail: true,
                ..Subscription::all(publisher_id(i))
            })
            .collect();
        server.set_receives(now, VIEWER, subs);
        let mut g = Self {
            clock,
            net,
            server,
            publishers,
            viewer,
            downlink,
            paused: Vec::new(),
            errors: Vec::new(),
        };
        g.signal();
        g
    }

    /// Runs the grid for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        run_stage(self, d);
    }

    /// The viewer's session: offers answered, notices kept; the publishers' events dropped.
    fn signal(&mut self) {
        let now = self.clock.now();
        let at = self.clock.elapsed();
        for event in self.server.events(VIEWER) {
            match event {
                MediaEvent::SubscribeOffer { revision, sdp, .. } => {
                    match self.viewer.accept_offer(now, &sdp) {
                        Ok(answer) => {
                            if let Err(e) =
                                self.server.subscribe_answer(now, VIEWER, revision, answer)
                            {
                                self.errors.push(format!("answer {revision}: {e}"));
                            }
                        }
                        Err(e) => self.errors.push(format!("offer {revision}: {e}")),
                    }
                }
                MediaEvent::VideoPaused { tracks } => self.paused.push((at, tracks.len())),
                _ => {}
            }
        }
        for i in 0..self.publishers.len() {
            self.server.events(publisher_id(i));
        }
    }

    /// How many thumbnails decoded at least `frames` frames in second `s`.
    pub fn playing_in(&self, s: u64, frames: u64) -> usize {
        self.viewer
            .recorder
            .streams
            .values()
            .filter(|v| v.video)
            .filter(|v| {
                v.seconds
                    .get(&s)
                    .is_some_and(|x| x.frames_by_tid.iter().sum::<u64>() >= frames)
            })
            .count()
    }
}

impl Stage for Grid {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn progress_to(&mut self, until: Instant) {
        let peers = std::iter::once(&mut self.viewer).chain(self.publishers.iter_mut());
        progress_all(
            &mut self.clock,
            &mut self.net,
            &mut self.server,
            peers,
            until,
        );
    }

    fn signal(&mut self) {
        Grid::signal(self);
    }
}
