//! A client peer connection as Chromium would be one, on `rtc`'s sans-I/O engine: full ICE
//! (controlling against the server's ICE-lite), one host UDP candidate at its fake address,
//! Chromium's codecs and feedback. Two kinds: a publisher that offers audio and VP8 simulcast
//! and sends synthetic media (`publish.rs`), and a subscriber that answers the server's offers
//! and records what it receives (`record.rs`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::interceptor::{
    NackGeneratorBuilder, Registry, Slot, TaggedPacket, TwccReceiverBuilder, TwccSenderBuilder,
};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_VP8;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::Node;
use super::engine::{
    RtcpSeen, RtxMap, chromium_media_engine, err, host_candidate, look_at_rtcp,
    tcp_active_candidate, unwrap_rtx,
};
use super::publish::{PublishMedia, PublisherConfig};
use super::record::Recorder;
use super::tcp::{PeerTcp, TcpNet};
use super::transport_numbers::{TransportNumbers, log_transport_numbers};
use crate::read_hook::ReadHook;

/// Knobs of a client's feedback.
#[derive(Debug, Clone, Copy)]
pub struct PeerOptions {
    /// Transport-wide feedback period (Chromium: about every 50-100 ms).
    pub twcc_interval: Duration,
    /// NACK generator period.
    pub nack_interval: Duration,
}

