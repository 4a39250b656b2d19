//! Shared helpers for the integration tests. The server is `loadtest`'s in-process one: the
//! production media plane and signaling on loopback, with fixed tokens.

#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

pub use loadtest::inprocess::InProcessServer as TestServer;

pub async fn start(workers: usize) -> TestServer {
    TestServer::start(workers)
        .await
        .expect("start in-process server")
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held. The assertion is on
/// the condition, never on how long it took.
pub async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `hoinghi` binary with no `HOINGHI_*` variable inherited from whoever runs the tests.
pub fn hoinghi() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoinghi"));
    for (key, _) in std::env::vars() {
        if key.starts_with("HOINGHI_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A point with a tiny camera (10 frames/s of 300 bytes, no periodic keyframes): cheap enough
/// for tests that join many times.
pub fn small_point(
    server: &TestServer,
    token: &str,
    publish: bool,
) -> loadtest::point::PointConfig {
    loadtest::point::PointConfig {
        ws_url: server.ws_url(),
        token: token.into(),
        publish,
        bind_ip: [127, 0, 0, 1].into(),
        video_fps: 10,
        video_frame_bytes: 300,
        periodic_keyframes: None,
        ..Default::default()
    }
}

/// Packets of `kind` that `at` received from `from`.
pub fn packets_from(at: &loadtest::point::Point, from: &loadtest::point::Point, kind: &str) -> u64 {
    at.snapshot()
        .streams
        .values()
        .filter(|st| st.stream_id == from.participant && st.kind.as_deref() == Some(kind))
        .map(|st| st.packets)
        .sum()
}
