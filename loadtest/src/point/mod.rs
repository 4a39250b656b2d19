//! One simulated point: joins over `/ws`, publishes synthetic VP8 + Opus on its publish
//! connection, answers subscribe offers, and records what it receives per SSRC.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use signaling::protocol::{ClientMessage, IceCandidate, PROTOCOL_VERSION, PcKind, ServerMessage};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCPeerConnectionState,
    RTCSessionDescription, StatsSelector, register_default_interceptors,
};

use crate::link::LinkParams;
use crate::media::{OPUS_SILENCE, vp8_frame, vp8_packetise};
use crate::mediafile::{FileMedia, opus_packet_duration};
use crate::relay::{PointLink, Relay, candidate_addr, rewrite_candidates};
use crate::rtcp_tap::RtcpTap;
use crate::stats::{FreezeDetector, GapDetector, SeqTracker, Series};

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
    /// Bytes per delta frame; keyframes are 4× this.
    pub video_frame_bytes: usize,
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
            periodic_keyframes: None,
            link: None,
            link_seed: 1,
            epoch: Instant::now(),
            files: FileMedia::default(),
        }
    }
}

/// Per received stream (one remote SSRC).
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    pub kind: Option<String>,
    /// The sender's participant id (msid stream id).
    pub stream_id: String,
    pub packets: u64,
    pub bytes: u64,
    pub first_seq: Option<u16>,
    pub last_seq: Option<u16>,
    /// Packets whose sequence number was not last+1 (gaps or reordering).
    pub discontinuities: u64,
    pub keyframes: u64,
    pub payload_types: Vec<u8>,
    pub first_packet_at: Option<Instant>,
    pub first_keyframe_at: Option<Instant>,
    /// When the first keyframe was complete (every packet from its start to its marker).
    pub first_complete_keyframe_at: Option<Instant>,
    /// Gaps at arrival, filled later (NACK), never filled.
    pub seq: SeqTracker,
    /// Frames (marker packets of a new timestamp) and freezes; video only.
    pub freezes: FreezeDetector,
    /// Audio packets more than 60 ms apart.
    pub audio_gaps: GapDetector,
    /// Payload bytes per second since the scenario's epoch.
    pub series: Series,
    /// Keyframes whose dimensions differ from the previous keyframe's (a simulcast layer
    /// switch seen by the receiver).
    pub layer_switches: u64,
    pub dimensions: Option<(u16, u16)>,
    last_frame_ts: Option<u32>,
    /// The first keyframe being assembled: its timestamp, first and last extended sequence.
    pending_key: Option<(u32, u64)>,
    key_marker: Option<u64>,
}

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
}

pub type SharedStats = Arc<Mutex<PointStats>>;

/// A running point. Dropping it leaves the meeting (the tasks end with the socket).
pub struct Point {
    pub participant: String,
    pub stats: SharedStats,
    /// The emulated access line, when configured.
    pub link: Option<Arc<PointLink>>,
    control: mpsc::Sender<Control>,
    shutdown: watch::Sender<bool>,
}

pub(crate) enum Control {
    Send(ClientMessage),
    /// Ask the publisher (via the server) for a keyframe for the stream with this SSRC.
    Pli(u32),
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
            joined_at: Some(Instant::now()),
            ..Default::default()
        }));
        let (control_tx, mut control_rx) = mpsc::channel::<Control>(256);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);

        // Publish connection.
        let mut publish_pc = None;
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
                    sdp,
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
            pc.set_remote_description(
                RTCSessionDescription::answer(answer).map_err(|e| anyhow!("{e}"))?,
            )
            .await
            .map_err(|e| anyhow!("set answer: {e}"))?;
            spawn_media(
                cfg.clone(),
                video,
                audio,
                stats.clone(),
                shutdown_rx.clone(),
            );
            publish_pc = Some(pc);
        }

        // Everything else runs in one task: server messages, subscribe negotiation, control.
        let stats2 = stats.clone();
        let cfg2 = cfg.clone();
        let mut shutdown = shutdown_rx.clone();
        tokio::spawn(async move {
            let mut subscribe: Option<Arc<dyn PeerConnection>> = None;
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
                    ServerMessage::SubscribeOffer { revision, sdp, .. } => {
                        if subscribe.is_none() {
                            match build_subscriber(&cfg2, stats2.clone()).await {
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
                            let mut c = to_init(candidate);
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

async fn next_server<S>(rx: &mut S) -> anyhow::Result<ServerMessage>
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

fn to_init(c: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_m_line_index,
        username_fragment: c.username_fragment,
        ..Default::default()
    }
}

fn media_engine() -> anyhow::Result<MediaEngine> {
    let mut m = MediaEngine::default();
    let fb = |t: &str, p: &str| RTCPFeedback {
        typ: t.into(),
        parameter: p.into(),
    };
    m.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.into(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![fb("nack", ""), fb("nack", "pli"), fb("ccm", "fir")],
            },
            payload_type: 96,
        },
        RtpCodecKind::Video,
    )?;
    m.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus(),
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )?;
    Ok(m)
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.into(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
        rtcp_feedback: vec![],
    }
}

fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.into(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

struct Handler {
    stats: SharedStats,
    epoch: Instant,
    gathered: watch::Sender<bool>,
    publish: bool,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            let mut s = lock(&self.stats);
            let at = Some(Instant::now());
            if self.publish {
                s.publish_connected_at = at;
            } else {
                s.subscribe_connected_at = at;
            }
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let stats = self.stats.clone();
        let epoch = self.epoch;
        tokio::spawn(async move {
            let kind = track.kind().await;
            let stream_id = track.stream_id().await;
            while let Some(evt) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(p) = evt {
                    record(&stats, epoch, kind, &stream_id, &p);
                }
            }
        });
    }
}

