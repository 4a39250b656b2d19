//! Subscribe-side negotiation: the server offers, the client answers, one offer in flight.
//!
//! States per participant: idle, or awaiting the answer to revision N. Changes that arrive while
//! an offer is in flight set `needs_offer` and go out in the next offer once the answer is in,
//! so the client never sees glare on this connection.
//!
//! An offer is never left waiting for good: an answer that is refused (malformed, or rejected by
//! the engine) or that does not come within [`ANSWER_TIMEOUT`] restarts the subscribe
//! connection (see `lifecycle.rs`), whose first offer says so (`restart`). Rolling the offer
//! back instead (`rtc` supports `set_local_description(rollback)`) is not enough: the client
//! may have applied the offer already (an answer refused for its size was made from it), and a
//! later offer built on the rolled-back state would not match the m-lines it holds.
//!
//! A subscribe connection whose path died is restarted the same way (issue 10, item 6): when
//! the client reports it failed (`restart_subscribe`, naming the revision it last applied on
//! it) or when our own side of it fails (no check heard for the ICE failure timeout). Not an
//! ICE restart on the same connection: `rtc` stages a restart with the credentials of the
//! connection's setting engine, i.e. the ufrag we chose (it names the worker, see
//! `demux::make_ufrag`), so its restart offer would carry the same ufrag and password and a
//! browser would not restart anything. Restarts of one participant are at least
//! [`RESTART_GAP`] apart; one asked for sooner is done when the gap ends.

use std::time::{Duration, Instant};

use rtc::peer_connection::sdp::RTCSessionDescription;

use super::conn::{internal, rtc_sdp_error};
use super::{Timer, WorkerCore};
use crate::api::{MediaEvent, OfferedTrack, ParticipantId, PcKind, SfuError};

/// How long a subscribe offer waits for its answer before the connection is restarted. A
/// browser answers within a second even on a loaded PC; this leaves room for a slow line.
pub(super) const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// Least time between two restarts of one participant's subscribe connection. A new connection
/// on a path that is still dead fails again, and each restart costs an offer (and a DTLS
/// handshake once it connects): this bounds what a dead line, or a client asking again and
/// again, can cost. Not widened while restarts do not connect: the restarts of a dead line are
/// paced by the failures that ask for them (the client's connection giving up, or ours after
/// 45 s), and a wider gap only delayed the connection after a long outage (a loadtest point
/// whose connections fail 5 s after the last check got media 7 s after the restore with a gap
/// doubling to 20 s, 2.6 s without).
pub(super) const RESTART_GAP: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub(crate) struct SubscribeNegotiation {
    /// Revision of the last offer sent.
    pub revision: u64,
    /// The revision whose answer we wait for.
    pub awaiting: Option<u64>,
    /// Something changed since the last offer.
    pub needs_offer: bool,
    /// The subscribe connection is new and has not offered yet: its first offer trickles our
    /// candidates, and tells the client to replace its connection if it had one.
    pub fresh_conn: bool,
    /// The revision of the current subscribe connection's first offer (or of the next offer,
    /// when the connection was just replaced): a client's report about a connection opened
    /// before it is about one that is gone.
    pub conn_revision: u64,
    /// When the subscribe connection was last restarted.
    pub last_restart: Option<Instant>,
    /// A restart asked for within [`RESTART_GAP`] of the last one waits for its timer.
    pub restart_pending: bool,
}

impl WorkerCore {
    /// Marks a participant's subscribe side as changed. Queued once; the queue (not a scan of
    /// every participant) is what each loop pass looks at.
    pub(super) fn renegotiate(&mut self, participant: ParticipantId) {
        if let Some(p) = self.participants.get_mut(&participant)
            && !p.negotiation.needs_offer
        {
            p.negotiation.needs_offer = true;
            self.offer_queue.push(participant);
        }
    }

