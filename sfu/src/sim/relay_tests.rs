//! A relay subscriber (the cascade's downstream server) in virtual time: it receives every
//! simulcast layer of the chair's camera, each on an m-line and SSRC of its own named by its
//! rank in the offer's tracks, and the allocator never pauses or thins them.

use std::collections::BTreeSet;
use std::time::Duration;

use super::meeting::{CHAIR, Meeting, clean_line};
use super::record::StreamStats;
use crate::api::{Subscription, TrackKind};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn relay() -> Subscription {
    Subscription {
        every_layer: true,
        ..Subscription::all(CHAIR)
    }
}

/// The video streams point `i` received (those that carried keyframes), by SSRC.
fn videos(m: &Meeting, i: usize) -> Vec<(u32, &StreamStats)> {
    m.points[i]
        .recorder
        .streams
        .iter()
        .filter(|(_, s)| !s.keyframes.is_empty())
        .map(|(ssrc, s)| (*ssrc, s))
        .collect()
}

#[test]
fn a_relay_receives_every_layer_on_an_m_line_of_its_own_named_by_its_rank() {
    let mut m = Meeting::new(1, 1, clean_line());
    m.route(0, relay());
    m.run_for(secs(6));
    assert!(m.logs[0].errors.is_empty(), "{:?}", m.logs[0].errors);
    let published = m.chair.publish().expect("the chair publishes").layers.len();
    assert!(
        published >= 3,
        "the chair sends simulcast: {published} layers"
    );

    let tracks = &m.logs[0].tracks;
    let video_layers: Vec<Option<u8>> = tracks
        .iter()
        .filter(|t| t.kind == TrackKind::Video)
        .map(|t| t.layer)
        .collect();
    let expected: Vec<Option<u8>> = (0..published as u8).map(Some).collect();
    assert_eq!(video_layers, expected, "{tracks:?}");
    let mids: BTreeSet<&str> = tracks.iter().map(|t| t.mid.as_str()).collect();
    assert_eq!(mids.len(), tracks.len(), "an m-line each: {tracks:?}");
    assert!(
        tracks
            .iter()
            .filter(|t| t.kind == TrackKind::Audio)
            .all(|t| t.layer.is_none()),
        "audio has no layer: {tracks:?}"
    );

    // One stream per layer, each at one height from its first keyframe on (never switched),
    // whole (no number skipped or repeated), all flowing.
    let videos = videos(&m, 0);
    assert_eq!(videos.len(), published, "one SSRC per layer");
    let mut heights = BTreeSet::new();
    for (ssrc, v) in &videos {
        let own: BTreeSet<u16> = v.keyframes.iter().map(|k| k.2).collect();
        assert_eq!(
            own.len(),
            1,
            "stream {ssrc} switched layers: {:?}",
            v.keyframes
        );
        heights.extend(own);
        assert_eq!((v.gaps, v.duplicates), (0, 0), "stream {ssrc}");
        assert!(v.packets > 100, "stream {ssrc}: {} packets", v.packets);
    }
    assert_eq!(heights.len(), published, "every layer, once: {heights:?}");
    assert!(
        heights.contains(&180) && heights.contains(&720),
        "{heights:?}"
    );
    assert!(m.audio(0).is_some_and(|a| a.packets > 100));
}

#[test]
fn the_allocator_neither_pauses_nor_thins_a_relays_layers_on_a_narrow_line() {
    let mut m = Meeting::new(1, 1, clean_line());
    m.route(0, relay());
    m.run_for(secs(4));
    let t0 = m.clock.epoch();
    // Far below the three layers together: a point's camera would be paused here.
    m.net
        .schedule_rate(m.downlinks[0], t0 + secs(4), Some(150_000));
    m.run_for(secs(16));
    assert!(
        m.logs[0].paused.iter().all(|&(_, n)| n == 0),
        "a relay's layer was paused: {:?}",
        m.logs[0].paused
    );
    let last = m.elapsed().as_secs() - 1;
    let videos = videos(&m, 0);
    assert!(videos.len() >= 3);
    for (ssrc, v) in videos {
        let recent: u64 = (last - 4..=last)
            .map(|s| v.seconds.get(&s).map_or(0, |x| x.packets))
            .sum();
        assert!(recent > 0, "layer stream {ssrc} stopped on the narrow line");
    }
}