fn record(
    stats: &SharedStats,
    epoch: Instant,
    kind: RtpCodecKind,
    stream_id: &str,
    p: &rtp::Packet,
) {
    let now = Instant::now();
    let mut s = lock(stats);
    let st = s.streams.entry(p.header.ssrc).or_default();
    record_stream(st, now, epoch, kind, stream_id, p);
}

/// Updates one stream's statistics with an arriving packet.
pub fn record_stream(
    st: &mut StreamStats,
    now: Instant,
    epoch: Instant,
    kind: RtpCodecKind,
    stream_id: &str,
    p: &rtp::Packet,
) {
    if st.kind.is_none() {
        st.kind = Some(kind.to_string());
        st.stream_id = stream_id.to_owned();
    }
    st.packets += 1;
    st.bytes += p.payload.len() as u64;
    st.series.add(epoch, now, p.payload.len());
    if st.first_packet_at.is_none() {
        st.first_packet_at = Some(now);
    }
    let seq = p.header.sequence_number;
    if st.first_seq.is_none() {
        st.first_seq = Some(seq);
    } else if let Some(last) = st.last_seq
        && seq != last.wrapping_add(1)
    {
        st.discontinuities += 1;
    }
    st.last_seq = Some(seq);
    let ext = st.seq.on_packet(seq);
    if !st.payload_types.contains(&p.header.payload_type) {
        st.payload_types.push(p.header.payload_type);
    }
    if kind == RtpCodecKind::Audio {
        st.audio_gaps.on_packet(now);
        return;
    }
    if kind != RtpCodecKind::Video {
        return;
    }
    let pl = &p.payload;
    let ts = p.header.timestamp;
    let start_of_key = pl.len() > 4
        && pl[0] & 0x10 != 0
        && pl[0] & 0x07 == 0
        && vp8_header_offset(pl).is_some_and(|o| pl.get(o).is_some_and(|b| b & 1 == 0));
    if start_of_key {
        st.keyframes += 1;
        if st.first_keyframe_at.is_none() {
            st.first_keyframe_at = Some(now);
        }
        if st.first_complete_keyframe_at.is_none() {
            st.pending_key = Some((ts, ext));
        }
        if let Some(o) = vp8_header_offset(pl)
            && let Some(h) = pl.get(o + 6..o + 10)
        {
            let dims = (
                u16::from_le_bytes([h[0], h[1]]) & 0x3FFF,
                u16::from_le_bytes([h[2], h[3]]) & 0x3FFF,
            );
            if st.dimensions.is_some_and(|d| d != dims) {
                st.layer_switches += 1;
            }
            st.dimensions = Some(dims);
        }
    }
    if p.header.marker && st.last_frame_ts != Some(ts) {
        st.last_frame_ts = Some(ts);
        st.freezes.on_frame(now);
    }
    // The first keyframe is complete when its start and marker arrived with nothing missing
    // between (the marker or a retransmission may come last).
    if let Some((key_ts, start)) = st.pending_key
        && ts == key_ts
    {
        if p.header.marker {
            st.key_marker = Some(ext);
        }
        if let Some(end) = st.key_marker
            && st.seq.complete(start, end)
        {
            st.first_complete_keyframe_at = Some(now);
            st.pending_key = None;
        }
    }
}

