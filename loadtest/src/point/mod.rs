//! One simulated point: joins over `/ws`, publishes synthetic VP8 + Opus on its publish
//! connection, answers subscribe offers, and records what it receives per SSRC.

//!
//! # Layout
//! - this module: configuration, the join and the signaling task, the [`Point`] handle.
//! - [`publish`]: the publish tracks (one stream or simulcast layers) and the media task.
//! - [`receive`]: what is recorded about each received stream ([`StreamStats`]).
//! - `peer`: peer connections, codecs, event handling, offer/answer helpers.

mod peer;
pub mod publish;
#[cfg(test)]
mod publish_test;
pub mod receive;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use signaling::protocol::{ClientMessage, PROTOCOL_VERSION, PcKind, ServerMessage};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription, StatsSelector};

use peer::pli;
pub(crate) use peer::{
    answer_offer, build_subscriber, build_subscriber_reporting, negotiated_red, wait_gathered,
};
pub use publish::{RedFormat, SimulcastIds};
pub(crate) use publish::{build_publisher, spawn_media};
pub use receive::{StreamStats, record_stream};

use crate::layers::{Ladder, MAX_LAYERS};
use crate::link::LinkParams;
use crate::mediafile::FileMedia;
use crate::relay::{PointLink, Relay, candidate_addr, rewrite_candidates};
use crate::stats::GapDetector;

/// What one simulated point does.
#[derive(Debug, Clone)]
pub struct PointConfig {
    /// `ws://host:port/ws`
    pub ws_url: String,
    pub token: String,
    pub publish: bool,
    /// Local address for the point's UDP sockets.
    pub bind_ip: IpAddr,
    pub video_fps: u32,
    /// Bytes per delta frame of the single stream; keyframes are 4× this.
    pub video_frame_bytes: usize,
    /// Publish simulcast layers (lowest first) instead of one stream.
    pub publish_layers: Option<Ladder>,
    /// The layers received keyframes are matched against (by resolution).
    pub receive_ladder: Ladder,
    /// Send an unrequested keyframe this often (`None`: only at start and on request).
    pub periodic_keyframes: Option<Duration>,
    /// Emulate this access line (through a userspace relay); `None`: direct.
    pub link: Option<LinkParams>,
    /// Seed of the link emulator (different per point for independent losses).
    pub link_seed: u64,
    /// Time zero of the bitrate series (the scenario's start).
    pub epoch: Instant,
    /// Clips to publish instead of synthetic video and silent audio (each looped).
    pub files: FileMedia,
    /// Redundant audio (RFC 2198): offer RED first and send each Opus frame with the previous
    /// one when the server accepts it; accept RED as a subscriber and recover from it.
    pub red: bool,
    /// Padding-only packets sent after each video frame on each layer, on the layer's own SSRC
    /// and sequence, as Chromium's bandwidth probing does when RTX is not negotiated: the server
    /// must forward none of them and leave no sequence hole for them.
    pub probe_padding: usize,
    /// Test hook: how this point mishandles its first subscribe offer (the server must recover
    /// by restarting the subscribe connection); `None`: it answers every offer.
    pub first_answer_fault: Option<AnswerFault>,
    /// ICE timeouts of the point's connections (disconnected after, then failed after that);
    /// `None`: the engine's defaults (5 s and 25 s). A subscribe connection that fails is
    /// reported with `restart_subscribe`, as the web client does.
    pub ice_timeouts: Option<(Duration, Duration)>,
    /// Temporal layers in every synthetic video layer this point publishes (1: none; 2 or 3 as
    /// Chromium's VP8 simulcast sends them: TID, layer sync and TL0PICIDX in each descriptor).
    pub temporal_layers: u8,
    /// How often the point's connections send transport-wide congestion feedback (`None`:
    /// `rtc`'s 100 ms; Chromium sends it every 50 ms at these rates).
    pub twcc_interval: Option<Duration>,
}

