//! What crosses between the async control world (signaling) and the media workers: commands in,
//! events out. Both directions are bounded channels; nothing here blocks a worker.

use std::fmt;

use tokio::sync::{mpsc, oneshot};

/// A participant, unique per server process (assigned by signaling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// Which of a participant's two peer connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PcKind {
    /// Client offers, server answers; carries the participant's media in.
    Publish,
    /// Server offers, client answers; carries everyone else's media out.
    Subscribe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Audio,
    Video,
}

/// What a published track carries, as the publisher declared it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TrackSource {
    #[default]
    Camera,
    Microphone,
    /// A screen or document share (a second video track).
    Screen,
}

/// One routing entry: which of a publisher's media a subscriber receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subscription {
    pub publisher: ParticipantId,
    pub audio: bool,
    pub camera: bool,
    pub screen: bool,
    /// The camera as a thumbnail: its lowest simulcast layer only, and last in line for the
    /// subscriber's bandwidth (the chair's grid of points).
    pub thumbnail: bool,
    /// Every simulcast layer of each video, each on an m-line of its own, none paused or
    /// thinned by the allocator: the subscriber is a relay (a downstream server that serves
    /// each layer on to its own halls, see the cascade in `docs/architecture.md`).
    pub every_layer: bool,
}

impl Subscription {
    pub fn all(publisher: ParticipantId) -> Self {
        Self {
            publisher,
            audio: true,
            camera: true,
            screen: true,
            thumbnail: false,
            every_layer: false,
        }
    }

    /// How a video of `source` is allocated: the highest simulcast rank allowed, and the
    /// priority on the subscriber's link (lower first: a shared document, then cameras, then
    /// thumbnails).
    pub fn layer_policy(&self, source: TrackSource) -> (u8, u8) {
        match (source, self.thumbnail) {
            (TrackSource::Screen, _) => (u8::MAX, 0),
            (_, false) => (u8::MAX, 1),
            (_, true) => (0, 2),
        }
    }

    pub fn wants(&self, source: TrackSource) -> bool {
        match source {
            TrackSource::Microphone => self.audio,
            TrackSource::Camera => self.camera,
            TrackSource::Screen => self.screen,
        }
    }
}

/// Peer connection state as reported to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

/// One m-line of a subscribe offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedTrack {
    pub mid: String,
    pub publisher: ParticipantId,
    pub kind: TrackKind,
    pub source: TrackSource,
    /// The one simulcast layer (its rank, 0 the lowest) this m-line carries, for a subscriber
    /// that receives every layer ([`Subscription::every_layer`]); `None`: the layer the server
    /// picks, switched invisibly.
    pub layer: Option<u8>,
}

/// An ICE candidate of the server's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCandidate {
    pub candidate: String,
    pub sdp_mid: Option<String>,
    pub sdp_m_line_index: Option<u16>,
}

/// What a worker tells a participant's session.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// The videos this participant's link cannot carry now (the complete list; empty when all
    /// flow again). Audio is never paused.
    VideoPaused {
        tracks: Vec<(ParticipantId, TrackSource)>,
    },
    SubscribeOffer {
        revision: u64,
        sdp: String,
        tracks: Vec<OfferedTrack>,
        /// The first offer of a new subscribe connection that replaces the previous one (after
        /// an answer that was refused or never came): the client closes its old connection and
        /// applies this offer to a new one.
        restart: bool,
    },
    Candidate {
        pc: PcKind,
        candidate: LocalCandidate,
    },
    ConnectionState {
        pc: PcKind,
        state: ConnState,
    },
    /// Voice activity of this participant's own microphone changed (from the audio-level
    /// header extension, judged over the last half second).
    Speaking {
        speaking: bool,
    },
    /// This participant's link, measured over the last stats interval: round-trip time from
    /// the receiver reports of its subscribe connection, and the worse of upstream loss (gaps in
    /// what it publishes) and downstream loss (what it reports losing).
    LinkQuality {
        rtt_ms: Option<u32>,
        loss: f32,
        /// Its media goes over ICE-TCP (UDP does not get through).
        over_tcp: bool,
    },
}

/// A remote ICE candidate from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCandidate {
    pub candidate: String,
    pub sdp_mid: Option<String>,
    pub sdp_m_line_index: Option<u16>,
    pub username_fragment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SfuError {
    #[error("no such participant")]
    NoSuchParticipant,
    #[error("participant already joined")]
    AlreadyJoined,
    #[error("no such peer connection")]
    NoSuchConnection,
    #[error("invalid SDP: {0}")]
    BadSdp(String),
    #[error("invalid ICE candidate: {0}")]
    BadCandidate(String),
    #[error("stale answer: revision {got}, expected {expected}")]
    StaleAnswer { got: u64, expected: u64 },
    #[error("no offer is waiting for an answer")]
    NoOfferPending,
    #[error("media worker is overloaded")]
    Busy,
    #[error("media plane is shut down")]
    Closed,
    #[error("media engine error: {0}")]
    Internal(String),
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, SfuError>>;

/// A command to a worker. Every command that can fail carries a reply channel.
pub(crate) enum Command {
    Join {
        room: String,
        participant: ParticipantId,
        events: mpsc::Sender<MediaEvent>,
        reply: Reply<()>,
    },
    PublishOffer {
        participant: ParticipantId,
        sdp: String,
        /// mid → source, as the client declared (tracks not listed: by kind).
        sources: Vec<(String, TrackSource)>,
        reply: Reply<String>,
    },
    SubscribeAnswer {
        participant: ParticipantId,
        revision: u64,
        sdp: String,
        reply: Reply<()>,
    },
    Candidate {
        participant: ParticipantId,
        pc: PcKind,
        candidate: RemoteCandidate,
        reply: Reply<()>,
    },
    /// `participant` receives exactly what `subscriptions` say (never its own media).
    SetReceives {
        participant: ParticipantId,
        subscriptions: Vec<Subscription>,
    },
    /// The client reports that its subscribe connection, on which it applied offer
    /// `revision`, failed: restart it (see `worker/negotiate.rs`).
    RestartSubscribe {
        participant: ParticipantId,
        revision: u64,
        reply: Reply<()>,
    },
    Leave {
        participant: ParticipantId,
    },
    /// A point reached us over ICE-TCP (see `ice_tcp.rs`).
    TcpStream(crate::ice_tcp::Handoff),
    Shutdown,
}