fn vp8_header_offset(p: &[u8]) -> Option<usize> {
    let mut at = 1;
    if p[0] & 0x80 != 0 {
        let x = *p.get(at)?;
        at += 1;
        if x & 0x80 != 0 {
            at += if p.get(at)? & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1;
        }
        if x & 0x30 != 0 {
            at += 1;
        }
    }
    Some(at)
}

async fn new_pc(
    cfg: &PointConfig,
    handler: Arc<Handler>,
    tap: bool,
) -> anyhow::Result<Arc<dyn PeerConnection>> {
    let mut media = media_engine()?;
    let registry = if tap {
        Registry::new().with(Slot::from(14_000), RtcpTap::default())
    } else {
        Registry::new()
    };
    let registry = register_default_interceptors(registry, &mut media)?;
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec![format!("{}:0", cfg.bind_ip)])
        .build()
        .await
        .map_err(|e| anyhow!("peer connection: {e}"))?;
    Ok(Arc::new(pc))
}

pub(crate) async fn wait_gathered(pc: &Arc<dyn PeerConnection>) {
    // The handler flips `gathered`; host-only gathering on loopback completes in milliseconds.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(d) = pc.local_description().await
            && d.sdp.contains("a=candidate")
        {
            // Give the gatherer a moment to finish the remaining candidates.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) async fn build_publisher(
    cfg: &PointConfig,
    stats: SharedStats,
    _control: mpsc::Sender<Control>,
) -> anyhow::Result<(
    Arc<dyn PeerConnection>,
    Arc<TrackLocalStaticRTP>,
    Arc<TrackLocalStaticRTP>,
)> {
    let (gathered, _) = watch::channel(false);
    let pc = new_pc(
        cfg,
        Arc::new(Handler {
            stats,
            epoch: cfg.epoch,
            gathered,
            publish: true,
        }),
        true,
    )
    .await?;
    let track = |kind: RtpCodecKind, codec: RTCRtpCodec, name: &str| {
        Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "sim".into(),
            format!("sim-{name}"),
            format!("sim-{name}"),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(rand::random::<u32>() | 1),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        )))
    };
    let video = track(RtpCodecKind::Video, vp8(), "video");
    let audio = track(RtpCodecKind::Audio, opus(), "audio");
    pc.add_track(video.clone() as Arc<dyn TrackLocal>)
        .await
        .map_err(|e| anyhow!("add video: {e}"))?;
    pc.add_track(audio.clone() as Arc<dyn TrackLocal>)
        .await
        .map_err(|e| anyhow!("add audio: {e}"))?;
    Ok((pc, video, audio))
}

pub(crate) async fn build_subscriber(
    cfg: &PointConfig,
    stats: SharedStats,
) -> anyhow::Result<Arc<dyn PeerConnection>> {
    let (gathered, _) = watch::channel(false);
    new_pc(
        cfg,
        Arc::new(Handler {
            stats,
            epoch: cfg.epoch,
            gathered,
            publish: false,
        }),
        false,
    )
    .await
}

pub(crate) async fn answer_offer(
    pc: &Arc<dyn PeerConnection>,
    sdp: String,
) -> anyhow::Result<String> {
    pc.set_remote_description(RTCSessionDescription::offer(sdp).map_err(|e| anyhow!("{e}"))?)
        .await
        .map_err(|e| anyhow!("set offer: {e}"))?;
    let answer = pc.create_answer(None).await.map_err(|e| anyhow!("{e}"))?;
    pc.set_local_description(answer)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    wait_gathered(pc).await;
    Ok(pc
        .local_description()
        .await
        .ok_or_else(|| anyhow!("no local description"))?
        .sdp)
}

async fn pli(pc: &Arc<dyn PeerConnection>, ssrc: u32) {
    for r in pc.get_receivers().await {
        let track = r.track();
        if track.ssrcs().await.contains(&ssrc) {
            let _ = track
                .write_rtcp(vec![Box::new(PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc: ssrc,
                })])
                .await;
        }
    }
}