    pub(super) fn send_pending_offers(&mut self, now: Instant) {
        if self.offer_queue.is_empty() {
            return;
        }
        let queued = std::mem::take(&mut self.offer_queue);
        let mut ready = Vec::new();
        for participant in queued {
            let Some(p) = self.participants.get(&participant) else {
                continue;
            };
            if !p.negotiation.needs_offer || p.subscribe.is_none() {
                continue;
            }
            if p.negotiation.awaiting.is_some() {
                // Goes out after the answer (see `subscribe_answer`).
                self.offer_queue.push(participant);
                continue;
            }
            ready.push(participant);
        }
        for participant in ready {
            // A participant can be queued twice (a restart clears `needs_offer` with an entry
            // still queued, and the new connection's tracks queue it again): one offer per
            // answer, so the second entry finds the first offer awaiting its answer. Two offers
            // 50-80 ms apart after a restart made the client's answer to the first stale and
            // its candidates land on no remote description (`tests/browser/chairwalk.mjs`).
            let Some(p) = self.participants.get(&participant) else {
                continue;
            };
            if !p.negotiation.needs_offer || p.negotiation.awaiting.is_some() {
                continue;
            }
            if let Err(e) = self.offer(now, participant) {
                tracing::warn!(%participant, "cannot make a subscribe offer: {e}");
            }
        }
    }

    fn offer(&mut self, now: Instant, participant: ParticipantId) -> Result<(), SfuError> {
        let p = self
            .participants
            .get_mut(&participant)
            .ok_or(SfuError::NoSuchParticipant)?;
        let key = p.subscribe.ok_or(SfuError::NoSuchConnection)?;
        p.negotiation.needs_offer = false;
        let pc = &mut self.conns[key].pc;
        let offer = pc.create_offer(None).map_err(internal)?;
        pc.set_local_description(now, offer).map_err(internal)?;
        let sdp = pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| internal("no local description after offering"))?;
        // Shown inactive by this offer: freed once it is answered (see `free_retired`).
        let retiring = std::mem::take(&mut self.conns[key].retiring);
        let mut tracks = Vec::new();
        for (_, t) in self.tracks.iter() {
            for d in t.downtracks.iter().filter(|d| d.conn == key) {
                if let Some(mid) = self.conns[key]
                    .pc
                    .rtp_transceiver(d.transceiver)
                    .and_then(|tr| tr.mid().clone())
                {
                    tracks.push(OfferedTrack {
                        mid,
                        publisher: t.publisher,
                        kind: t.kind,
                        source: t.source,
                        layer: d.pinned,
                    });
                }
            }
        }
        let p = self
            .participants
            .get_mut(&participant)
            .ok_or(SfuError::NoSuchParticipant)?;
        p.negotiation.revision += 1;
        let revision = p.negotiation.revision;
        self.conns[key]
            .retired
            .extend(retiring.into_iter().map(|s| (revision, s)));
        for (_, t) in self.tracks.iter_mut() {
            for d in t.downtracks.iter_mut().filter(|d| d.conn == key) {
                d.offered_in.get_or_insert(revision);
            }
        }
        p.negotiation.awaiting = Some(revision);
        let first = std::mem::take(&mut p.negotiation.fresh_conn);
        if first {
            p.negotiation.conn_revision = revision;
        }
        self.timers.push(std::cmp::Reverse((
            now + ANSWER_TIMEOUT,
            Timer::Answer(participant, revision),
        )));
        self.notify(
            participant,
            MediaEvent::SubscribeOffer {
                revision,
                sdp,
                tracks,
                // The very first offer opens the client's first connection: nothing to replace.
                restart: first && revision > 1,
            },
        );
        if first {
            for candidate in self.factory.local_candidates().unwrap_or_default() {
                self.notify(
                    participant,
                    MediaEvent::Candidate {
                        pc: PcKind::Subscribe,
                        candidate,
                    },
                );
            }
        }
        self.mark_dirty(key);
        Ok(())
    }

    pub(super) fn subscribe_answer(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        revision: u64,
        sdp: String,
    ) -> Result<(), SfuError> {
        let p = self
            .participants
            .get_mut(&participant)
            .ok_or(SfuError::NoSuchParticipant)?;
        let key = p.subscribe.ok_or(SfuError::NoSuchConnection)?;
        match p.negotiation.awaiting {
            None => return Err(SfuError::NoOfferPending),
            Some(expected) if expected != revision => {
                return Err(SfuError::StaleAnswer {
                    got: revision,
                    expected,
                });
            }
            Some(_) => {}
        }
        let applied = RTCSessionDescription::answer(sdp)
            .and_then(|answer| self.conns[key].pc.set_remote_description(now, answer));
        if let Err(e) = applied {
            // The offer cannot complete any more: start over on a new connection, so the client
            // is not left without offers (issue 10, item 4).
            tracing::warn!(%participant, revision, "subscribe answer refused ({e}); restarting the subscribe connection");
            self.restart_subscribe(now, participant);
            return Err(rtc_sdp_error(e));
        }
        if let Some(p) = self.participants.get_mut(&participant) {
            p.negotiation.awaiting = None;
        }
        let freed = self.free_retired(key, revision);
        self.bind_downtracks(key, revision);
        if self.conns[key].connected {
            self.request_keyframes_for_subscriber(now, key);
        }
        self.mark_dirty(key);
        if freed > 0
            && let Some(p) = self.participants.get(&participant)
        {
            // Tracks that waited for these m-lines take them now (see `set_receives`).
            let receives = p.receives.clone();
            self.set_receives(now, participant, receives);
        }
        Ok(())
    }
}

