//! Connection and participant lifecycles: a connection is created with fresh ICE credentials
//! and registered for demux; it ends by `close` (orderly: DTLS close_notify flushed) or, after
//! an engine panic, by being dropped with its tracks unpublished. A participant leaving takes
//! its tracks, its downtracks and both connections with it.

use std::time::Instant;

use rtc::sansio::Protocol;

use super::WorkerCore;
use super::conn::Conn;
use crate::api::{MediaEvent, ParticipantId, PcKind, SfuError};

impl WorkerCore {
    /// Forgets a connection whose engine state can no longer be trusted, and tells its
    /// participant (the client reconnects).
    pub(super) fn drop_conn_after_panic(&mut self, key: usize) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let (participant, kind) = (conn.participant, conn.kind);
        if let Some(p) = self.participants.get_mut(&participant) {
            match kind {
                PcKind::Publish if p.publish == Some(key) => p.publish = None,
                PcKind::Subscribe if p.subscribe == Some(key) => p.subscribe = None,
                _ => {}
            }
        }
        let tracks: Vec<usize> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.conn == key)
            .map(|(k, _)| k)
            .collect();
        for t in tracks {
            self.unpublish(self.now, t);
        }
        for (_, t) in self.tracks.iter_mut() {
            t.downtracks.retain(|d| d.conn != key);
        }
        self.track_by_down_ssrc.retain(|(c, _), _| *c != key);
        self.close_tcp_of_conn(key);
        if let Some(conn) = self.conns.try_remove(key) {
            self.demux.remove(&conn.ufrag, &conn.addrs, key);
            self.metrics.connections.dec();
            // Dropped without `close()` (its state is what panicked), and guarded in case the
            // engine's destructors trip over the same state.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(conn)));
        }
        self.notify(
            participant,
            MediaEvent::ConnectionState {
                pc: kind,
                state: crate::api::ConnState::Failed,
            },
        );
    }

    pub(super) fn remote_candidate(
        &mut self,
        participant: ParticipantId,
        pc: PcKind,
        c: crate::api::RemoteCandidate,
    ) -> Result<(), SfuError> {
        let p = self
            .participants
            .get(&participant)
            .ok_or(SfuError::NoSuchParticipant)?;
        let key = match pc {
            PcKind::Publish => p.publish,
            PcKind::Subscribe => p.subscribe,
        }
        .ok_or(SfuError::NoSuchConnection)?;
        let conn = self.conns.get_mut(key).ok_or(SfuError::NoSuchConnection)?;
        if c.candidate.is_empty() {
            // End of candidates: nothing to do for an ICE-lite server.
            return Ok(());
        }
        conn.pc
            .add_remote_candidate(rtc::peer_connection::transport::RTCIceCandidateInit {
                candidate: c.candidate,
                sdp_mid: c.sdp_mid,
                sdp_mline_index: c.sdp_m_line_index,
                username_fragment: c.username_fragment,
                ..Default::default()
            })
            .map_err(|e| SfuError::BadCandidate(e.to_string()))
    }

    /// Creates a connection with fresh ICE credentials and registers it for demux.
    pub(super) fn new_conn(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        kind: PcKind,
    ) -> Result<usize, SfuError> {
        self.next_ufrag += 1;
        let ufrag = crate::demux::make_ufrag(self.worker_index, self.next_ufrag);
        let pwd = format!("{:032x}", rand::random::<u128>());
        // Only what we send needs estimating: subscribe connections carry every byte out.
        let estimate = (kind == PcKind::Subscribe)
            .then(|| std::sync::Arc::new(crate::bwe::LinkEstimate::default()));
        let nacks = (kind == PcKind::Subscribe)
            .then(|| std::sync::Arc::new(crate::nack_gate::NackCounts::default()));
        let link = estimate.clone().zip(nacks.clone());
        let pc = self.factory.build(now, &ufrag, &pwd, link)?;
        let key = self.conns.insert(Conn {
            pc,
            participant,
            kind,
            ufrag: ufrag.clone(),
            addrs: Vec::new(),
            scheduled: None,
            dirty: false,
            connected: false,
            rtt: None,
            reported_loss: 0.0,
            estimate,
            nacks,
            allocation: Default::default(),
            over_tcp: false,
            retiring: Vec::new(),
            retired: Vec::new(),
            rtx_refused: false,
        });
        self.demux.add_ufrag(ufrag, key);
        self.metrics.connections.inc();
        Ok(key)
    }

    /// Replaces `participant`'s subscribe connection with a new one carrying what is routed to
    /// it now (its paused downtracks are not carried over). The old one is dropped without a
    /// DTLS close: the client closes its side when it gets the new connection's first offer
    /// (marked `restart`), and a close alert racing ahead of that offer would look to it like a
    /// failed connection.
    pub(super) fn restart_subscribe(&mut self, now: Instant, participant: ParticipantId) {
        let Some(p) = self.participants.get_mut(&participant) else {
            return;
        };
        let Some(old) = p.subscribe.take() else {
            return;
        };
        p.negotiation.awaiting = None;
        p.negotiation.needs_offer = false;
        // Reports about the old connection (its revisions) are stale from now on.
        p.negotiation.conn_revision = p.negotiation.revision + 1;
        p.negotiation.last_restart = Some(now);
        p.negotiation.restart_pending = false;
        let receives = p.receives.clone();
        for (_, t) in self.tracks.iter_mut() {
            t.downtracks.retain(|d| d.conn != old);
        }
        self.track_by_down_ssrc.retain(|(c, _), _| *c != old);
        self.close_tcp_of_conn(old);
        if let Some(mut conn) = self.conns.try_remove(old) {
            self.demux.remove(&conn.ufrag, &conn.addrs, old);
            let _ = conn.pc.close();
            self.metrics.connections.dec();
        }
        // Every routed track again, on a new connection (created by the first downtrack).
        self.set_receives(now, participant, receives);
    }

    pub(super) fn close_conn(&mut self, key: usize) {
        if self.conns.contains(key) {
            let mut conn = self.conns.remove(key);
            self.demux.remove(&conn.ufrag, &conn.addrs, key);
            if let Err(e) = conn.pc.close() {
                tracing::debug!("close: {e}");
            }
            // Flush what close queued (DTLS close_notify) so the peer learns at once.
            while let Some(out) = conn.pc.poll_write() {
                if out.transport.transport_protocol == rtc::shared::TransportProtocol::TCP {
                    self.send_tcp(key, out.transport.peer_addr, out.message);
                } else {
                    self.out.push(out.transport.peer_addr, out.message);
                }
            }
            self.close_tcp_of_conn(key);
            self.metrics.connections.dec();
        }
    }

    pub(super) fn leave(&mut self, now: Instant, participant: ParticipantId) {
        let Some(p) = self.participants.remove(&participant) else {
            return;
        };
        for track in p.published.iter().copied() {
            self.unpublish(now, track);
        }
        // Remove this participant's downtracks from every track it was receiving.
        let keys: Vec<usize> = self.tracks.iter().map(|(k, _)| k).collect();
        for k in keys {
            self.tracks[k]
                .downtracks
                .retain(|d| d.subscriber != participant);
        }
        if let Some(k) = p.publish {
            self.close_conn(k);
        }
        if let Some(k) = p.subscribe {
            self.track_by_down_ssrc.retain(|(c, _), _| *c != k);
            self.close_conn(k);
        }
    }

    pub(super) fn close_all(&mut self, now: Instant) {
        let ids: Vec<ParticipantId> = self.participants.keys().copied().collect();
        for id in ids {
            self.leave(now, id);
        }
    }
}
