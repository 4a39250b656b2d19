//! Media-plane events as protocol messages.

use sfu::MediaEvent;

use crate::protocol::{self, PROTOCOL_VERSION, PcKind, PcState, ServerMessage, TrackInfo};

pub(super) fn media_message(event: MediaEvent) -> ServerMessage {
    let v = PROTOCOL_VERSION;
    let pc_kind = |pc| match pc {
        sfu::PcKind::Publish => PcKind::Publish,
        sfu::PcKind::Subscribe => PcKind::Subscribe,
    };
    match event {
        MediaEvent::SubscribeOffer {
            revision,
            sdp,
            tracks,
            restart,
        } => ServerMessage::SubscribeOffer {
            v,
            revision,
            sdp,
            restart,
            tracks: tracks
                .into_iter()
                .map(|t| TrackInfo {
                    mid: t.mid,
                    participant: t.publisher.to_string(),
                    kind: match t.kind {
                        sfu::TrackKind::Audio => protocol::MediaKind::Audio,
                        sfu::TrackKind::Video => protocol::MediaKind::Video,
                    },
                    source: source_of(t.source),
                    layer: t.layer,
                })
                .collect(),
        },
        MediaEvent::VideoPaused { tracks } => ServerMessage::VideoPaused {
            v,
            tracks: tracks
                .into_iter()
                .map(|(publisher, source)| protocol::PausedTrack {
                    participant: publisher.to_string(),
                    source: source_of(source),
                })
                .collect(),
        },
        MediaEvent::Candidate { pc, candidate } => ServerMessage::Candidate {
            v,
            pc: pc_kind(pc),
            candidate: protocol::IceCandidate {
                candidate: candidate.candidate,
                sdp_mid: candidate.sdp_mid,
                sdp_m_line_index: candidate.sdp_m_line_index,
                username_fragment: None,
            },
        },
        // Handled by the session before conversion (see `recv_inbox`); never reaches here.
        MediaEvent::Speaking { .. } | MediaEvent::LinkQuality { .. } => ServerMessage::Pong { v },
        MediaEvent::ConnectionState { pc, state } => ServerMessage::ConnectionState {
            v,
            pc: pc_kind(pc),
            state: match state {
                sfu::ConnState::Connecting => PcState::Connecting,
                sfu::ConnState::Connected => PcState::Connected,
                sfu::ConnState::Disconnected => PcState::Disconnected,
                sfu::ConnState::Failed => PcState::Failed,
                sfu::ConnState::Closed => PcState::Closed,
            },
        },
    }
}

fn source_of(source: sfu::TrackSource) -> protocol::Source {
    match source {
        sfu::TrackSource::Microphone => protocol::Source::Microphone,
        sfu::TrackSource::Camera => protocol::Source::Camera,
        sfu::TrackSource::Screen => protocol::Source::Screen,
    }
}
