//! The receiving half of a relay session: a subscribe connection that answers the server's
//! offers and hands on each packet of the meeting chair's microphone and camera layers (slot
//! 0: upstream, the national chair; locally, the province's chair) and, upstream, of one other
//! participant of the program at a time (slot 1: the floor holder) as [`Media`], and asks
//! them for keyframes by slot and stream. One screen share is relayed too (on slot 0, with the
//! chair's program: the chair's share if it has one, else the other participant's), and
//! whether there is one is told on a watch, so the other side's publisher can start and stop
//! its own share m-line when the offers do.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use signaling::protocol::{
    ClientMessage, MediaKind, PROTOCOL_VERSION, ParticipantInfo, Role, ServerMessage, Source,
    TrackInfo,
};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnection, PeerConnectionEventHandler};

use crate::Media;
use crate::forward::Route;
use crate::peer;

/// Whom a subscriber relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Relayed {
    /// The chair (slot 0) and its share.
    #[default]
    Chair,
    /// Upstream: the chair (slot 0) and one other participant of the program (slot 1: the
    /// first to send, until it leaves the offers), and one share (the chair's first).
    ChairAndOther,
    /// Locally: whatever the routing sends the seat, on slot 0 (the chair, or the point the
    /// chair sends up instead, beside the chair's share).
    Routed,
}

/// Which m-line carries what, as the offers' `tracks` say, the chair's id, and who has slot 1.
#[derive(Default)]
struct Program {
    chair: Option<String>,
    relayed: Relayed,
    /// Who has slot 1 ([`Relayed::ChairAndOther`]).
    other: Option<String>,
    /// [`Relayed::Routed`]: the participant the chair sends up instead of itself (from
    /// `room_state.sent_up`), and the ids of the meeting's points by code to find it. The
    /// server keeps paused m-lines in its offers, so the offers alone do not say who goes up.
    sent_up: Option<String>,
    ids: HashMap<String, String>,
    by_mid: HashMap<String, TrackInfo>,
    /// The receiving track of each mid, with the SSRC its packets carry (for PLIs).
    remotes: HashMap<String, (Arc<dyn TrackRemote>, u32)>,
}

impl Program {
    /// The slot of `participant`: 0 for the chair, 1 for the one other participant relayed (the
    /// first to send takes it, until it leaves the offers).
    fn slot(&mut self, participant: &str) -> Option<u8> {
        if self.relayed == Relayed::Routed {
            return (self.camera_owner(0) == Some(participant)).then_some(0);
        }
        if self.chair.as_deref() == Some(participant) {
            return Some(0);
        }
        if self.relayed == Relayed::Chair {
            return None;
        }
        match &self.other {
            Some(o) if o == participant => Some(1),
            Some(_) => None,
            None => {
                self.other = Some(participant.to_owned());
                Some(1)
            }
        }
    }

    /// Who has the share relayed: the chair when it shares, else (upstream, where the floor
    /// holder's share is forwarded while the chair allows it; or whatever the local routing
    /// sends) the first other participant that shares.
    fn screen_owner(&self) -> Option<&str> {
        let shares = |p: &str| {
            self.by_mid
                .values()
                .any(|t| t.participant == p && t.source == Source::Screen)
        };
        if let Some(chair) = self.chair.as_deref().filter(|c| shares(c)) {
            return Some(chair);
        }
        if self.relayed == Relayed::Chair {
            return None;
        }
        self.by_mid
            .values()
            .filter(|t| t.source == Source::Screen)
            .map(|t| t.participant.as_str())
            .min()
    }

    /// Where the packets of `mid` go (slot, stream) and how many camera layers its sender has;
    /// `None`: not relayed (a third participant, or a share that is not the one relayed).
    fn route(&mut self, mid: &str) -> Option<(u8, Route, u8)> {
        let t = self.by_mid.get(mid)?.clone();
        let route = match (t.kind, t.source) {
            (MediaKind::Audio, Source::Microphone) => Route::Audio,
            (MediaKind::Video, Source::Camera) => Route::Video {
                layer: t.layer.unwrap_or(0),
            },
            (MediaKind::Video, Source::Screen) => {
                let relayed = self.screen_owner() == Some(t.participant.as_str());
                return relayed.then_some((0, Route::Screen, 1));
            }
            _ => return None,
        };
        let slot = self.slot(&t.participant)?;
        let layers = self
            .by_mid
            .values()
            .filter(|o| o.participant == t.participant && o.source == Source::Camera)
            .map(|o| o.layer.unwrap_or(0).saturating_add(1))
            .max()
            .unwrap_or(1);
        Some((slot, route, layers))
    }

    /// The receiving track and SSRC of the stream `route` of slot `slot` (camera layers and the
    /// share: the streams a keyframe request names).
    fn remote(&self, slot: u8, route: Route) -> Option<(Arc<dyn TrackRemote>, u32)> {
        let (owner, source, layer) = match route {
            Route::Audio => return None,
            Route::Screen => (self.screen_owner()?, Source::Screen, 0),
            Route::Video { layer } => (self.camera_owner(slot)?, Source::Camera, layer),
        };
        let mid = self.by_mid.iter().find_map(|(mid, t)| {
            (t.participant == owner && t.source == source && t.layer.unwrap_or(0) == layer)
                .then_some(mid)
        })?;
        self.remotes.get(mid).cloned()
    }

