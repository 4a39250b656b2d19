//! Signaling metrics: rooms, participants, join latency, messages and errors by kind.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::protocol::Role;
use crate::room::Room;

pub(crate) struct SignalingMetrics {
    pub rooms: IntGauge,
    pub participants: IntGauge,
    /// Connected participants per meeting and role (series removed when a meeting empties).
    pub room_participants: IntGaugeVec,
    pub join_seconds: Histogram,
    pub messages: IntCounterVec,
    pub errors: IntCounterVec,
    /// Video freezes the clients' decoders reported.
    pub client_freezes: prometheus::IntCounter,
    pub client_freeze_seconds: prometheus::Counter,
    /// WebSocket upgrades refused, by reason (`rate`, `address_full`, `server_full`, ...).
    pub ws_refused: IntCounterVec,
    /// Unjoined sockets that gave their slot to a newer socket.
    pub ws_evicted: prometheus::IntCounter,
    /// Open WebSockets, and those not joined yet.
    pub ws_open: IntGauge,
    pub ws_unjoined: IntGauge,
}

const JOIN_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0];

impl SignalingMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self::unregistered();
        registry.register(Box::new(m.rooms.clone()))?;
        registry.register(Box::new(m.participants.clone()))?;
        registry.register(Box::new(m.room_participants.clone()))?;
        registry.register(Box::new(m.join_seconds.clone()))?;
        registry.register(Box::new(m.messages.clone()))?;
        registry.register(Box::new(m.errors.clone()))?;
        registry.register(Box::new(m.client_freezes.clone()))?;
        registry.register(Box::new(m.client_freeze_seconds.clone()))?;
        registry.register(Box::new(m.ws_refused.clone()))?;
        registry.register(Box::new(m.ws_evicted.clone()))?;
        registry.register(Box::new(m.ws_open.clone()))?;
        registry.register(Box::new(m.ws_unjoined.clone()))?;
        Ok(m)
    }

    pub fn unregistered() -> Self {
        // Static names and label sets: construction cannot fail.
        Self {
            rooms: IntGauge::new("hoinghi_rooms", "Meetings with at least one participant")
                .expect("valid metric"),
            participants: IntGauge::new("hoinghi_participants", "Connected participants")
                .expect("valid metric"),
            room_participants: IntGaugeVec::new(
                Opts::new(
                    "hoinghi_room_participants",
                    "Connected participants per meeting and role",
                ),
                &["room", "role"],
            )
            .expect("valid metric"),
            join_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "hoinghi_join_seconds",
                    "From WebSocket open to the joined answer",
                )
                .buckets(JOIN_BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            messages: IntCounterVec::new(
                Opts::new(
                    "hoinghi_signaling_messages_total",
                    "Client messages accepted, by type",
                ),
                &["type"],
            )
            .expect("valid metric"),
            errors: IntCounterVec::new(
                Opts::new(
                    "hoinghi_signaling_errors_total",
                    "Error messages sent to clients, by code",
                ),
                &["code"],
            )
            .expect("valid metric"),
            client_freezes: prometheus::IntCounter::new(
                "hoinghi_client_freezes_total",
                "Video freezes reported by clients' decoders",
            )
            .expect("valid metric"),
            client_freeze_seconds: prometheus::Counter::new(
                "hoinghi_client_freeze_seconds_total",
                "Total duration of the video freezes clients reported",
            )
            .expect("valid metric"),
            ws_refused: IntCounterVec::new(
                Opts::new(
                    "hoinghi_ws_refused_total",
                    "WebSocket upgrades refused, by reason",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            ws_evicted: prometheus::IntCounter::new(
                "hoinghi_ws_evicted_total",
                "Unjoined WebSockets closed to make room for a newer one",
            )
            .expect("valid metric"),
            ws_open: IntGauge::new("hoinghi_ws_open", "Open WebSockets").expect("valid metric"),
            ws_unjoined: IntGauge::new(
                "hoinghi_ws_unjoined",
                "Open WebSockets that have not joined yet",
            )
            .expect("valid metric"),
        }
    }

    /// Sets the socket gauges from the admission counts.
    pub(crate) fn ws_counts(&self, admission: &crate::admission::Admission) {
        let (open, unjoined) = admission.counts();
        self.ws_open.set(open as i64);
        self.ws_unjoined.set(unjoined as i64);
    }
}

const ROLES: [(Role, &str); 5] = [
    (Role::Chair, "chair"),
    (Role::Point, "point"),
    (Role::Observer, "observer"),
    (Role::Relay, "relay"),
    (Role::Upstream, "upstream"),
];

impl SignalingMetrics {
    /// Sets the per-role gauges of one meeting from its roster.
    pub fn room_changed(&self, room: &Room) {
        for (role, name) in ROLES {
            let n = room
                .members
                .values()
                .filter(|m| m.info.role == role)
                .count();
            self.room_participants
                .with_label_values(&[room.id.as_str(), name])
                .set(n as i64);
        }
    }

    /// Drops the series of a meeting nobody is in any more (a province has thousands of
    /// meetings a year: their series must not pile up).
    pub fn room_closed(&self, meeting: &str) {
        for (_, name) in ROLES {
            let _ = self.room_participants.remove_label_values(&[meeting, name]);
        }
    }
}
