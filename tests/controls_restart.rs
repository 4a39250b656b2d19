//! A restart keeps the meeting: the real `hoinghi serve` on a real data dir, a chair and three
//! points over `/ws` (protocol clients, no media), the floor given, hands raised, a point
//! unmuted, a roll call answered; SIGTERM, the same binary started again on the same data dir;
//! everyone rejoins and finds the meeting as it was.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use room_admin::meetings::{self, MeetingInput};
use room_admin::points::{self, PointInput};
use room_admin::{Db, JoinTokens, Secret, db, links, timefmt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(60);

/// A meeting starting now with a chair and points `a`, `b`, `c`; the join token of each seat.
async fn schedule(data_dir: &Path) -> Vec<(String, String)> {
    let database = Db::open_in(data_dir).await.unwrap();
    let now = db::unix_now();
    for (code, kind) in [
        ("06", "province_hall"),
        ("a", "commune"),
        ("b", "commune"),
        ("c", "commune"),
    ] {
        let input = PointInput {
            code: code.into(),
            name: format!("Điểm cầu {code}"),
            kind: kind.into(),
            ..Default::default()
        };
        points::create(&database, &input, now).await.unwrap();
    }
    let input = MeetingInput {
        title: "Giao ban".into(),
        starts_at: timefmt::utc_rfc3339(now),
        ends_at: timefmt::utc_rfc3339(now + 3 * 3600),
        chair_point: "06".into(),
        points: vec!["a".into(), "b".into(), "c".into()],
        ..Default::default()
    };
    let meeting = meetings::create(&database, &input, "admin", now)
        .await
        .unwrap();
    let tokens = JoinTokens::new(&Secret::load_or_create(data_dir).unwrap());
    let seats = meetings::seats(&database, &meeting.id).await.unwrap();
    database.close().await;
    seats
        .iter()
        .map(|s| {
            let claims = links::claims(&meeting, s);
            (s.seat.clone(), tokens.sign(&claims).unwrap())
        })
        .collect()
}

/// `hoinghi serve` on loopback; killed on drop.
struct Serve {
    child: Child,
    port: u16,
}

impl Serve {
    fn start(data_dir: &Path) -> Serve {
        let mut child = common::hoinghi()
            .args([
                "serve",
                "--no-tls",
                "--listen",
                "127.0.0.1:0",
                "--workers",
                "1",
            ])
            .args(["--media-port", "0", "--no-ice-tcp", "--log", "info"])
            .arg("--data-dir")
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hoinghi");
        let (tx, rx) = std::sync::mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        let port = loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("a `ready:` line");
            if let Some(base) = line.strip_prefix("ready: ") {
                break base.rsplit(':').next().unwrap().parse().unwrap();
            }
        };
        Serve { child, port }
    }

    /// SIGTERM, and waits for the process to end.
    fn terminate(mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on our own child, still running or a zombie.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A protocol client: what it receives arrives on `rx`.
struct Client {
    tx: mpsc::UnboundedSender<Value>,
    rx: mpsc::UnboundedReceiver<Value>,
    /// The last `room_state` seen.
    state: Option<Value>,
}

impl Client {
    async fn join(port: u16, token: &str) -> Client {
        let url = format!("ws://127.0.0.1:{port}/ws");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        let (mut sink, mut stream) = ws.split();
        let (in_tx, rx) = mpsc::unbounded_channel();
        let (tx, mut out_rx) = mpsc::unbounded_channel::<Value>();
        tokio::spawn(async move {
            while let Some(Ok(Message::Text(t))) = stream.next().await {
                if in_tx.send(serde_json::from_str(&t).unwrap()).is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Some(v) = out_rx.recv().await {
                if sink.send(Message::text(v.to_string())).await.is_err() {
                    break;
                }
            }
        });
        let mut client = Client {
            tx,
            rx,
            state: None,
        };
        client.send(json!({"type": "join", "token": token}));
        client.until("joined", |m| m["type"] == "joined").await;
        client
    }

    fn send(&self, mut msg: Value) {
        msg["v"] = json!(1);
        self.tx.send(msg).unwrap();
    }

    /// Reads until `done` holds for a message; panics after [`WAIT`].
    async fn until(&mut self, what: &str, mut done: impl FnMut(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} in time; last room_state {:?}", self.state))
                .unwrap_or_else(|| panic!("socket closed before {what}"));
            assert_ne!(msg["type"], "error", "while waiting for {what}: {msg}");
            if msg["type"] == "room_state" {
                self.state = Some(msg.clone());
            }
            if done(&msg) {
                return msg;
            }
        }
    }

    /// Waits for a `room_state` (the last one seen counts) for which `done` holds.
    async fn state_until(&mut self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        if let Some(s) = &self.state
            && done(s)
        {
            return s.clone();
        }
        self.until(what, |m| m["type"] == "room_state" && done(m))
            .await
    }
}

fn token<'a>(tokens: &'a [(String, String)], seat: &str) -> &'a str {
    &tokens.iter().find(|(s, _)| s == seat).unwrap().1
}

