//! Media from files end to end: the chair publishes a generated IVF clip and Ogg Opus file
//! (looped) through the in-process server; every point decodes the clip's keyframes and receives
//! the file's audio rather than silence.

use std::time::Duration;

use loadtest::mediafile::{FileMedia, sample};
use loadtest::scenario::{self, LoadConfig, Scenario, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_of_a_looped_clip_reaches_every_point() {
    let dir = std::env::temp_dir().join(format!("hoinghi-lt-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // One second at 30 fps: a keyframe, 29 delta frames of 1,000 bytes (240 kbit/s); it loops
    // three times in the window.
    let frames: Vec<Vec<u8>> = (0..30)
        .map(|i| sample::vp8(i == 0, if i == 0 { 3_000 } else { 1_000 }))
        .collect();
    let video = dir.join("clip.ivf");
    std::fs::write(&video, sample::ivf(&frames)).unwrap();
    // 0.4 s of 20 ms CELT packets of 100 bytes (40 kbit/s, far above silence's 1.2 kbit/s).
    let packets: Vec<Vec<u8>> = (0..20u8)
        .map(|i| {
            let mut p = vec![0xF8, i];
            p.resize(100, i);
            p
        })
        .collect();
    let audio = dir.join("speech.ogg");
    std::fs::write(&audio, sample::ogg(&packets)).unwrap();
    let files = FileMedia::load(Some(&video), Some(&audio)).expect("load");
    std::fs::remove_dir_all(&dir).unwrap();

    let cfg = LoadConfig {
        scenario: Scenario::Fanout,
        points: 3,
        seconds: 3.0,
        fps: 30,
        ready_timeout: Duration::from_secs(30),
        files,
        ..LoadConfig::default()
    };
    let r = scenario::run(Target::InProcess { workers: 1 }, cfg)
        .await
        .expect("run");
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!((r.points.media, r.points.decodable), (3, 3));
    assert!(
        r.video.kbps.min > 150.0 && r.video.kbps.max < 400.0,
        "{:?}",
        r.video.kbps
    );
    assert!(r.video.fps.min > 20.0, "{:?}", r.video.fps);
    assert!(
        r.audio.kbps.min > 30.0 && r.audio.kbps.max < 60.0,
        "{:?}",
        r.audio.kbps
    );
}
