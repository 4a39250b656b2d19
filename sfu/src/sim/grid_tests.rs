//! A chair's grid of thumbnails through a dip of its line (see `grid.rs`).

use std::time::Duration;

use super::grid::Grid;
use super::meeting::clean_line;
use super::net::{LinkConfig, QueueLimit};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The grid's timeline, second by second: thumbnails playing (≥ 5 frames).
fn show(g: &Grid, until: u64) -> String {
    let playing: Vec<String> = (0..until).map(|s| g.playing_in(s, 5).to_string()).collect();
    format!("playing {} notices {:?}", playing.join(" "), g.paused)
}

#[test]
fn a_grid_paused_by_a_dip_comes_back_together_when_the_line_does() {
    const POINTS: usize = 12;
    // A chair's line with a router's queue of 100 ms.
    let line = LinkConfig {
        queue: QueueLimit::Time(Duration::from_millis(100)),
        ..clean_line()
    };
    let mut g = Grid::new(1, POINTS, line);
    let t0 = g.clock.epoch();
    // 12 thumbnails at 150 kbit/s need 1.8 Mbit/s: 400 kbit/s carries two or three.
    g.net.schedule_rate(g.downlink, t0 + secs(8), Some(400_000));
    g.net
        .schedule_rate(g.downlink, t0 + secs(20), Some(20_000_000));
    g.run_for(secs(35));
    let timeline = show(&g, 35);
    println!("{timeline}");
    assert_eq!(g.errors, Vec::<String>::new());
    assert_eq!(
        g.playing_in(7, 5),
        POINTS,
        "all play before the dip: {timeline}"
    );
    assert!(
        (12..20).all(|s| g.playing_in(s, 5) < POINTS),
        "the dip paused some: {timeline}"
    );
    // All of them back within 10 s of the line, none paused again on the way: the first
    // proof after the line brings back part of the grid (resume probes that failed in the dip
    // ask less each time, so that a grid comes back in parts where it cannot at once), then
    // the estimate that media earned the rest. One video a second over 11 s before resume
    // probes.
    let back = (20..35).find(|&s| g.playing_in(s, 5) == POINTS);
    assert!(back.is_some_and(|s| s < 30), "back at {back:?}: {timeline}");
    let after: Vec<usize> = g
        .paused
        .iter()
        .filter(|n| n.0 >= secs(20))
        .map(|n| n.1)
        .collect();
    assert!(
        after.windows(2).all(|w| w[1] <= w[0]),
        "paused again after the line: {after:?}"
    );
}