impl Default for PeerOptions {
    fn default() -> Self {
        Self {
            twcc_interval: Duration::from_millis(100),
            nack_interval: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Publisher,
    Subscriber,
    ServerLike,
}

/// A simulated client.
pub struct SimPeer {
    addr: SocketAddr,
    pub pc: RTCPeerConnection,
    pub connected: bool,
    /// Errors the engine returned on input, with what was being done; a healthy run has none.
    pub errors: Vec<String>,
    pub rtcp_seen: Arc<RtcpSeen>,
    pub recorder: Recorder,
    publish: Option<PublishMedia>,
    /// Shared with the RTX hook in the interceptor chain; updated at each remote description.
    rtx: Arc<Mutex<RtxMap>>,
    /// The transport-wide numbers of what arrived (see `transport_numbers.rs`).
    pub transport_numbers: Arc<Mutex<TransportNumbers>>,
    /// ICE-TCP streams, for a peer with an active TCP candidate ([`SimPeer::with_ice_tcp`]).
    tcp: Option<PeerTcp>,
}

impl SimPeer {
    /// A publisher: offers audio and VP8 simulcast (call [`SimPeer::offer`]), and sends media
    /// from the moment it is connected.
    pub fn publisher(
        now: Instant,
        addr: SocketAddr,
        config: PublisherConfig,
        options: PeerOptions,
    ) -> Result<Self, String> {
        let mut peer = Self::build(now, addr, options, Flavor::Publisher)?;
        peer.publish = Some(PublishMedia::add_tracks(&mut peer.pc, addr, config)?);
        Ok(peer)
    }

    /// A subscriber: answers offers ([`SimPeer::accept_offer`]) and records what arrives.
    pub fn subscriber(
        now: Instant,
        addr: SocketAddr,
        options: PeerOptions,
    ) -> Result<Self, String> {
        Self::build(now, addr, options, Flavor::Subscriber)
    }

    /// A peer that stands in for the server in tests without one: ICE-lite, numbering what it
    /// sends (transport-wide sequence numbers), and, with `media`, sending it (one layer with
    /// an empty rid is a plain, non-simulcast track).
    pub fn server_like(
        now: Instant,
        addr: SocketAddr,
        options: PeerOptions,
        media: Option<PublisherConfig>,
    ) -> Result<Self, String> {
        let mut peer = Self::build(now, addr, options, Flavor::ServerLike)?;
        if let Some(config) = media {
            peer.publish = Some(PublishMedia::add_tracks(&mut peer.pc, addr, config)?);
        }
        Ok(peer)
    }

    fn build(
        now: Instant,
        addr: SocketAddr,
        options: PeerOptions,
        flavor: Flavor,
    ) -> Result<Self, String> {
        let mut media = chromium_media_engine()?;
        let seen = Arc::new(RtcpSeen::default());
        let hook_seen = seen.clone();
        let rtx = Arc::new(Mutex::new(RtxMap::default()));
        let hook_rtx = rtx.clone();
        let numbers = Arc::new(Mutex::new(TransportNumbers::default()));
        let (hook_numbers, numbers_rtx) = (numbers.clone(), rtx.clone());
        let mut registry = Registry::new()
            .with(
                Slot::from(14_000),
                ReadHook::new(move |msg: &mut TaggedPacket| look_at_rtcp(&hook_seen, msg)),
            )
            // Below the NACK generator (7,000), above the FEC decoder: see `unwrap_rtx`.
            .with(
                Slot::from(6_500),
                ReadHook::new(move |msg: &mut TaggedPacket| unwrap_rtx(&hook_rtx, msg)),
            )
            // Closer to the wire than the RTX hook: the numbers as they were sent.
            .with(
                Slot::from(6_400),
                ReadHook::new(move |msg: &mut TaggedPacket| {
                    log_transport_numbers(&hook_numbers, &numbers_rtx, msg)
                }),
            );
        if flavor != Flavor::Subscriber {
            // Chromium numbers every packet it sends (transport-wide sequence numbers), and so
            // does the server on the connections it sends media on.
            registry = registry.with(Slot::TwccSender, TwccSenderBuilder::new().build());
        }
        let registry = register_default_interceptors(registry, &mut media).map_err(err)?;
        let registry = registry
            .with(
                Slot::TwccReceiver,
                TwccReceiverBuilder::new()
                    .with_interval(options.twcc_interval)
                    .build(),
            )
            .with(
                Slot::NackGenerator,
                NackGeneratorBuilder::new()
                    .with_interval(options.nack_interval)
                    .build(),
            );
        // Credentials from the address: rtc would draw them from its own random source, and
        // a run should repeat exactly.
        let tag = u32::from_be_bytes(match addr.ip() {
            std::net::IpAddr::V4(v4) => v4.octets(),
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or([0; 4], |v| v.octets()),
        });
        let settings = SettingEngineBuilder::new()
            .with_ice_credentials(
                format!("sim{tag:08x}{:04x}", addr.port()),
                format!("simpassword{tag:08x}{:04x}abcdefgh", addr.port()),
            )
            .with_lite(flavor == Flavor::ServerLike)
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(settings)
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(err)?;
        pc.add_local_candidate(host_candidate(addr)?).map_err(err)?;
        Ok(Self {
            addr,
            pc,
            connected: false,
            errors: Vec::new(),
            rtcp_seen: seen,
            recorder: Recorder::new(now),
            publish: None,
            rtx,
            transport_numbers: numbers,
            tcp: None,
        })
    }

    /// Adds an active TCP candidate (call before the offer or answer that should carry it):
    /// the agent may then reach the server's passive candidate over `net`.
    pub fn with_ice_tcp(mut self, net: TcpNet) -> Result<Self, String> {
        let c = tcp_active_candidate(self.addr.ip())?;
        self.pc.add_local_candidate(c).map_err(err)?;
        self.tcp = Some(PeerTcp::new(net, self.addr.ip()));
        Ok(self)
    }

    /// Creates and applies an offer; returns its SDP (with our candidate).
    pub fn offer(&mut self, now: Instant) -> Result<String, String> {
        let offer = self.pc.create_offer(None).map_err(err)?;
        self.pc.set_local_description(now, offer).map_err(err)?;
        self.local_sdp()
    }

    pub fn accept_answer(&mut self, now: Instant, sdp: &str) -> Result<(), String> {
        self.learn_rtx(sdp);
        let answer = RTCSessionDescription::answer(sdp.to_owned()).map_err(err)?;
        self.pc.set_remote_description(now, answer).map_err(err)
    }

    /// Applies a remote offer and answers it; returns the answer's SDP.
    pub fn accept_offer(&mut self, now: Instant, sdp: &str) -> Result<String, String> {
        self.learn_rtx(sdp);
        let offer = RTCSessionDescription::offer(sdp.to_owned()).map_err(err)?;
        self.pc.set_remote_description(now, offer).map_err(err)?;
        let answer = self.pc.create_answer(None).map_err(err)?;
        self.pc.set_local_description(now, answer).map_err(err)?;
        self.local_sdp()
    }

    fn learn_rtx(&self, remote_sdp: &str) {
        if let Ok(mut map) = self.rtx.lock() {
            *map = RtxMap::from_sdp(remote_sdp);
        }
        if let Ok(mut numbers) = self.transport_numbers.lock() {
            numbers.learn(remote_sdp);
        }
    }

    /// The local description as regenerated with candidates (not what create_* returned).
    fn local_sdp(&self) -> Result<String, String> {
        self.pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| "no local description".to_owned())
    }

    /// The publisher's media state (sources per layer), if this is a publisher.
    pub fn publish(&self) -> Option<&PublishMedia> {
        self.publish.as_ref()
    }

    /// Asks the sender of `ssrc` for a keyframe (PLI), as a decoder that lost its picture does.
    pub fn request_keyframe(&mut self, now: Instant, ssrc: u32) -> Result<(), String> {
        let receiver = self
            .recorder
            .receiver_of(ssrc)
            .ok_or_else(|| format!("no receiver for ssrc {ssrc}"))?;
        let pli = rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        self.pc
            .rtp_receiver(receiver)
            .ok_or("receiver gone")?
            .write_rtcp(now, vec![Box::new(pli)])
            .map_err(err)
    }

    /// Drains what the engine has for the application: state changes, new tracks, media, and
    /// keyframe requests for a publisher.
    fn drain(&mut self, now: Instant) {
        while let Some(event) = self.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                    self.connected = state == RTCPeerConnectionState::Connected;
                    if let (true, Some(p)) = (self.connected, self.publish.as_mut()) {
                        p.start(now);
                    }
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let vp8_pt = self.pc.rtp_receiver(init.receiver_id).and_then(|mut r| {
                        let params = r.get_parameters();
                        params
                            .rtp_parameters
                            .codecs
                            .iter()
                            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_VP8))
                            .map(|c| c.payload_type)
                    });
                    self.recorder.open(&init, vp8_pt);
                }
                _ => {}
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            match message {
                RTCMessage::RtpPacket(track, packet) => self.recorder.record(now, &track, &packet),
                RTCMessage::RtcpPacket(_, packets) => {
                    if let Some(p) = self.publish.as_mut() {
                        p.on_rtcp(&packets);
                    }
                }
                _ => {}
            }
        }
    }

    /// Gives the engine a packet that arrived at `local` from `from` over `protocol`.
    fn read(
        &mut self,
        now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        protocol: TransportProtocol,
        message: BytesMut,
    ) {
        let r = self.pc.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: local,
                peer_addr: from,
                ecn: None,
                transport_protocol: protocol,
            },
            message,
        });
        self.note("handle_read", r);
    }

    fn note<E: std::fmt::Display>(&mut self, what: &str, r: Result<(), E>) {
        if let Err(e) = r {
            self.errors.push(format!("{what}: {e}"));
        }
    }
}

