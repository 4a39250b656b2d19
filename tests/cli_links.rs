//! `hoinghi links test-room` as a user runs it: the built binary, a fresh data dir.

mod common;

use common::hoinghi;

use std::path::Path;
use std::process::{Command, Output};
use std::time::SystemTime;

use room_admin::{JoinTokens, Secret};
use signaling::protocol::Role;

fn run_ok(cmd: &mut Command) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run hoinghi");
    assert!(
        status.success(),
        "hoinghi failed: {status}\nstderr: {}",
        String::from_utf8_lossy(&stderr)
    );
    String::from_utf8(stdout).expect("utf-8 stdout")
}

fn token_of(link: &str) -> &str {
    link.split_once("/join?t=").expect("join link").1
}

fn verify(data_dir: &Path, link: &str) -> room_admin::JoinClaims {
    let secret = Secret::load_or_create(data_dir).unwrap();
    JoinTokens::new(&secret)
        .verify(token_of(link), SystemTime::now())
        .expect("link verifies with the data dir's secret")
}

#[test]
fn json_has_chair_and_three_points_signed_with_the_data_dir_secret() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let out = run_ok(hoinghi().args([
        "links",
        "test-room",
        "--json",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--no-tls",
        "--listen",
        "127.0.0.1:9999",
    ]));

    let value: serde_json::Value = serde_json::from_str(out.trim()).expect("stdout is JSON");
    let object = value.as_object().expect("a JSON object");
    let mut keys: Vec<&String> = object.keys().collect();
    keys.sort();
    assert_eq!(keys, ["chair", "points"]);
    let chair = value["chair"].as_str().expect("chair is a string");
    let points: Vec<&str> = value["points"]
        .as_array()
        .expect("points is an array")
        .iter()
        .map(|p| p.as_str().expect("point link is a string"))
        .collect();
    assert_eq!(points.len(), 3);

    for link in std::iter::once(chair).chain(points.iter().copied()) {
        assert!(link.starts_with("http://localhost:9999/join?t="), "{link}");
    }

    // The data dir was created with its secret, and the links are signed with it.
    assert!(data_dir.join("secret.key").is_file());
    let claims = verify(&data_dir, chair);
    assert_eq!(
        (claims.meeting.as_str(), claims.point.as_str(), claims.role),
        ("test-room", "test-chair", Role::Chair)
    );
    for (i, link) in points.iter().enumerate() {
        let claims = verify(&data_dir, link);
        assert_eq!(claims.role, Role::Point);
        assert_eq!(claims.point, format!("test-point-{}", i + 1));
    }
}

#[test]
fn links_of_a_second_run_use_the_same_secret() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "links",
        "test-room",
        "--json",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ];
    let first: serde_json::Value = serde_json::from_str(&run_ok(hoinghi().args(args))).unwrap();
    let secret_before = std::fs::read(dir.path().join("secret.key")).unwrap();
    run_ok(hoinghi().args(args));
    assert_eq!(
        std::fs::read(dir.path().join("secret.key")).unwrap(),
        secret_before
    );
    // A link printed by the first run still verifies after the second.
    verify(dir.path(), first["chair"].as_str().unwrap());
}

#[test]
fn readable_output_labels_each_link() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(hoinghi().args([
        "links",
        "test-room",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:8443",
    ]));
    assert!(out.contains("Phòng thử nghiệm"), "{out}");
    assert!(out.contains("Điểm cầu chủ trì (thử nghiệm):"), "{out}");
    for i in 1..=3 {
        assert!(out.contains(&format!("Điểm cầu thử nghiệm {i}:")), "{out}");
    }
    // TLS is on by default: https links.
    assert_eq!(
        out.matches("https://localhost:8443/join?t=").count(),
        4,
        "{out}"
    );
    assert!(out.contains("autojoin=1"), "{out}");
}

#[test]
fn flags_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(
        hoinghi()
            .args(["links", "test-room"])
            .env("HOINGHI_JSON", "1")
            .env("HOINGHI_NO_TLS", "true")
            .env("HOINGHI_LISTEN", "127.0.0.1:7777")
            .env("HOINGHI_DATA_DIR", dir.path()),
    );
    let value: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON via env");
    assert!(
        value["chair"]
            .as_str()
            .unwrap()
            .starts_with("http://localhost:7777/join?t=")
    );
    assert!(dir.path().join("secret.key").is_file());
}

#[test]
fn help_explains_flags_and_their_environment_variables() {
    let out = run_ok(hoinghi().args(["serve", "--help"]));
    for needle in [
        "--listen",
        "HOINGHI_LISTEN",
        "--data-dir",
        "--public-ip",
        "--media-port",
        "--workers",
        "--tls-cert",
        "--tls-key",
        "--no-tls",
        "HOINGHI_NO_TLS",
        "--log",
    ] {
        assert!(out.contains(needle), "help lacks {needle}:\n{out}");
    }
}

#[test]
fn unknown_subcommand_fails_with_usage() {
    let out = hoinghi().args(["frobnicate"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}
