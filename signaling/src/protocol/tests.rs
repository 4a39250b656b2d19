use super::*;

fn code_of(text: &str) -> ErrorCode {
    parse_client_message(text).unwrap_err().code
}

#[test]
fn client_messages_round_trip() {
    let msgs = vec![
        ClientMessage::Join {
            v: 1,
            token: "abc".into(),
            resume: None,
            chain: vec![],
        },
        ClientMessage::Join {
            v: 1,
            token: "abc".into(),
            resume: None,
            chain: vec!["9f3c2a1b7d4e5f60".into(), "tinh-b".into()],
        },
        ClientMessage::PublishOffer {
            v: 1,
            sdp: "v=0\r\n".into(),
            sources: vec![TrackSource {
                mid: "2".into(),
                source: Source::Screen,
            }],
        },
        ClientMessage::RaiseHand {
            v: 1,
            text: Some("Xin phát biểu".into()),
        },
        ClientMessage::GrantFloor {
            v: 1,
            point: "06".into(),
        },
        ClientMessage::SetMute {
            v: 1,
            point: None,
            muted: true,
        },
        ClientMessage::Chat {
            v: 1,
            to: ChatTarget::Chair,
            text: "Đã nghe rõ".into(),
        },
        ClientMessage::Viewport {
            v: 1,
            visible: vec!["p2".into()],
        },
        ClientMessage::SubscribeAnswer {
            v: 1,
            revision: 3,
            sdp: "v=0\r\n".into(),
        },
        ClientMessage::Candidate {
            v: 1,
            pc: PcKind::Subscribe,
            candidate: IceCandidate {
                candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: None,
            },
        },
        ClientMessage::Ping { v: 1 },
        ClientMessage::Leave { v: 1 },
    ];
    for m in msgs {
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(parse_client_message(&text).unwrap(), m, "{text}");
    }
}

#[test]
fn server_messages_round_trip() {
    let m = ServerMessage::SubscribeOffer {
        v: 1,
        revision: 2,
        sdp: "v=0".into(),
        tracks: vec![TrackInfo {
            mid: "0".into(),
            participant: "p1".into(),
            kind: MediaKind::Video,
            source: Source::Screen,
            layer: None,
        }],
        restart: false,
    };
    let text = m.to_json();
    assert!(text.contains("\"type\":\"subscribe_offer\""));
    // Left out when false (or absent), so clients written before them see no change.
    assert!(!text.contains("restart"), "{text}");
    assert!(!text.contains("layer"), "{text}");
    assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), m);
    // A relay's m-line names its layer.
    let ServerMessage::SubscribeOffer { mut tracks, .. } = m.clone() else {
        unreachable!()
    };
    tracks[0].layer = Some(2);
    let relay = ServerMessage::SubscribeOffer {
        v: 1,
        revision: 2,
        sdp: "v=0".into(),
        tracks,
        restart: false,
    };
    let text = relay.to_json();
    assert!(text.contains("\"layer\":2"), "{text}");
    assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), relay);
    let e = ServerMessage::error(ErrorCode::BadToken, "x", None);
    assert!(e.to_json().contains("\"fatal\":true"));
}