impl Node for SimPeer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: BytesMut) {
        let local = self.addr;
        self.read(now, local, from, TransportProtocol::UDP, bytes);
        self.drain(now);
    }

    fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        while let Some(m) = self.pc.poll_write() {
            if m.transport.transport_protocol != TransportProtocol::TCP {
                return Some((m.transport.peer_addr, m.message));
            }
            // The agent checks and uses TCP pairs only with an active candidate of ours.
            if let Some(tcp) = self.tcp.as_mut() {
                tcp.send(m.now, m.transport.peer_addr, &m.message);
            }
        }
        None
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let media = self.publish.as_ref().and_then(PublishMedia::next_due);
        let tcp = self.tcp.as_ref().and_then(PeerTcp::next_arrival);
        [self.pc.poll_timeout(), media, tcp]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        let arrived = self
            .tcp
            .as_mut()
            .map(|t| t.receive(now))
            .unwrap_or_default();
        for (local, from, packet) in arrived {
            self.read(now, local, from, TransportProtocol::TCP, packet);
        }
        if self.pc.poll_timeout().is_some_and(|t| t <= now) {
            let r = self.pc.handle_timeout(now);
            self.note("handle_timeout", r);
        }
        if let Some(p) = self.publish.as_mut() {
            let errors = p.send_due(now, &mut self.pc);
            self.errors.extend(errors);
        }
        self.drain(now);
    }
}