/// Sends media until shutdown: Opus every 20 ms, VP8 at `video_fps` with a keyframe at start,
/// periodically if configured, and whenever a keyframe request arrives.
///
/// With clips ([`PointConfig::files`]): the IVF's frames in order at `video_fps`, looping, with
/// the file's own keyframes (a keyframe request skips ahead to the next one, as an encoder would
/// make one now; `periodic_keyframes` does not apply); the Ogg's Opus packets in order, looping,
/// each sent after the previous packet's duration (from its TOC byte).
pub(crate) fn spawn_media(
    cfg: PointConfig,
    video: Arc<TrackLocalStaticRTP>,
    audio: Arc<TrackLocalStaticRTP>,
    stats: SharedStats,
    mut shutdown: watch::Receiver<bool>,
) {
    let (key_tx, mut key_rx) = mpsc::channel::<()>(8);
    let video_rtcp = video.clone();
    let stats_rtcp = stats.clone();
    tokio::spawn(async move {
        while let Some(evt) = video_rtcp.poll().await {
            if let TrackLocalEvent::OnRtcpPacket(packets) = evt
                && packets
                    .iter()
                    .any(|p| p.as_any().is::<PictureLossIndication>())
            {
                lock(&stats_rtcp).plis_received += 1;
                let _ = key_tx.try_send(());
            }
        }
    });
    tokio::spawn(async move {
        let video_ssrc = video.track().await.ssrcs().next().unwrap_or(1);
        let audio_ssrc = audio.track().await.ssrcs().next().unwrap_or(2);
        let fps = cfg.video_fps.max(1);
        let mut video_tick = tokio::time::interval(Duration::from_secs(1) / fps);
        let mut next_audio = tokio::time::Instant::now();
        let (mut audio_at, mut video_at) = (0usize, 0usize);
        let (mut vseq, mut aseq) = (rand::random::<u16>(), rand::random::<u16>());
        let (mut vts, mut ats) = (rand::random::<u32>(), rand::random::<u32>());
        let mut picture_id: u16 = 0;
        let mut frames: u64 = 0;
        let mut want_key = true;
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = key_rx.recv() => want_key = true,
                _ = tokio::time::sleep_until(next_audio) => {
                    let (payload, duration) = match &cfg.files.audio {
                        Some(clip) => {
                            let p = clip.packets[audio_at % clip.packets.len()].clone();
                            audio_at = audio_at.wrapping_add(1);
                            let d = opus_packet_duration(&p).unwrap_or(Duration::from_millis(20));
                            (p, d)
                        }
                        None => (bytes::Bytes::from_static(&OPUS_SILENCE), Duration::from_millis(20)),
                    };
                    next_audio += duration;
                    let p = rtp::Packet {
                        header: rtp::header::Header {
                            version: 2,
                            payload_type: 111,
                            sequence_number: aseq,
                            timestamp: ats,
                            ssrc: audio_ssrc,
                            marker: false,
                            ..Default::default()
                        },
                        payload,
                    };
                    aseq = aseq.wrapping_add(1);
                    // 48 kHz RTP clock.
                    ats = ats.wrapping_add((duration.as_micros() * 48 / 1_000) as u32);
                    if audio.write_rtp(p).await.is_ok() {
                        lock(&stats).packets_sent += 1;
                    }
                }
                _ = video_tick.tick() => {
                    let periodic = cfg.periodic_keyframes.is_some_and(|every| {
                        let every_frames = (every.as_secs_f64() * f64::from(fps)).max(1.0) as u64;
                        frames > 0 && frames.is_multiple_of(every_frames)
                    });
                    let (key, payloads) = match &cfg.files.video {
                        Some(clip) => {
                            if want_key {
                                video_at = clip.next_keyframe(video_at);
                            }
                            let frame = &clip.frames[video_at];
                            video_at = (video_at + 1) % clip.frames.len();
                            (frame.keyframe, vp8_packetise(picture_id, &frame.data))
                        }
                        None => {
                            let key = want_key || periodic;
                            let size = if key { cfg.video_frame_bytes * 4 } else { cfg.video_frame_bytes };
                            (key, vp8_frame(picture_id, key, size, 640, 360))
                        }
                    };
                    want_key = false;
                    let n = payloads.len();
                    for (i, payload) in payloads.into_iter().enumerate() {
                        let p = rtp::Packet {
                            header: rtp::header::Header {
                                version: 2,
                                payload_type: 96,
                                sequence_number: vseq,
                                timestamp: vts,
                                ssrc: video_ssrc,
                                marker: i + 1 == n,
                                ..Default::default()
                            },
                            payload,
                        };
                        vseq = vseq.wrapping_add(1);
                        if video.write_rtp(p).await.is_ok() {
                            lock(&stats).packets_sent += 1;
                        }
                    }
                    if key {
                        lock(&stats).keyframes_sent += 1;
                    }
                    picture_id = picture_id.wrapping_add(1) & 0x7FFF;
                    vts = vts.wrapping_add(90_000 / fps);
                    frames += 1;
                }
            }
        }
    });
}