    /// Whose camera slot `slot` carries.
    fn camera_owner(&self, slot: u8) -> Option<&str> {
        match (self.relayed, slot) {
            (Relayed::Routed, _) => self.sent_up.as_deref().or(self.chair.as_deref()),
            (_, 0) => self.chair.as_deref(),
            _ => self.other.as_deref(),
        }
    }

    /// Frees slot 1 when its participant has no m-line any more.
    fn release_gone(&mut self) {
        let gone = self
            .other
            .as_ref()
            .is_some_and(|o| !self.by_mid.values().any(|t| t.participant == *o));
        if gone {
            self.other = None;
        }
    }
}

type Shared = Arc<Mutex<Program>>;

fn lock(p: &Shared) -> MutexGuard<'_, Program> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hands each received track to the session loop, which knows the connection and its mids.
struct Handler {
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(track);
    }
}

pub struct Subscriber {
    bind_ip: IpAddr,
    program: Shared,
    pc: Option<Arc<dyn PeerConnection>>,
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
    media: mpsc::Sender<Media>,
    /// Whether the offers carry a share that is relayed.
    screen: Arc<watch::Sender<bool>>,
}

impl Subscriber {
    /// Packets of whom `relayed` says go to `media`. Received tracks are announced on the returned queue (hand each to
    /// [`Subscriber::read`]).
    /// Whether a share is relayed is told on `screen`.
    pub fn new(
        bind_ip: IpAddr,
        media: mpsc::Sender<Media>,
        screen: Arc<watch::Sender<bool>>,
        relayed: Relayed,
    ) -> (Subscriber, mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>) {
        let (tracks, tracks_rx) = mpsc::unbounded_channel();
        let program = Program {
            relayed,
            ..Program::default()
        };
        let s = Subscriber {
            bind_ip,
            program: Arc::new(Mutex::new(program)),
            pc: None,
            tracks,
            media,
            screen,
        };
        (s, tracks_rx)
    }

    /// The roster of `joined`: who the chair is.
    pub fn roster(&self, roster: &[ParticipantInfo]) {
        let mut p = lock(&self.program);
        p.chair = roster
            .iter()
            .find(|p| p.role == Role::Chair)
            .map(|p| p.id.clone());
        p.ids = roster
            .iter()
            .map(|p| (p.point.clone(), p.id.clone()))
            .collect();
    }

