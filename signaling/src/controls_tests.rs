//! The controls' state machine, action by action.

use super::*;

const CHAIR: Actor<'static> = Actor {
    point: "06",
    role: Role::Chair,
};

fn pt(code: &'static str) -> Actor<'static> {
    Actor {
        point: code,
        role: Role::Point,
    }
}

fn present(codes: &[&str]) -> BTreeSet<String> {
    codes.iter().map(|c| c.to_string()).collect()
}

#[test]
fn hand_grant_revoke_cycle() {
    let mut c = Controls::default();
    let here = present(&["a", "b"]);
    c.apply(
        pt("a"),
        Action::RaiseHand {
            text: Some("xin phát biểu".into()),
        },
        &here,
        0,
    )
    .unwrap();
    c.apply(pt("b"), Action::RaiseHand { text: None }, &here, 10)
        .unwrap();
    assert_eq!(c.hands.len(), 2);
    assert!(c.apply(CHAIR, Action::Next, &here, 20).unwrap().routing);
    assert!(c.holds_floor("a") && c.audio_open("a") && !c.audio_open("b"));
    assert_eq!(c.hands.len(), 1, "the granted hand leaves the queue");
    c.apply(CHAIR, Action::Revoke, &here, 30).unwrap();
    assert!(!c.audio_open("a"));
    assert_eq!(
        c.apply(CHAIR, Action::Revoke, &here, 31),
        Err(ControlError::InvalidState("nobody holds the floor"))
    );
}

#[test]
fn points_cannot_use_chair_actions() {
    let mut c = Controls::default();
    let here = present(&["a", "b"]);
    for action in [
        Action::Grant { point: "a".into() },
        Action::Revoke,
        Action::Next,
        Action::SetMute {
            point: Some("b".into()),
            muted: false,
        },
        Action::SetMute {
            point: None,
            muted: false,
        },
        Action::StartRollCall,
        Action::EndRollCall,
        Action::SetDiscussion(true),
        Action::AllowShare(true),
        Action::LowerHand {
            point: Some("b".into()),
        },
    ] {
        assert!(
            matches!(
                c.apply(pt("a"), action.clone(), &here, 0),
                Err(ControlError::Forbidden(_))
            ),
            "{action:?}"
        );
    }
    assert!(c.floor.is_none() && c.unmuted.is_empty() && c.roll_call.is_none() && !c.discussion);
    // And the chair cannot raise a hand or answer a roll call.
    assert!(matches!(
        c.apply(CHAIR, Action::RaiseHand { text: None }, &here, 0),
        Err(ControlError::Forbidden(_))
    ));
}

#[test]
fn the_floor_holder_hands_the_floor_back_but_cannot_end_another_turn() {
    let mut c = Controls::default();
    let here = present(&["a", "b"]);
    c.apply(CHAIR, Action::Grant { point: "a".into() }, &here, 10)
        .unwrap();
    assert!(matches!(
        c.apply(pt("b"), Action::Revoke, &here, 11),
        Err(ControlError::Forbidden(_))
    ));
    assert!(c.holds_floor("a"));
    let change = c.apply(pt("a"), Action::Revoke, &here, 12).unwrap();
    assert!(change.routing, "its microphone closes for everyone");
    assert!(c.floor.is_none() && !c.audio_open("a"));
}

#[test]
fn actions_on_absent_points_are_refused() {
    let mut c = Controls::default();
    let here = present(&["a"]);
    assert_eq!(
        c.apply(CHAIR, Action::Grant { point: "zz".into() }, &here, 0),
        Err(ControlError::NotInRoom("zz".into()))
    );
    assert_eq!(
        c.apply(
            CHAIR,
            Action::SetMute {
                point: Some("zz".into()),
                muted: false
            },
            &here,
            0
        ),
        Err(ControlError::NotInRoom("zz".into()))
    );
    assert!(c.floor.is_none() && c.unmuted.is_empty());
}

#[test]
fn two_grants_leave_exactly_one_holder() {
    let mut c = Controls::default();
    let here = present(&["a", "b"]);
    c.apply(CHAIR, Action::Grant { point: "a".into() }, &here, 0)
        .unwrap();
    c.apply(CHAIR, Action::Grant { point: "b".into() }, &here, 0)
        .unwrap();
    assert!(c.holds_floor("b") && !c.holds_floor("a"));
    assert!(
        !c.audio_open("a"),
        "the previous holder's microphone closes"
    );
}

#[test]
fn the_floor_survives_a_reconnect_of_its_holder_but_hands_do_not() {
    let mut c = Controls::default();
    let here = present(&["a", "b"]);
    c.apply(pt("b"), Action::RaiseHand { text: None }, &here, 0)
        .unwrap();
    c.apply(CHAIR, Action::Grant { point: "a".into() }, &here, 0)
        .unwrap();
    c.left("a");
    c.left("b");
    assert!(
        c.holds_floor("a"),
        "floor is keyed by point, not connection"
    );
    assert!(c.hands.is_empty());
    // While "a" is away, Next finds nobody present with a hand.
    let away = present(&["b"]);
    assert!(matches!(
        c.apply(CHAIR, Action::Next, &away, 5),
        Err(ControlError::InvalidState(_))
    ));
}

#[test]
fn hand_floods_are_rate_limited_and_do_not_duplicate() {
    let mut c = Controls::default();
    let here = present(&["a"]);
    c.apply(pt("a"), Action::RaiseHand { text: None }, &here, 0)
        .unwrap();
    assert_eq!(
        c.apply(pt("a"), Action::RaiseHand { text: None }, &here, 500),
        Err(ControlError::RateLimited)
    );
    c.apply(
        pt("a"),
        Action::RaiseHand {
            text: Some("again".into()),
        },
        &here,
        2_500,
    )
    .unwrap();
    assert_eq!(c.hands.len(), 1);
    assert_eq!(c.hands[0].at, 0, "keeps its place in the queue");
}

#[test]
fn roll_call_records_first_answers_only_while_running() {
    let mut c = Controls::default();
    let here = present(&["a", "b"]);
    assert!(matches!(
        c.apply(pt("a"), Action::AnswerRollCall, &here, 0),
        Err(ControlError::InvalidState(_))
    ));
    c.apply(CHAIR, Action::StartRollCall, &here, 100).unwrap();
    c.apply(pt("a"), Action::AnswerRollCall, &here, 150)
        .unwrap();
    c.apply(pt("a"), Action::AnswerRollCall, &here, 170)
        .unwrap();
    c.apply(pt("b"), Action::AnswerRollCall, &here, 180)
        .unwrap();
    c.apply(CHAIR, Action::EndRollCall, &here, 200).unwrap();
    let r = c.roll_call_info().unwrap();
    assert_eq!(
        r.answers
            .iter()
            .map(|a| (a.point.as_str(), a.at))
            .collect::<Vec<_>>(),
        vec![("a", 150), ("b", 180)]
    );
    assert_eq!(r.ended_at, Some(200));
    assert!(matches!(
        c.apply(pt("b"), Action::AnswerRollCall, &here, 300),
        Err(ControlError::InvalidState(_))
    ));
}

#[test]
fn mute_all_and_unmute_all() {
    let mut c = Controls::default();
    let here = present(&["a", "b"]);
    c.apply(
        CHAIR,
        Action::SetMute {
            point: None,
            muted: false,
        },
        &here,
        0,
    )
    .unwrap();
    assert!(c.audio_open("a") && c.audio_open("b"));
    c.apply(
        CHAIR,
        Action::SetMute {
            point: None,
            muted: true,
        },
        &here,
        0,
    )
    .unwrap();
    assert!(!c.audio_open("a") && !c.audio_open("b"));
}

#[test]
fn recent_speakers_keep_the_last_four() {
    let mut c = Controls {
        discussion: true,
        ..Default::default()
    };
    for p in ["a", "b", "c", "d", "e"] {
        let (_, routing) = c.speaking(p, true);
        assert!(routing, "{p} is new to the set");
    }
    assert_eq!(c.recent_speakers, ["e", "d", "c", "b"]);
    assert_eq!(
        c.speaking("c", true),
        (false, false),
        "already speaking and in the set"
    );
    assert_eq!(c.recent_speakers, ["c", "e", "d", "b"]);
}

#[test]
fn the_chair_sends_a_present_point_up_and_itself_back() {
    let mut c = Controls::default();
    let here = present(&["a"]);
    let send = |point: Option<&str>| Action::SendUp {
        point: point.map(str::to_owned),
    };
    assert!(c.apply(CHAIR, send(Some("a")), &here, 0).unwrap().routing);
    assert_eq!(c.sent_up.as_deref(), Some("a"));
    // Its own code or none: the chair goes up again.
    c.apply(CHAIR, send(Some("06")), &here, 1).unwrap();
    assert_eq!(c.sent_up, None);
    c.apply(CHAIR, send(Some("a")), &here, 2).unwrap();
    c.apply(CHAIR, send(None), &here, 3).unwrap();
    assert_eq!(c.sent_up, None);
}

#[test]
fn only_the_chair_sends_up_and_only_a_point_that_is_here() {
    let mut c = Controls::default();
    let here = present(&["a"]);
    let send = |p: &str| Action::SendUp {
        point: Some(p.to_owned()),
    };
    assert!(matches!(
        c.apply(pt("a"), send("a"), &here, 0),
        Err(ControlError::Forbidden(_))
    ));
    assert_eq!(
        c.apply(CHAIR, send("b"), &here, 0),
        Err(ControlError::NotInRoom("b".into()))
    );
    assert_eq!(c.sent_up, None);
}

#[test]
fn the_chair_raises_a_hand_upstream_for_a_point_or_itself_and_lowers_it() {
    let mut c = Controls::default();
    let here = present(&["a"]);
    let up = |point: Option<&str>, text: Option<&str>| Action::RaiseHandUp {
        point: point.map(str::to_owned),
        text: text.map(str::to_owned),
    };
    c.apply(CHAIR, up(Some("a"), Some("mục 2")), &here, 5)
        .unwrap();
    let hand = c.hand_up.clone().expect("raised");
    assert_eq!(
        (hand.point.as_str(), hand.text.as_deref()),
        ("a", Some("mục 2"))
    );
    // For the province itself: the chair's own code.
    c.apply(CHAIR, up(None, None), &here, 6).unwrap();
    assert_eq!(c.hand_up.as_ref().map(|h| h.point.as_str()), Some("06"));
    c.apply(CHAIR, Action::LowerHandUp, &here, 7).unwrap();
    assert_eq!(c.hand_up, None);
    assert_eq!(
        c.apply(CHAIR, Action::LowerHandUp, &here, 8),
        Err(ControlError::InvalidState("no hand is raised upstream"))
    );
}

#[test]
fn only_the_chair_raises_a_hand_upstream_and_only_for_a_point_that_is_here() {
    let mut c = Controls::default();
    let here = present(&["a"]);
    let up = |p: &str| Action::RaiseHandUp {
        point: Some(p.to_owned()),
        text: None,
    };
    assert!(matches!(
        c.apply(pt("a"), up("a"), &here, 0),
        Err(ControlError::Forbidden(_))
    ));
    assert!(matches!(
        c.apply(pt("a"), Action::LowerHandUp, &here, 0),
        Err(ControlError::Forbidden(_))
    ));
    assert_eq!(
        c.apply(CHAIR, up("b"), &here, 0),
        Err(ControlError::NotInRoom("b".into()))
    );
    assert_eq!(c.hand_up, None);
}
