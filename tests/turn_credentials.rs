//! TURN credentials in `joined`: the built binary with `--turn-url` and a secret gives each join
//! coturn REST API credentials (username `<expiry>:<participant>`, HMAC-SHA1 of it with the
//! secret) that expire `--turn-ttl` from now, and never prints the secret; without TURN,
//! `ice_servers` is empty; half a configuration refuses to start.
//! `tests/browser/turn.mjs` checks the same credentials against a real coturn.

mod common;

use common::hoinghi;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use signaling::turn::{TurnSecret, credential};
use tokio_tungstenite::tungstenite::Message;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const SECRET: &str = "tHe-Shared-Secret-9f1c";
const TTL: u64 = 600;

/// A running server, killed on drop; everything it printed is kept to look for the secret.
struct Server {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `cmd` (serving from `data_dir`) and returns once it is ready: `(server, base URL,
    /// test-room chair token)`. The token is signed with the data dir's secret, as
    /// `hoinghi links test-room` does: the server no longer prints links at start.
    fn start(mut cmd: Command, data_dir: &std::path::Path) -> (Server, String, String) {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hoinghi");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdout = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        let all = stdout.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                all.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        let server = Server {
            child,
            stdout,
            stderr,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                panic!(
                    "no ready line in time; stderr:\n{}",
                    server.stderr.lock().unwrap()
                );
            };
            if let Some(base) = line.strip_prefix("ready: ") {
                let token = loadtest::scenario::mint_test_room_token(data_dir, true, 0)
                    .expect("a test-room chair token");
                return (server, base.to_owned(), token);
            }
        }
    }

    fn output(&self) -> String {
        format!(
            "{}{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Joins `ws_url` with `token` and returns the `joined` message.
async fn join(ws_url: &str, token: &str) -> Value {
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .expect("connect /ws");
    let join = json!({"v": 1, "type": "join", "token": token}).to_string();
    ws.send(Message::Text(join.into()))
        .await
        .expect("send join");
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the server answers the join in time");
        match frame {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("JSON from the server");
                match v["type"].as_str() {
                    Some("joined") => return v,
                    Some("error") => panic!("join refused: {v}"),
                    _ => continue,
                }
            }
            Some(Ok(_)) => continue,
            other => panic!("socket closed before joined: {other:?}"),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_carries_credentials_that_verify_and_expire_ttl_from_now() {
    let dir = tempfile::tempdir().unwrap();
    let secret_path = dir.path().join("turn.secret");
    // With the newline an editor adds: not part of the secret.
    std::fs::File::create(&secret_path)
        .and_then(|mut f| writeln!(f, "{SECRET}"))
        .unwrap();
    let mut cmd = hoinghi();
    cmd.args([
        "serve",
        "--no-tls",
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "1",
    ])
    .args(["--media-port", "0"])
    .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
    .args(["--turn-secret-file", secret_path.to_str().unwrap()])
    .args(["--turn-ttl", &TTL.to_string()])
    // Comma-separated in the environment, as a systemd unit would set it.
    .env(
        "HOINGHI_TURN_URLS",
        "turn:127.0.0.1:3478?transport=tcp,turns:turn.example.vn:443",
    );
    let (server, base, token) = Server::start(cmd, &dir.path().join("data"));

    let before = unix_now();
    let ws_url = format!("{}/ws", base.replace("http://", "ws://"));
    let joined = join(&ws_url, &token).await;
    let after = unix_now();
    let participant = joined["participant"].as_str().expect("participant id");
    let servers = joined["ice_servers"].as_array().expect("ice_servers array");
    assert_eq!(servers.len(), 1, "{joined}");
    let ice = &servers[0];
    assert_eq!(
        ice["urls"],
        json!([
            "turn:127.0.0.1:3478?transport=tcp",
            "turns:turn.example.vn:443"
        ])
    );
    let username = ice["username"].as_str().expect("username");
    let (expiry, who) = username.split_once(':').expect("<expiry>:<participant>");
    assert_eq!(who, participant);
    let expiry: u64 = expiry.parse().expect("expiry is unix seconds");
    assert!(
        (before + TTL..=after + TTL).contains(&expiry),
        "expiry {expiry} not {TTL} s after the join ({before}..={after})"
    );
    assert!(expiry > unix_now(), "credentials already expired");
    let expected = credential(&TurnSecret::new(SECRET).unwrap(), username);
    assert_eq!(ice["credential"].as_str(), Some(expected.as_str()));
    let wrong = credential(&TurnSecret::new("another-secret").unwrap(), username);
    assert_ne!(ice["credential"].as_str(), Some(wrong.as_str()));

    // A second join of the same link: another participant, its own credential.
    let again = join(&ws_url, &token).await;
    assert_ne!(again["ice_servers"][0]["username"], ice["username"]);
    assert_ne!(again["ice_servers"][0]["credential"], ice["credential"]);

    let output = server.output();
    assert!(output.contains("TURN on"), "{output}");
    assert!(output.contains("turns:turn.example.vn:443"), "{output}");
    assert!(
        !output.contains(SECRET),
        "the secret was printed:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_turn_ice_servers_is_empty() {
    let server = common::start(1).await;
    let joined = join(&server.ws_url(), "point-01").await;
    assert_eq!(joined["ice_servers"], json!([]), "{joined}");
}

#[test]
fn half_or_bad_turn_configuration_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // (flags, environment, what the error must say)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (
            &["--turn-url", "turn:127.0.0.1:3478"],
            &[],
            "--turn-secret-file",
        ),
        (&[], &[("HOINGHI_TURN_SECRET", SECRET)], "no --turn-url"),
        (
            &[],
            &[
                ("HOINGHI_TURN_URLS", "turn:127.0.0.1,turn://x"),
                ("HOINGHI_TURN_SECRET", SECRET),
            ],
            "without //",
        ),
        (
            &["--turn-url", "turn:127.0.0.1"],
            &[("HOINGHI_TURN_SECRET", " \n")],
            "empty",
        ),
    ];
    for (args, env, why) in cases {
        let out = hoinghi()
            .args(["serve", "--no-tls", "--listen", "127.0.0.1:0"])
            .args(["--data-dir", data.to_str().unwrap()])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run hoinghi");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} {env:?} started");
        assert!(!stdout.contains("ready:"), "{stdout}");
        assert!(stderr.contains(why), "{args:?} {env:?}: {stderr}");
        assert!(
            !stderr.contains(SECRET) && !stdout.contains(SECRET),
            "{stderr}"
        );
    }
    // Refused before anything was written: no database, no certificate.
    assert!(
        !data.exists(),
        "the data dir was created before the refusal"
    );
}
