//! How a join token becomes a seat in a meeting. The signaling layer does not know how tokens are
//! made or stored: the control plane (`room-admin`) implements [`Authorizer`] and the binary wires
//! it in, so tests can use a fake and a cluster can put a remote check behind it.

use crate::protocol::Role;

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The meeting (room) id.
    pub meeting_id: String,
    pub meeting_title: String,
    /// The point's code in the directory; one point may be connected once per meeting.
    pub point: String,
    /// Display name of the point.
    pub name: String,
    pub role: Role,
    /// Participant cap for the meeting (0: no cap).
    pub capacity: usize,
}

/// Why a token was refused. The message is shown to the point's staff: plain language.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Expired(String),
}

pub trait Authorizer: Send + Sync + 'static {
    fn authorize(&self, token: &str) -> Result<Grant, AuthError>;

    /// The points invited to a meeting (code, name), so the chair's grid can show who has not
    /// connected yet. Empty when unknown.
    fn invited(&self, _meeting: &str) -> Vec<InvitedPoint> {
        Vec::new()
    }

    /// The chair ended `meeting`: from now on its links are refused (the control plane records
    /// the end when told through [`RoomObserver::meeting_ended`]). Called before everyone in
    /// the room is told `bye`, so nobody rejoins in between.
    fn end_meeting(&self, _meeting: &str) {}

    /// The chair asks for `minutes` more (15 or 30): the new planned end (Unix seconds), which
    /// the authorizer honours from now on, or why not, in words for the chair (Vietnamese, then
    /// English). The control plane stores it when told through
    /// [`RoomObserver::meeting_extended`].
    fn extend_meeting(&self, _meeting: &str, _minutes: u32) -> Result<u64, String> {
        Err(
            "Cuộc họp này không có giờ kết thúc để gia hạn. / This meeting has no planned end \
             to extend."
                .to_owned(),
        )
    }
}

/// A point invited to a meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitedPoint {
    pub point: String,
    pub name: String,
}

/// Told of every seat taken and left, for attendance records. Called synchronously from the
/// session task: implementations must not block (queue the record and write it elsewhere).
pub trait RoomObserver: Send + Sync + 'static {
    fn joined(&self, grant: &Grant, participant: &str);
    /// `seconds` is how long the participant was connected.
    fn left(&self, grant: &Grant, participant: &str, seconds: f64);
    /// A point answered the roll call (`at`: Unix milliseconds).
    fn roll_call_answer(&self, _meeting: &str, _point: &str, _at: u64) {}
    /// A chat message was sent (`to_chair`: to the chair only, else to everyone).
    fn chat(&self, _meeting: &str, _point: &str, _to_chair: bool, _text: &str, _at: u64) {}
    /// A participant left, with a summary of its link while connected. Called right after
    /// [`RoomObserver::left`].
    fn link_summary(&self, _grant: &Grant, _participant: &str, _link: &LinkSummary) {}
    /// A chair (or point) action was accepted: `action` is the protocol message type
    /// (`grant_floor`, `start_roll_call`, `end_meeting`, ...; `set_mute:muted` or
    /// `set_mute:unmuted` for mutes), `target` the point it names, if any. For the audit log.
    fn control(&self, _meeting: &str, _actor_point: &str, _action: &str, _target: Option<&str>) {}
    /// The chair `by_point` ended the meeting (after [`Authorizer::end_meeting`]): record who
    /// and when.
    fn meeting_ended(&self, _meeting: &str, _by_point: &str) {}
    /// The chair `by_point` extended the meeting by `minutes` to `ends_at` (Unix seconds), as
    /// [`Authorizer::extend_meeting`] granted: record it (and audit it).
    fn meeting_extended(&self, _meeting: &str, _by_point: &str, _minutes: u32, _ends_at: u64) {}
}

/// Keeps each meeting's controls (floor, hands, microphones, discussion, share, roll call)
/// across a restart of the server. The snapshot is opaque text (JSON made by the signaling
/// layer); the store keeps the last one per meeting.
pub trait ControlsStore: Send + Sync + 'static {
    /// The snapshot last saved for `meeting`, or `None` when there is none or the meeting has
    /// ended since (a snapshot never outlives its meeting). Called when a room is created, at
    /// its first join.
    fn load<'a>(&'a self, meeting: &'a str) -> LoadFuture<'a>;
    /// Called with the room's lock held, after every accepted change: must not block (queue
    /// the snapshot and write it elsewhere; a burst may be written as its last snapshot only).
    fn save(&self, meeting: &str, snapshot: String);
}

/// What [`ControlsStore::load`] returns.
pub type LoadFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send + 'a>>;

/// The store used when none is configured: controls live as long as the process.
pub struct NoControlsStore;

impl ControlsStore for NoControlsStore {
    fn load<'a>(&'a self, _meeting: &'a str) -> LoadFuture<'a> {
        Box::pin(std::future::ready(None))
    }

    fn save(&self, _meeting: &str, _snapshot: String) {}
}

/// A participant's link over its connection, from the media plane's 2-second samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkSummary {
    pub samples: u32,
    /// Mean round-trip time over the samples that had one.
    pub rtt_ms_mean: Option<f64>,
    pub loss_mean: f64,
    pub loss_max: f64,
}

/// The observer used when none is configured.
pub struct NoObserver;

impl RoomObserver for NoObserver {
    fn joined(&self, _grant: &Grant, _participant: &str) {}
    fn left(&self, _grant: &Grant, _participant: &str, _seconds: f64) {}
}
