//! The worker core in virtual time: what a point receives from the chair, decided by the
//! production code, over lines that are exactly what each test says.

use std::time::Duration;

use super::meeting::{Meeting, clean_line};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_point_on_a_clean_line_receives_the_chairs_camera_at_720p_with_no_gap() {
    let wall = std::time::Instant::now();
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
        v.gaps,
        v.late,
        v.packets,
        probes
    );
    assert_eq!(v.gaps, 0);
    assert!(m.points[0].errors.is_empty(), "{:?}", m.points[0].errors);
    eprintln!("wall {:?}, keyframes {:?}", wall.elapsed(), v.keyframes);
}
