//! Replays the fuzz targets' committed inputs (`fuzz/corpus/<target>/seed-*`, the seeds, and
//! `fuzz/regressions/<target>/*`, every crash a fuzzer found) through the same checks the
//! targets run (`fuzz/src/`), on stable Rust in milliseconds. Keeps the corpora meaningful and
//! every fixed crash fixed without a nightly build in CI. `fuzz/README.md` says how to fuzz.

#[path = "../fuzz/src/media.rs"]
mod media;
#[path = "../fuzz/src/text.rs"]
mod text;
#[path = "../fuzz/src/transport.rs"]
mod transport;

use std::path::{Path, PathBuf};

/// Every committed input of `target`, seeds first.
fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut seeds = Vec::new();
    let mut found = Vec::new();
    let dirs = [
        (root.join("corpus").join(target), true),
        (root.join("regressions").join(target), false),
    ];
    for (dir, seeds_only) in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let path = e.expect("readable directory").path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if !seeds_only {
                found.push(path);
            } else if name.starts_with("seed-") {
                seeds.push(path);
            }
        }
    }
    assert!(!seeds.is_empty(), "no seeds for {target}");
    seeds.sort();
    found.sort();
    seeds.extend(found);
    seeds
}

fn replay(target: &str, check: fn(&[u8])) {
    for path in inputs(target) {
        let data = std::fs::read(&path).expect("readable input");
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{target}: {} fails its check", path.display());
        }
    }
}

#[test]
fn signaling_message() {
    replay("signaling_message", text::signaling_message);
}

#[test]
fn join_token() {
    replay("join_token", text::join_token);
}

#[test]
fn csv_import() {
    replay("csv_import", text::csv_import);
}

#[test]
fn sdp_offer() {
    replay("sdp_offer", transport::sdp_offer);
}

#[test]
fn stun_demux() {
    replay("stun_demux", transport::stun_demux);
}

#[test]
fn tcp_framing() {
    replay("tcp_framing", transport::tcp_framing);
}

#[test]
fn vp8_descriptor() {
    replay("vp8_descriptor", media::vp8_descriptor);
}

#[test]
fn red_primary() {
    replay("red_primary", media::red_primary);
}

#[test]
fn keyframe() {
    replay("keyframe", media::keyframe);
}

#[test]
fn audio_level() {
    replay("audio_level", media::audio_level);
}

/// The seeds that exercise a real path really reach it (a seed that stopped parsing would
/// make its target fuzz only the error branch).
#[test]
fn seeds_reach_the_paths_they_were_made_for() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let read = |p: &str| std::fs::read(root.join(p)).expect("seed exists");
    let offer = read("sdp_offer/seed-chromium-audio-simulcast.sdp");
    let offer = std::str::from_utf8(&offer).expect("utf-8");
    sfu::fuzzing::answer_publish_offer(offer, &[]).expect("the Chromium offer is answered");
    let csv = read("csv_import/seed-bac-kan.csv");
    let parsed = room_admin::import::parse(&csv).expect("the Bắc Kạn file parses");
    assert!(parsed.errors.is_empty() && parsed.rows.len() > 10);
    for entry in std::fs::read_dir(root.join("signaling_message")).expect("corpus") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .starts_with("seed-doc-")
        {
            let text = std::fs::read_to_string(&path).expect("utf-8");
            signaling::protocol::parse_client_message(&text)
                .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        }
    }
}