#[test]
fn rejections_have_stable_codes() {
    assert_eq!(code_of("{not json"), ErrorCode::BadJson);
    assert_eq!(code_of("[1,2]"), ErrorCode::BadMessage);
    assert_eq!(code_of(r#"{"v":1}"#), ErrorCode::UnknownType);
    assert_eq!(code_of(r#"{"v":1,"type":"dance"}"#), ErrorCode::UnknownType);
    assert_eq!(
        code_of(r#"{"v":2,"type":"ping"}"#),
        ErrorCode::UnsupportedVersion
    );
    assert_eq!(code_of(r#"{"type":"ping"}"#), ErrorCode::BadMessage);
    assert_eq!(
        code_of(r#"{"v":1,"type":"ping","extra":1}"#),
        ErrorCode::BadMessage
    );
    assert_eq!(
        code_of(r#"{"v":1,"type":"candidate","pc":"sideways","candidate":{"candidate":""}}"#),
        ErrorCode::BadMessage
    );
    let big = format!(
        r#"{{"v":1,"type":"publish_offer","sdp":"{}"}}"#,
        "a".repeat(MAX_MESSAGE_BYTES)
    );
    assert_eq!(code_of(&big), ErrorCode::TooLarge);
    let sdp = format!(
        r#"{{"v":1,"type":"publish_offer","sdp":"{}"}}"#,
        "a".repeat(MAX_SDP_BYTES + 1)
    );
    assert_eq!(code_of(&sdp), ErrorCode::BadMessage);
}

#[test]
fn chat_and_hand_text_are_bounded_plain_text() {
    let chat = |t: &str| serde_json::json!({"v":1,"type":"chat","to":"all","text":t}).to_string();
    assert!(parse_client_message(&chat("Xin chào <3 & cảm ơn")).is_ok());
    assert_eq!(
        code_of(&chat(&"a".repeat(MAX_CHAT_CHARS + 1))),
        ErrorCode::BadMessage
    );
    assert!(
        parse_client_message(&chat(&"ệ".repeat(MAX_CHAT_CHARS))).is_ok(),
        "characters, not bytes"
    );
    assert_eq!(
        code_of(&chat("<script>alert(1)</script>")),
        ErrorCode::BadMessage
    );
    assert_eq!(code_of(&chat("&lt;b&gt;")), ErrorCode::BadMessage);
    assert_eq!(code_of(&chat("   ")), ErrorCode::BadMessage);
    let hand = serde_json::json!({"v":1,"type":"raise_hand","text":"x".repeat(141)}).to_string();
    assert_eq!(code_of(&hand), ErrorCode::BadMessage);
}

#[test]
fn the_upward_controls_are_bounded_too() {
    let up = |v: serde_json::Value| v.to_string();
    let ok = up(serde_json::json!({"v":1,"type":"raise_hand_up","point":"xa","text":"mục 2"}));
    assert!(parse_client_message(&ok).is_ok());
    for bad in [
        serde_json::json!({"v":1,"type":"raise_hand_up","text":"x".repeat(141)}),
        serde_json::json!({"v":1,"type":"raise_hand_up","text":"<b>x</b>"}),
        serde_json::json!({"v":1,"type":"raise_hand_up","point":"p".repeat(129)}),
        serde_json::json!({"v":1,"type":"raise_hand_up","point":7}),
        serde_json::json!({"v":1,"type":"send_up","point":"p".repeat(129)}),
        serde_json::json!({"v":1,"type":"send_up","point":["a"]}),
        serde_json::json!({"v":1,"type":"lower_hand_up","point":"a"}),
    ] {
        assert_eq!(code_of(&up(bad.clone())), ErrorCode::BadMessage, "{bad}");
    }
}

#[test]
fn link_quality_classes() {
    assert_eq!(Quality::classify(Some(40), 0.0), Quality::Good);
    assert_eq!(Quality::classify(None, 0.01), Quality::Good);
    assert_eq!(Quality::classify(Some(200), 0.0), Quality::Fair);
    assert_eq!(Quality::classify(Some(40), 0.05), Quality::Fair);
    assert_eq!(Quality::classify(Some(40), 0.10), Quality::Poor);
    assert_eq!(Quality::classify(Some(900), 0.0), Quality::Poor);
}

#[test]
fn echoed_type_is_bounded() {
    let long = "x".repeat(10_000);
    let err = parse_client_message(&format!(r#"{{"v":1,"type":"{long}"}}"#)).unwrap_err();
    assert_eq!(err.request.unwrap().len(), 40);
    assert!(err.message.len() < 200);
}

#[test]
fn a_join_without_a_usable_token_is_the_fatal_bad_token() {
    let too_long = serde_json::json!({"v":1,"type":"join","token":"t".repeat(2049)}).to_string();
    for text in [
        r#"{"v":1,"type":"join","token":5}"#,
        r#"{"v":1,"type":"join"}"#,
        r#"{"v":1,"type":"join","token":""}"#,
        too_long.as_str(),
    ] {
        let e = parse_client_message(text).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadToken, "{text:.80}");
        assert!(e.code.is_fatal());
        assert_eq!(e.request.as_deref(), Some("join"));
    }
    let longest = serde_json::json!({"v":1,"type":"join","token":"ệ".repeat(2048)}).to_string();
    assert!(
        parse_client_message(&longest).is_ok(),
        "characters, not bytes"
    );
}

#[test]
fn not_joined_is_fatal() {
    assert!(ErrorCode::NotJoined.is_fatal());
    assert_eq!(ErrorCode::NotJoined.close_code(), 1008);
    assert_eq!(ErrorCode::TooLarge.close_code(), 1009);
}

#[test]
fn a_request_id_is_kept_apart_from_the_message_and_echoed_in_its_error() {
    let f = parse_client_frame(r#"{"v":1,"type":"ping","request_id":"a-1"}"#).unwrap();
    assert_eq!(f.message, ClientMessage::Ping { v: 1 });
    assert_eq!(f.request_id, Some(RequestId::Text("a-1".into())));
    let f = parse_client_frame(r#"{"v":1,"type":"revoke_floor","request_id":42}"#).unwrap();
    assert_eq!(f.request_id, Some(RequestId::Number(42)));

    // Errors found after the id was read carry it.
    let e = parse_client_frame(r#"{"v":1,"type":"grant_floor","request_id":7}"#).unwrap_err();
    assert_eq!(
        (e.code, e.request_id),
        (ErrorCode::BadMessage, Some(RequestId::Number(7)))
    );
    let e = parse_client_frame(r#"{"v":1,"type":"dance","request_id":"x"}"#).unwrap_err();
    assert_eq!(e.request_id, Some(RequestId::Text("x".into())));

    // The id itself is bounded and typed.
    let long = format!(
        r#"{{"v":1,"type":"ping","request_id":"{}"}}"#,
        "x".repeat(65)
    );
    for bad in [
        long.as_str(),
        r#"{"v":1,"type":"ping","request_id":""}"#,
        r#"{"v":1,"type":"ping","request_id":-1}"#,
        r#"{"v":1,"type":"ping","request_id":{"a":1}}"#,
    ] {
        let e = parse_client_frame(bad).unwrap_err();
        assert_eq!(
            (e.code, e.request_id),
            (ErrorCode::BadMessage, None),
            "{bad:.80}"
        );
    }

    let echoed = ServerMessage::Error {
        v: 1,
        code: ErrorCode::Forbidden,
        message: "m".into(),
        request: Some("grant_floor".into()),
        fatal: false,
        request_id: Some(RequestId::Number(7)),
    };
    assert!(echoed.to_json().contains(r#""request_id":7"#));
}

#[test]
fn an_error_quotes_at_most_a_short_piece_of_what_the_client_sent() {
    let field = "x".repeat(60_000);
    let text = format!(r#"{{"v":1,"type":"ping","{field}":1}}"#);
    let e = parse_client_message(&text).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadMessage);
    assert!(e.message.len() < 400, "{} bytes", e.message.len());
    assert!(e.message.contains("unknown field"), "{}", e.message);
}

#[test]
fn publish_state_is_two_booleans_and_the_roster_media_is_optional() {
    assert_eq!(
        parse_client_message(r#"{"v":1,"type":"publish_state","audio":true,"video":false}"#)
            .unwrap(),
        ClientMessage::PublishState {
            v: 1,
            audio: true,
            video: false,
        }
    );
    for bad in [
        r#"{"v":1,"type":"publish_state","audio":true}"#,
        r#"{"v":1,"type":"publish_state","audio":"yes","video":false}"#,
        r#"{"v":1,"type":"publish_state","audio":true,"video":false,"screen":true}"#,
    ] {
        assert_eq!(code_of(bad), ErrorCode::BadMessage, "{bad}");
    }
    // An entry without `media` (an older server, or a client that never said) still reads.
    let old: ParticipantInfo =
        serde_json::from_str(r#"{"id":"p2","point":"02","name":"X","role":"point"}"#).unwrap();
    assert_eq!(old.media, None);
    assert!(!serde_json::to_string(&old).unwrap().contains("media"));
    let m = ServerMessage::ParticipantMedia {
        v: 1,
        participant: "p2".into(),
        media: MediaState {
            audio: false,
            video: false,
        },
    };
    let text = m.to_json();
    assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), m);
}

#[test]
fn a_relay_chain_is_bounded_and_of_instance_ids() {
    let join = |chain: &str| format!(r#"{{"v":1,"type":"join","token":"t","chain":{chain}}}"#);
    assert!(parse_client_message(&join(r#"["ab-12"]"#)).is_ok());
    let sixteen = serde_json::to_string(&vec!["a"; MAX_CHAIN]).unwrap();
    assert!(parse_client_message(&join(&sixteen)).is_ok());
    let seventeen = serde_json::to_string(&vec!["a"; MAX_CHAIN + 1]).unwrap();
    assert_eq!(code_of(&join(&seventeen)), ErrorCode::BadMessage);
    for bad in [r#"[""]"#, r#"["A"]"#, r#"["a b"]"#, r#"[1]"#] {
        assert_eq!(code_of(&join(bad)), ErrorCode::BadMessage, "{bad}");
    }
    let long = serde_json::to_string(&vec!["a".repeat(MAX_INSTANCE_ID_CHARS + 1)]).unwrap();
    assert_eq!(code_of(&join(&long)), ErrorCode::BadMessage);
    assert!(ErrorCode::RelayLoop.is_fatal());
}