/// The meeting as decided below: floor `a`, `b`'s hand with its text, `c` unmuted, a roll call
/// answered by `a` then `b` and ended.
fn as_decided(s: &Value) -> bool {
    let answers: Vec<&str> = s["roll_call"]["answers"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["point"].as_str()).collect())
        .unwrap_or_default();
    s["floor"]["point"] == "a"
        && s["hands"].as_array().is_some_and(|h| {
            h.len() == 1 && h[0]["point"] == "b" && h[0]["text"] == "Xin phát biểu"
        })
        && s["unmuted"] == json!(["c"])
        && answers == ["a", "b"]
        && s["roll_call"]["ended_at"].is_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_floor_hands_microphones_and_roll_call() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = schedule(dir.path()).await;

    let server = Serve::start(dir.path());
    let mut chair = Client::join(server.port, token(&tokens, "06")).await;
    let a = Client::join(server.port, token(&tokens, "a")).await;
    let b = Client::join(server.port, token(&tokens, "b")).await;
    let c = Client::join(server.port, token(&tokens, "c")).await;

    chair.send(json!({"type": "grant_floor", "point": "a"}));
    b.send(json!({"type": "raise_hand", "text": "Xin phát biểu"}));
    chair
        .state_until("b's hand", |s| s["hands"][0]["point"] == "b")
        .await;
    chair.send(json!({"type": "set_mute", "point": "c", "muted": false}));
    chair.send(json!({"type": "start_roll_call"}));
    chair
        .state_until("the roll call", |s| s["roll_call"].is_object())
        .await;
    a.send(json!({"type": "answer_roll_call"}));
    chair
        .state_until("a's answer", |s| {
            s["roll_call"]["answers"][0]["point"] == "a"
        })
        .await;
    b.send(json!({"type": "answer_roll_call"}));
    chair
        .state_until("b's answer", |s| {
            s["roll_call"]["answers"][1]["point"] == "b"
        })
        .await;
    chair.send(json!({"type": "end_roll_call"}));
    let before = chair
        .state_until("the meeting as decided", as_decided)
        .await;

    drop((a, b, c));
    server.terminate();
    drop(chair);

    let server = Serve::start(dir.path());
    // The points come back before the chair, as they do after a restart (each on its own
    // backoff); the first join creates the room.
    let mut b = Client::join(server.port, token(&tokens, "b")).await;
    let mut a = Client::join(server.port, token(&tokens, "a")).await;
    let _c = Client::join(server.port, token(&tokens, "c")).await;
    let mut chair = Client::join(server.port, token(&tokens, "06")).await;
    let after = chair
        .state_until("the meeting as it was after the restart", as_decided)
        .await;
    assert_eq!(after["floor"]["since"], before["floor"]["since"]);
    assert_eq!(after["roll_call"], before["roll_call"]);
    // The speaker learns at once that it still holds the floor (its page opens the microphone),
    // and the point with its hand up that it is still in the queue.
    a.state_until("a still holds the floor", |s| s["floor"]["point"] == "a")
        .await;
    b.state_until("b's hand still up", |s| s["hands"][0]["point"] == "b")
        .await;
}
