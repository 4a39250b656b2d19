//! Signaling metrics: rooms, participants, join latency, messages and errors by kind.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

pub(crate) struct SignalingMetrics {
    pub rooms: IntGauge,
    pub participants: IntGauge,
    pub join_seconds: Histogram,
    pub messages: IntCounterVec,
    pub errors: IntCounterVec,
}

const JOIN_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0];

impl SignalingMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self::unregistered();
        registry.register(Box::new(m.rooms.clone()))?;
        registry.register(Box::new(m.participants.clone()))?;
        registry.register(Box::new(m.join_seconds.clone()))?;
        registry.register(Box::new(m.messages.clone()))?;
        registry.register(Box::new(m.errors.clone()))?;
        Ok(m)
    }

    pub fn unregistered() -> Self {
        // Static names and label sets: construction cannot fail.
        Self {
            rooms: IntGauge::new("hoinghi_rooms", "Meetings with at least one participant")
                .expect("valid metric"),
            participants: IntGauge::new("hoinghi_participants", "Connected participants")
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
        }
    }
}