/// A subscriber's wrong handling of one subscribe offer (after applying it, as a client whose
/// answer went wrong would have).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerFault {
    /// An answer whose SDP is not SDP.
    Garbage,
    /// The real answer padded past the protocol's 48 KiB SDP limit.
    Oversized,
    /// No answer at all.
    Silent,
}

impl AnswerFault {
    /// The `subscribe_answer` SDP to send instead of `answer`, or `None` for none.
    fn spoil(self, answer: String) -> Option<String> {
        match self {
            AnswerFault::Garbage => Some("v=0\r\nthis is not an answer\r\n".to_owned()),
            AnswerFault::Oversized => {
                let pad = "a=x-padding:".to_owned() + &"0".repeat(100) + "\r\n";
                let lines = signaling::protocol::MAX_SDP_BYTES / pad.len() + 1;
                Some(answer + &pad.repeat(lines))
            }
            AnswerFault::Silent => None,
        }
    }
}

impl Default for PointConfig {
    fn default() -> Self {
        PointConfig {
            ws_url: String::new(),
            token: String::new(),
            publish: false,
            bind_ip: [127, 0, 0, 1].into(),
            video_fps: 30,
            video_frame_bytes: 4_000,
            publish_layers: None,
            receive_ladder: Ladder::single(0, publish::SINGLE_DIMS.0, publish::SINGLE_DIMS.1),
            periodic_keyframes: None,
            link: None,
            link_seed: 1,
            epoch: Instant::now(),
            files: FileMedia::default(),
            red: false,
            probe_padding: 0,
            first_answer_fault: None,
            ice_timeouts: None,
            temporal_layers: 1,
            twcc_interval: None,
        }
    }
}

/// Per received stream (one remote SSRC).
#[derive(Debug, Default)]
pub struct PointStats {
    /// When the WebSocket connect began (join latency counts from here).
    pub ws_started_at: Option<Instant>,
    pub streams: HashMap<u32, StreamStats>,
    pub plis_received: u64,
    pub keyframes_sent: u64,
    pub packets_sent: u64,
    pub joined_at: Option<Instant>,
    pub subscribe_connected_at: Option<Instant>,
    pub publish_connected_at: Option<Instant>,
    pub errors: Vec<String>,
    /// ICE round-trip time of the subscribe connection, seconds (from the candidate pair).
    pub rtt: Option<f64>,
    /// What was sent on each video layer (the single stream is layer 0).
    pub layers_sent: [LayerSent; MAX_LAYERS],
    /// The floor holder's point code in the last `room_state` (`None`: nobody).
    pub floor: Option<String>,
    /// Whether any `room_state` arrived yet.
    pub room_state_seen: bool,
    /// `upstream` of the last `room_state` (a linked meeting's program: live or lost).
    pub upstream: Option<signaling::protocol::UpstreamState>,
    /// The raised hands of the last `room_state`, in queue order.
    pub hands: Vec<signaling::protocol::HandInfo>,
    /// The point of `hand_up` in the last `room_state` (a hand raised upstream), if any.
    pub hand_up: Option<String>,
    /// `upstream_floor` of the last `room_state` (the relay seat holds the floor upstream).
    pub upstream_floor: bool,
    /// Videos the server last said it paused for this point's link (`video_paused`), and the
    /// most it listed at once.
    pub video_paused: usize,
    pub video_paused_max: usize,
    /// `video_paused` messages that turned the point's notice on or off (none ↔ some videos).
    pub video_paused_changes: u64,
    /// When the point's emulated line started (its rate schedule counts from here).
    pub link_started_at: Option<Instant>,
    /// Publisher: its own audio sends more than 60 ms apart (the generator's lateness, not the
    /// server's or the line's).
    pub audio_send_gaps: GapDetector,
    /// Publisher: the RED and Opus payload types its audio is sent with, when RED was
    /// negotiated (and asked for).
    pub red_sent: Option<RedFormat>,
    /// Subscriber: the payload type its last subscribe answer accepted for RED.
    pub red_payload_type: Option<u8>,
    /// Padding-only probes sent (see [`PointConfig::probe_padding`]).
    pub padding_sent: u64,
    /// Subscribe offers received, and the size of the last one's SDP.
    pub subscribe_offers: u64,
    pub subscribe_offer_bytes: usize,
    /// Subscribe offers that opened a new subscribe connection (`restart`).
    pub subscribe_restarts: u64,
    /// Subscribe connections that failed (each reported to the server with
    /// `restart_subscribe`).
    pub subscribe_failures: u64,
    /// m-lines a subscribe offer gave to another participant's track while the previous offer
    /// still had them carrying a track (never seen inactive in between).
    pub mid_handoffs: u64,
    /// m-lines of the last subscribe offer (active, paused and freed ones alike).
    pub subscribe_offer_mlines: usize,
}