    /// Handles the messages about the subscribe connection and the chair; returns the reply
    /// to send, if any.
    pub async fn on_message(&mut self, m: &ServerMessage) -> anyhow::Result<Option<ClientMessage>> {
        match m {
            ServerMessage::SubscribeOffer {
                revision,
                sdp,
                tracks,
                restart,
                ..
            } => {
                if *restart && let Some(old) = self.pc.take() {
                    let _ = old.close().await;
                }
                let sharing = {
                    let mut p = lock(&self.program);
                    p.by_mid = tracks.iter().map(|t| (t.mid.clone(), t.clone())).collect();
                    if *restart {
                        p.remotes.clear();
                    }
                    p.release_gone();
                    p.screen_owner().is_some()
                };
                self.screen.send_if_modified(|on| {
                    let changed = *on != sharing;
                    *on = sharing;
                    changed
                });
                let pc = match &self.pc {
                    Some(pc) => pc.clone(),
                    None => {
                        let handler = Arc::new(Handler {
                            tracks: self.tracks.clone(),
                        });
                        let pc = peer::new_pc(self.bind_ip, handler, false).await?;
                        self.pc = Some(pc.clone());
                        pc
                    }
                };
                let sdp = peer::answer_offer(&pc, sdp.clone()).await?;
                Ok(Some(ClientMessage::SubscribeAnswer {
                    v: PROTOCOL_VERSION,
                    revision: *revision,
                    sdp,
                }))
            }
            ServerMessage::ParticipantJoined { participant, .. } => {
                let mut p = lock(&self.program);
                if participant.role == Role::Chair {
                    p.chair = Some(participant.id.clone());
                }
                p.ids
                    .insert(participant.point.clone(), participant.id.clone());
                Ok(None)
            }
            ServerMessage::RoomState { sent_up, .. } => {
                let mut p = lock(&self.program);
                // A point away is not routed: the chair goes up meanwhile, as the routing says.
                p.sent_up = sent_up.as_ref().and_then(|code| p.ids.get(code).cloned());
                Ok(None)
            }
            ServerMessage::ParticipantLeft { participant, .. } => {
                let mut p = lock(&self.program);
                p.ids.retain(|_, id| id != participant);
                if p.sent_up.as_deref() == Some(participant.as_str()) {
                    p.sent_up = None;
                }
                if p.chair.as_deref() == Some(participant.as_str()) {
                    p.chair = None;
                }
                if p.other.as_deref() == Some(participant.as_str()) {
                    p.other = None;
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    pub fn pc(&self) -> Option<&Arc<dyn PeerConnection>> {
        self.pc.as_ref()
    }

    /// Reads one received track, handing on its packets while its m-line is the chair's.
    pub async fn read(&self, track: Arc<dyn TrackRemote>) {
        let Some(pc) = &self.pc else { return };
        let Some(mid) = mid_of(pc, &track).await else {
            tracing::debug!("relay: a received track has no m-line");
            return;
        };
        let (program, media) = (self.program.clone(), self.media.clone());
        tokio::spawn(async move {
            while let Some(evt) = track.poll().await {
                let TrackRemoteEvent::OnRtpPacket(packet) = evt else {
                    continue;
                };
                let route = {
                    let mut p = lock(&program);
                    let route = p.route(&mid);
                    if route.is_some() {
                        p.remotes
                            .insert(mid.clone(), (track.clone(), packet.header.ssrc));
                    }
                    route
                };
                let Some((slot, route, layers)) = route else {
                    continue;
                };
                // A full queue means the other side is stalled: drop, as a lossy line would.
                let _ = media.try_send(Media {
                    slot,
                    route,
                    layers,
                    packet,
                });
            }
        });
    }

    /// Asks the sender of slot `slot` for a keyframe on the stream `route`.
    pub async fn request_keyframe(&self, slot: u8, route: Route) {
        let remote = lock(&self.program).remote(slot, route);
        if let Some((track, ssrc)) = remote {
            let _ = track
                .write_rtcp(vec![Box::new(PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc: ssrc,
                })])
                .await;
        }
    }

    pub async fn close(&mut self) {
        if let Some(pc) = self.pc.take() {
            let _ = pc.close().await;
        }
    }
}

/// The mid of the transceiver whose receiver is `track`.
async fn mid_of(pc: &Arc<dyn PeerConnection>, track: &Arc<dyn TrackRemote>) -> Option<String> {
    let id = track.track_id().await;
    for t in pc.get_transceivers().await {
        if let Ok(Some(r)) = t.receiver().await
            && r.track().track_id().await == id
        {
            return t.mid().await.ok().flatten();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(mid: &str, participant: &str, kind: MediaKind, source: Source) -> TrackInfo {
        TrackInfo {
            mid: mid.into(),
            participant: participant.into(),
            kind,
            source,
            layer: None,
        }
    }

    fn program(tracks: &[TrackInfo], relayed: Relayed) -> Program {
        Program {
            chair: Some("chair".into()),
            relayed,
            by_mid: tracks.iter().map(|t| (t.mid.clone(), t.clone())).collect(),
            ..Program::default()
        }
    }

    #[test]
    fn the_chairs_share_is_relayed_before_the_floor_holders() {
        let floor_share = track("1", "floor", MediaKind::Video, Source::Screen);
        let chair_share = track("2", "chair", MediaKind::Video, Source::Screen);
        let mut both = program(&[floor_share.clone(), chair_share], Relayed::ChairAndOther);
        assert_eq!(both.screen_owner(), Some("chair"));
        assert_eq!(both.route("2"), Some((0, Route::Screen, 1)));
        assert_eq!(both.route("1"), None, "one share at a time");

        let mut floor_only = program(std::slice::from_ref(&floor_share), Relayed::ChairAndOther);
        assert_eq!(floor_only.route("1"), Some((0, Route::Screen, 1)));
        assert_eq!(program(&[floor_share], Relayed::Chair).screen_owner(), None);
    }

    #[test]
    fn cameras_keep_their_slots_beside_a_share() {
        let mut p = program(
            &[
                track("0", "chair", MediaKind::Audio, Source::Microphone),
                track("1", "floor", MediaKind::Video, Source::Camera),
                track("2", "floor", MediaKind::Video, Source::Screen),
            ],
            Relayed::ChairAndOther,
        );
        assert_eq!(p.route("0"), Some((0, Route::Audio, 1)));
        assert_eq!(p.route("1"), Some((1, Route::Video { layer: 0 }, 1)));
        assert_eq!(p.route("2"), Some((0, Route::Screen, 1)));
    }

    #[test]
    fn the_local_side_relays_the_point_the_chair_sends_up_on_the_program_slot() {
        let mut p = program(
            &[
                track("0", "xa", MediaKind::Audio, Source::Microphone),
                track("1", "xa", MediaKind::Video, Source::Camera),
                track("2", "chair", MediaKind::Video, Source::Screen),
            ],
            Relayed::Routed,
        );
        p.sent_up = Some("xa".into());
        assert_eq!(p.route("0"), Some((0, Route::Audio, 1)));
        assert_eq!(p.route("1"), Some((0, Route::Video { layer: 0 }, 1)));
        assert_eq!(p.route("2"), Some((0, Route::Screen, 1)));
        assert_eq!(
            p.camera_owner(0),
            Some("xa"),
            "keyframe requests reach the point"
        );
        // Back to the chair: the point's m-lines, paused but still offered, are not relayed.
        p.sent_up = None;
        assert_eq!(p.route("1"), None);
        assert_eq!(p.camera_owner(0), Some("chair"));
    }
}
