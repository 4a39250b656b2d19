//! The worker core in virtual time: what a point receives from the chair, decided by the
//! production code, over lines that are exactly what each test says.

use std::time::Duration;

use super::meeting::{Meeting, clean_line};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_point_on_a_clean_line_receives_the_chairs_camera_at_720p_with_no_gap() {
    let mut m = Meeting::new(1, 1, clean_line());
    m.run_for(secs(8));
    assert!(m.chair.connected && m.points[0].connected);
    assert!(m.logs[0].errors.is_empty(), "{:?}", m.logs[0].errors);
    let probes = m.server.metric("hoinghi_probes_total");
    let v = m.video(0).expect("the point receives video");
    assert_eq!(v.resolution(), Some((1280, 720)), "{:?}", v.keyframes);
    let line = m.net.stats(m.downlinks[0]);
    eprintln!(
        "gaps {} late {} packets {} line {line:?} probes {}",
        v.gaps, v.late, v.packets, probes
    );
    assert_eq!(v.gaps, 0);
    assert!(m.points[0].errors.is_empty(), "{:?}", m.points[0].errors);
    assert_eq!(
        line.dropped_queue, 0,
        "probe padding in bursts overflowed the queue"
    );
}

/// A line like `constrained.mjs`'s: unconstrained, then 400 kbit/s with a 20-packet queue
/// (what htb and pfifo make of loopback there), then unconstrained again.
struct Narrowed {
    /// Seconds after the drop until the point decodes 360p or less.
    moved_off_720p: Option<u64>,
    /// Seconds of the constrained window (after the move) with fewer than 5 frames.
    starved: u64,
    /// Whether 720p came back while constrained.
    top_while_narrow: bool,
    /// Seconds after the recovery until 720p.
    back_to_720p: Option<u64>,
    /// Packets the line's queue dropped over the whole run.
    queue_drops: u64,
}

const WIDE: u64 = 20_000_000;
const NARROW: u64 = 400_000;

fn narrowed(seed: u64) -> Narrowed {
    let mut m = Meeting::new(seed, 1, clean_line());
    let (drop_at, lift_at, end) = (8, 38, 58);
    let t0 = m.clock.epoch();
    m.net
        .schedule_rate(m.downlinks[0], t0 + secs(drop_at), Some(NARROW));
    m.net
        .schedule_rate(m.downlinks[0], t0 + secs(lift_at), Some(WIDE));
    m.run_for(secs(end));
    assert!(m.logs[0].errors.is_empty(), "{:?}", m.logs[0].errors);
    let height = |s: u64| m.height_at(0, secs(s));
    let moved_off_720p = (drop_at..lift_at).find(|&s| height(s) <= 360 && height(s) > 0);
    let settled = moved_off_720p.unwrap_or(lift_at);
    let v = m.video(0).expect("video");
    let frames = |s: u64| {
        v.seconds
            .get(&s)
            .map_or(0, |x| x.frames_by_tid.iter().sum::<u64>())
    };
    let starved = (settled..lift_at).filter(|&s| frames(s) < 5).count() as u64;
    let top_while_narrow = (settled..lift_at).any(|s| height(s) == 720);
    let back_to_720p = (lift_at..end)
        .find(|&s| height(s) == 720)
        .map(|s| s - lift_at);
    Narrowed {
        moved_off_720p: moved_off_720p.map(|s| s - drop_at),
        starved,
        top_while_narrow,
        back_to_720p,
        queue_drops: m.net.stats(m.downlinks[0]).dropped_queue,
    }
}

#[test]
fn behind_400_kbit_s_the_point_moves_off_720p_keeps_playing_and_climbs_back() {
    let n = narrowed(1);
    eprintln!(
        "off 720p after {:?} s, starved {} s, 720p while narrow {}, back after {:?} s, queue drops {}",
        n.moved_off_720p, n.starved, n.top_while_narrow, n.back_to_720p, n.queue_drops
    );
    assert!(
        n.moved_off_720p.is_some_and(|s| s <= 3),
        "{:?}",
        n.moved_off_720p
    );
    assert_eq!(n.starved, 0, "seconds with fewer than 5 frames");
    assert!(!n.top_while_narrow);
    assert!(
        n.back_to_720p.is_some_and(|s| s <= 8),
        "{:?}",
        n.back_to_720p
    );
}