/// What a publisher sent on one video layer.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LayerSent {
    pub packets: u64,
    pub bytes: u64,
    pub keyframes: u64,
    /// PLI/FIR naming this layer's SSRC (or no SSRC we send).
    pub keyframe_requests: u64,
}

pub type SharedStats = Arc<Mutex<PointStats>>;

/// A running point. Dropping it leaves the meeting (the tasks end with the socket).
pub struct Point {
    pub participant: String,
    pub stats: SharedStats,
    /// The emulated access line, when configured.
    pub link: Option<Arc<PointLink>>,
    /// The publish offer and the server's answer, as sent and received.
    pub publish_sdp: Option<(String, String)>,
    control: mpsc::Sender<Control>,
    shutdown: watch::Sender<bool>,
}

pub(crate) enum Control {
    Send(ClientMessage),
    /// Ask the publisher (via the server) for a keyframe for the stream with this SSRC.
    Pli(u32),
    /// The subscribe connection of this generation failed.
    SubscribeFailed(u64),
}

fn lock(stats: &SharedStats) -> std::sync::MutexGuard<'_, PointStats> {
    stats.lock().unwrap_or_else(|e| e.into_inner())
}

impl Point {
    /// Connects, joins and (if configured) publishes. Returns once `joined` arrived and the
    /// publish answer is applied.
    pub async fn join(cfg: PointConfig) -> anyhow::Result<Point> {
        let ws_started_at = Instant::now();
        let link = cfg.link.clone().map(|p| PointLink::new(p, cfg.link_seed));
        let mut relays = Relays::new(link.clone(), cfg.bind_ip);
        let (ws, _) = tokio_tungstenite::connect_async(&cfg.ws_url)
            .await
            .with_context(|| format!("connect {}", cfg.ws_url))?;
        let (mut ws_tx, mut ws_rx) = ws.split();
        let send =
            |m: &ClientMessage| Message::Text(serde_json::to_string(m).unwrap_or_default().into());
        ws_tx
            .send(send(&ClientMessage::Join {
                v: PROTOCOL_VERSION,
                token: cfg.token.clone(),
                resume: None,
                chain: Vec::new(),
            }))
            .await?;
        let participant = loop {
            match next_server(&mut ws_rx).await? {
                ServerMessage::Joined { participant, .. } => break participant,
                ServerMessage::Error { code, message, .. } => {
                    bail!("join refused: {code:?}: {message}")
                }
                _ => continue,
            }
        };
        let stats: SharedStats = Arc::new(Mutex::new(PointStats {
            ws_started_at: Some(ws_started_at),
            link_started_at: link.as_ref().map(|l| l.started),
            joined_at: Some(Instant::now()),
            ..Default::default()
        }));
        let (control_tx, mut control_rx) = mpsc::channel::<Control>(256);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);