impl WorkerCore {
    /// The answer timer of `revision`: if that offer is still unanswered, the client will not
    /// answer it (it refused it, lost it, or its answer was refused before reaching us).
    pub(super) fn answer_overdue(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        revision: u64,
    ) {
        let Some(p) = self.participants.get(&participant) else {
            return;
        };
        if p.negotiation.awaiting != Some(revision) {
            return;
        }
        tracing::warn!(%participant, revision, "no subscribe answer in {ANSWER_TIMEOUT:?}; restarting the subscribe connection");
        self.restart_subscribe(now, participant);
    }

    /// The client says the subscribe connection on which it applied offer `revision` failed
    /// (`restart_subscribe`). A report about a connection already replaced changes nothing.
    pub(super) fn client_subscribe_failed(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        revision: u64,
    ) -> Result<(), SfuError> {
        let p = self
            .participants
            .get(&participant)
            .ok_or(SfuError::NoSuchParticipant)?;
        if p.subscribe.is_none() || revision < p.negotiation.conn_revision {
            tracing::debug!(%participant, revision, "restart_subscribe about a connection already gone; ignored");
            return Ok(());
        }
        tracing::info!(%participant, revision, "the client reports its subscribe connection failed; restarting it");
        self.restart_subscribe_soon(now, participant);
        Ok(())
    }

    /// Restarts `participant`'s subscribe connection now, or when the gap since the last
    /// restart has passed.
    pub(super) fn restart_subscribe_soon(&mut self, now: Instant, participant: ParticipantId) {
        let Some(p) = self.participants.get_mut(&participant) else {
            return;
        };
        let gap = RESTART_GAP;
        match p.negotiation.last_restart {
            Some(last) if now < last + gap => {
                if !p.negotiation.restart_pending {
                    p.negotiation.restart_pending = true;
                    self.timers
                        .push(std::cmp::Reverse((last + gap, Timer::Restart(participant))));
                }
            }
            _ => self.restart_subscribe(now, participant),
        }
    }

    /// The timer of a restart that waited for the gap.
    pub(super) fn restart_due(&mut self, now: Instant, participant: ParticipantId) {
        let Some(p) = self.participants.get_mut(&participant) else {
            return;
        };
        if std::mem::take(&mut p.negotiation.restart_pending) {
            self.restart_subscribe(now, participant);
        }
    }
}
