//! hoinghi patch: a renegotiation that keeps a receiver's simulcast rids keeps the layer SSRCs
//! learnt from the `rtp-stream-id` header extension (see `start_rtp` in `internal.rs`). Without
//! the patch the receiver is rebuilt with every SSRC unknown, and since Chromium stops sending
//! the rid extension once its SSRCs are acknowledged, its layers would never be found again.

use std::time::Instant;

use super::*;
use crate::peer_connection::configuration::media_engine::MediaEngine;
use crate::rtp_transceiver::rtp_sender::{RTCRtpHeaderExtensionCapability, RtpCodecKind};

/// A Chromium-shaped offer publishing one camera in three simulcast layers; `{version}` is the
/// session version, which a renegotiation raises.
const SIMULCAST_SEND_OFFER: &str = "v=0
o=- 4215775240449105457 {version} IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS
m=video 9 UDP/TLS/RTP/SAVPF 96
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:4ZcD
a=ice-pwd:2/1muCWoOi3uLifh0NuRHlkwz
a=ice-options:trickle
a=fingerprint:sha-256 F2:1C:F2:9E:B4:BE:58:19:C9:48:1A:D9:C4:A7:5D:5A:1F:61:7C:17:6B:07:8E:39:A2:E2:B2:BB:BF:4B:D2:16
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:2 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=sendonly
a=msid:camera camera-video
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rid:q send
a=rid:h send
a=rid:f send
a=simulcast:send q;h;f
";

fn offer(version: u32) -> RTCSessionDescription {
    let sdp = SIMULCAST_SEND_OFFER
        .replace("{version}", &version.to_string())
        .replace('\n', "\r\n");
    RTCSessionDescription::offer(sdp).expect("a well-formed offer")
}

fn answerer() -> RTCPeerConnection {
    let mut media_engine = MediaEngine::default();
    media_engine.register_default_codecs().expect("codecs");
    for uri in [
        "urn:ietf:params:rtp-hdrext:sdes:mid",
        "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    ] {
        let extension = RTCRtpHeaderExtensionCapability {
            uri: uri.to_owned(),
        };
        media_engine
            .register_header_extension(extension, RtpCodecKind::Video, None)
            .expect("header extension");
    }
    RTCPeerConnectionBuilder::new()
        .with_media_engine(media_engine)
        .build(Instant::now())
        .expect("a peer connection")
}

fn negotiate(pc: &mut RTCPeerConnection, version: u32) {
    pc.set_remote_description(Instant::now(), offer(version))
        .expect("remote offer");
    let answer = pc.create_answer(None).expect("answer");
    pc.set_local_description(Instant::now(), answer)
        .expect("local answer");
}

/// The receiver's (rid, SSRC) per simulcast layer.
fn layers(pc: &mut RTCPeerConnection) -> Vec<(String, Option<u32>)> {
    let [transceiver] = pc.rtp_transceivers.as_mut_slice() else {
        panic!("one transceiver for the one m-line");
    };
    let receiver = transceiver.receiver_mut().as_mut().expect("a receiver");
    receiver
        .get_coding_parameters()
        .iter()
        .map(|coding| (coding.rid.clone(), coding.ssrc))
        .collect()
}

#[test]
fn a_renegotiation_with_the_same_rids_keeps_the_learnt_layer_ssrcs() {
    let mut pc = answerer();
    negotiate(&mut pc, 2);
    let unknown: Vec<_> = ["q", "h", "f"].map(|rid| (rid.to_owned(), None)).into();
    assert_eq!(layers(&mut pc), unknown);

    // What the endpoint handler does when a layer's first packets carry their rid.
    {
        let [transceiver] = pc.rtp_transceivers.as_mut_slice() else {
            unreachable!()
        };
        let receiver = transceiver.receiver_mut().as_mut().expect("a receiver");
        for (ssrc, rid) in [(1001, "q"), (1002, "h"), (1003, "f")] {
            receiver
                .get_coding_parameter_mut_by_rid(rid)
                .expect("a coding per rid")
                .ssrc = Some(ssrc);
        }
    }

    // The publisher renegotiates (a screen share added, say) with the same camera layers.
    negotiate(&mut pc, 3);
    let learnt: Vec<_> = [("q", 1001), ("h", 1002), ("f", 1003)]
        .map(|(rid, ssrc)| (rid.to_owned(), Some(ssrc)))
        .into();
    assert_eq!(layers(&mut pc), learnt);
}

#[test]
fn a_renegotiation_with_other_rids_rebuilds_the_layers() {
    let mut pc = answerer();
    negotiate(&mut pc, 2);
    {
        let [transceiver] = pc.rtp_transceivers.as_mut_slice() else {
            unreachable!()
        };
        let receiver = transceiver.receiver_mut().as_mut().expect("a receiver");
        receiver
            .get_coding_parameter_mut_by_rid("q")
            .expect("a coding per rid")
            .ssrc = Some(1001);
    }

    // Two layers now: nothing learnt about the old three is kept.
    let two_layers = offer(3)
        .sdp
        .replace("a=rid:f send\r\n", "")
        .replace("a=simulcast:send q;h;f", "a=simulcast:send q;h");
    pc.set_remote_description(
        Instant::now(),
        RTCSessionDescription::offer(two_layers).unwrap(),
    )
    .expect("remote offer");
    let answer = pc.create_answer(None).expect("answer");
    pc.set_local_description(Instant::now(), answer)
        .expect("local answer");
    let unknown: Vec<_> = ["q", "h"].map(|rid| (rid.to_owned(), None)).into();
    assert_eq!(layers(&mut pc), unknown);
}