        // Publish connection.
        let mut publish_pc = None;
        let mut publish_sdp = None;
        let mut backlog: Vec<ServerMessage> = Vec::new();
        if cfg.publish {
            let (pc, video, audio) =
                build_publisher(&cfg, stats.clone(), control_tx.clone()).await?;
            let offer = pc.create_offer(None).await.map_err(|e| anyhow!("{e}"))?;
            pc.set_local_description(offer)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            wait_gathered(&pc).await;
            let sdp = pc
                .local_description()
                .await
                .ok_or_else(|| anyhow!("no local description"))?
                .sdp;
            ws_tx
                .send(send(&ClientMessage::PublishOffer {
                    v: PROTOCOL_VERSION,
                    sdp: sdp.clone(),
                    sources: Vec::new(),
                }))
                .await?;
            let answer = loop {
                match next_server(&mut ws_rx).await? {
                    ServerMessage::PublishAnswer { sdp, .. } => break sdp,
                    ServerMessage::Error { code, message, .. } => {
                        bail!("publish refused: {code:?}: {message}")
                    }
                    // Offers for the subscribe side may arrive first: handled after.
                    other => backlog.push(other),
                }
            };
            let answer = relays.rewrite(PcKind::Publish, &answer).await?;
            let ids = match cfg.publish_layers {
                Some(_) => Some(SimulcastIds::from_sdp(&answer)?),
                None => None,
            };
            pc.set_remote_description(
                RTCSessionDescription::answer(answer.clone()).map_err(|e| anyhow!("{e}"))?,
            )
            .await
            .map_err(|e| anyhow!("set answer: {e}"))?;
            let red = if cfg.red {
                negotiated_red(&pc).await
            } else {
                None
            };
            lock(&stats).red_sent = red;
            spawn_media(
                cfg.clone(),
                video,
                audio,
                stats.clone(),
                ids,
                red,
                shutdown_rx.clone(),
            );
            publish_pc = Some(pc);
            publish_sdp = Some((sdp, answer));
        }

        // Everything else runs in one task: server messages, subscribe negotiation, control.
        let stats2 = stats.clone();
        let cfg2 = cfg.clone();
        let control_tx2 = control_tx.clone();
        let mut shutdown = shutdown_rx.clone();
        tokio::spawn(async move {
            let mut subscribe: Option<Arc<dyn PeerConnection>> = None;
            // Which subscribe connection is the current one, and the last offer applied on it.
            let mut generation = 0u64;
            let mut applied = 0u64;
            // mid -> sender of the previous offer on this connection.
            let mut carried: HashMap<String, String> = HashMap::new();
            let failures = control_tx2.clone();
            let mut fault = cfg2.first_answer_fault;
            let mut rtt_tick = tokio::time::interval(Duration::from_secs(2));
            backlog.reverse();
            loop {
                let msg = if let Some(m) = backlog.pop() {
                    Ok(m)
                } else {
                    tokio::select! {
                        m = next_server(&mut ws_rx) => m,
                        c = control_rx.recv() => {
                            match c {
                                Some(Control::Send(m)) => { if ws_tx.send(send(&m)).await.is_err() { break } }
                                Some(Control::Pli(ssrc)) => {
                                    if let Some(pc) = &subscribe {
                                        pli(pc, ssrc).await;
                                    }
                                }
                                Some(Control::SubscribeFailed(g)) => {
                                    // Its path is dead and the server offers this connection:
                                    // ask for a new one (docs/protocol.md, `restart_subscribe`).
                                    if g == generation && subscribe.is_some() {
                                        let m = ClientMessage::RestartSubscribe {
                                            v: PROTOCOL_VERSION,
                                            revision: applied,
                                        };
                                        if ws_tx.send(send(&m)).await.is_err() { break }
                                    }
                                }
                                None => break,
                            }
                            continue;
                        }
                        _ = rtt_tick.tick() => {
                            if let Some(pc) = &subscribe {
                                let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
                                let rtt = report
                                    .candidate_pairs()
                                    .map(|p| p.current_round_trip_time)
                                    .filter(|r| *r > 0.0)
                                    .reduce(f64::max);
                                if rtt.is_some() {
                                    lock(&stats2).rtt = rtt;
                                }
                            }
                            continue;
                        }
                        _ = shutdown.changed() => {
                            let _ = ws_tx.send(send(&ClientMessage::Leave { v: PROTOCOL_VERSION })).await;
                            break;
                        }
                    }
                };
                let msg = match msg {
                    Ok(m) => m,
                    Err(_) => break,
                };
                match msg {
                    ServerMessage::SubscribeOffer {
                        revision,
                        sdp,
                        restart,
                        tracks,
                        ..
                    } => {
                        if restart {
                            carried.clear();
                        }
                        let handoffs = tracks
                            .iter()
                            .filter(|t| {
                                carried
                                    .get(&t.mid)
                                    .is_some_and(|before| *before != t.participant)
                            })
                            .count() as u64;
                        carried = tracks
                            .iter()
                            .map(|t| (t.mid.clone(), t.participant.clone()))
                            .collect();
                        {
                            let mut s = lock(&stats2);
                            s.mid_handoffs += handoffs;
                            s.subscribe_offers += 1;
                            s.subscribe_offer_bytes = sdp.len();
                            s.subscribe_restarts += u64::from(restart);
                            s.subscribe_offer_mlines = sdp.matches("\nm=").count();
                        }
                        if restart && let Some(old) = subscribe.take() {
                            let _ = old.close().await;
                        }
                        if subscribe.is_none() {
                            generation += 1;
                            let report = Some((failures.clone(), generation));
                            match build_subscriber_reporting(&cfg2, stats2.clone(), report).await {
                                Ok(pc) => subscribe = Some(pc),
                                Err(e) => {
                                    lock(&stats2).errors.push(format!("subscriber: {e}"));
                                    break;
                                }
                            }
                        }
                        let Some(pc) = &subscribe else { break };
                        let sdp = match relays.rewrite(PcKind::Subscribe, &sdp).await {
                            Ok(s) => s,
                            Err(e) => {
                                lock(&stats2).errors.push(format!("relay: {e}"));
                                break;
                            }
                        };
                        match answer_offer(pc, sdp).await {
                            Ok(sdp) => {
                                if cfg2.red {
                                    lock(&stats2).red_payload_type = peer::red_payload_type(&sdp);
                                }
                                let sdp = match fault.take() {
                                    Some(f) => match f.spoil(sdp) {
                                        Some(spoilt) => spoilt,
                                        None => continue,
                                    },
                                    None => sdp,
                                };
                                applied = revision;
                                let m = ClientMessage::SubscribeAnswer {
                                    v: PROTOCOL_VERSION,
                                    revision,
                                    sdp,
                                };
                                if ws_tx.send(send(&m)).await.is_err() {
                                    break;
                                }
                            }
                            Err(e) => lock(&stats2).errors.push(format!("subscribe answer: {e}")),
                        }
                    }
                    ServerMessage::Candidate {
                        pc: which,
                        candidate,
                        ..
                    } => {
                        let target: Option<&Arc<dyn PeerConnection>> = match which {
                            PcKind::Publish => publish_pc.as_ref(),
                            PcKind::Subscribe => subscribe.as_ref(),
                        };
                        if let Some(pc) = target {
                            let mut c = relay::peer::candidate_init(candidate);
                            match relays.rewrite(which, &c.candidate).await {
                                Ok(line) => c.candidate = line,
                                Err(e) => lock(&stats2).errors.push(format!("relay: {e}")),
                            }
                            let _ = pc.add_ice_candidate(c).await;
                        }
                    }
                    ServerMessage::Error { code, message, .. } => {
                        lock(&stats2).errors.push(format!("{code:?}: {message}"));
                    }
                    ServerMessage::RoomState {
                        floor,
                        upstream,
                        hands,
                        hand_up,
                        upstream_floor,
                        ..
                    } => {
                        let mut s = lock(&stats2);
                        s.hand_up = hand_up.map(|h| h.point);
                        s.upstream_floor = upstream_floor;
                        s.floor = floor.map(|f| f.point);
                        s.hands = hands;
                        s.room_state_seen = true;
                        s.upstream = upstream;
                    }
                    ServerMessage::VideoPaused { tracks, .. } => {
                        let mut s = lock(&stats2);
                        if (s.video_paused == 0) != tracks.is_empty() {
                            s.video_paused_changes += 1;
                        }
                        s.video_paused = tracks.len();
                        s.video_paused_max = s.video_paused_max.max(tracks.len());
                    }
                    ServerMessage::Bye { .. } => break,
                    _ => {}
                }
            }
            if let Some(pc) = subscribe {
                let _ = pc.close().await;
            }
            if let Some(pc) = publish_pc {
                let _ = pc.close().await;
            }
            drop(relays);
        });
        Ok(Point {
            participant,
            stats,
            link,
            publish_sdp,
            control: control_tx,
            shutdown: shutdown_tx,
        })
    }

    /// Sends a PLI for a received stream (as a subscriber whose decoder lost the picture would).
    pub async fn request_keyframe(&self, ssrc: u32) {
        let _ = self.control.send(Control::Pli(ssrc)).await;
    }

    /// Sends a raw protocol message (tests of bad input use this).
    pub async fn send(&self, m: ClientMessage) {
        let _ = self.control.send(Control::Send(m)).await;
    }

    pub fn snapshot(&self) -> PointStats {
        let s = lock(&self.stats);
        PointStats {
            ws_started_at: s.ws_started_at,
            rtt: s.rtt,
            streams: s.streams.clone(),
            plis_received: s.plis_received,
            keyframes_sent: s.keyframes_sent,
            packets_sent: s.packets_sent,
            joined_at: s.joined_at,
            subscribe_connected_at: s.subscribe_connected_at,
            publish_connected_at: s.publish_connected_at,
            errors: s.errors.clone(),
            layers_sent: s.layers_sent,
            floor: s.floor.clone(),
            room_state_seen: s.room_state_seen,
            upstream: s.upstream,
            hands: s.hands.clone(),
            hand_up: s.hand_up.clone(),
            upstream_floor: s.upstream_floor,
            video_paused: s.video_paused,
            video_paused_max: s.video_paused_max,
            video_paused_changes: s.video_paused_changes,
            link_started_at: s.link_started_at,
            audio_send_gaps: s.audio_send_gaps.clone(),
            red_sent: s.red_sent,
            red_payload_type: s.red_payload_type,
            padding_sent: s.padding_sent,
            subscribe_offers: s.subscribe_offers,
            subscribe_offer_bytes: s.subscribe_offer_bytes,
            subscribe_restarts: s.subscribe_restarts,
            subscribe_failures: s.subscribe_failures,
            mid_handoffs: s.mid_handoffs,
            subscribe_offer_mlines: s.subscribe_offer_mlines,
        }
    }

    pub fn leave(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for Point {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

pub(crate) async fn next_server<S>(rx: &mut S) -> anyhow::Result<ServerMessage>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match rx.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(&t)
                    .with_context(|| format!("bad server message: {t}"));
            }
            Some(Ok(Message::Close(f))) => bail!("closed by server: {f:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection closed"),
        }
    }
}

/// The relays of one point, one per (connection, server address), created as the server's
/// candidates appear.
struct Relays {
    link: Option<Arc<PointLink>>,
    bind_ip: IpAddr,
    active: HashMap<(bool, SocketAddr), Relay>,
}

impl Relays {
    fn new(link: Option<Arc<PointLink>>, bind_ip: IpAddr) -> Relays {
        Relays {
            link,
            bind_ip,
            active: HashMap::new(),
        }
    }

    /// The SDP (or candidate line) with every server UDP candidate replaced by its relay.
    async fn rewrite(&mut self, pc: PcKind, sdp: &str) -> anyhow::Result<String> {
        let Some(link) = &self.link else {
            return Ok(sdp.to_owned());
        };
        let publish = matches!(pc, PcKind::Publish);
        for line in sdp.lines() {
            if let Some((addr, _)) = candidate_addr(line)
                && !self.active.contains_key(&(publish, addr))
            {
                let relay = Relay::start(link.clone(), addr, self.bind_ip)
                    .await
                    .context("start relay")?;
                self.active.insert((publish, addr), relay);
            }
        }
        Ok(rewrite_candidates(sdp, |a| {
            self.active.get(&(publish, a)).map(|r| r.client_facing)
        }))
    }
}
