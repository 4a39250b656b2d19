//! SIGTERM as a service manager sends it (issue 9, item 8): the real `hoinghi serve`, a point
//! joined to a scheduled meeting; the point is told `bye` `server_restarting` with a retry hint
//! before its socket closes, the process exits within 10 s, and the attendance record of the
//! point is closed in the database.

mod serve_harness;

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use room_admin::meetings::{self, MeetingInput};
use room_admin::points::{self, PointInput};
use room_admin::{Db, JoinTokens, Secret, db, links, timefmt};
use serde_json::{Value, json};
use serve_harness::Server;
use tokio_tungstenite::tungstenite::Message;

/// A meeting starting now, chaired by `06` with the point `a`; its id and the point's token.
async fn schedule(data_dir: &Path) -> (String, String) {
    let database = Db::open_in(data_dir).await.unwrap();
    let now = db::unix_now();
    for (code, kind) in [("06", "province_hall"), ("a", "commune")] {
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
        ends_at: timefmt::utc_rfc3339(now + 3600),
        chair_point: "06".into(),
        points: vec!["a".into()],
        ..Default::default()
    };
    let meeting = meetings::create(&database, &input, "admin", now)
        .await
        .unwrap();
    let tokens = JoinTokens::new(&Secret::load_or_create(data_dir).unwrap());
    let seats = meetings::seats(&database, &meeting.id).await.unwrap();
    database.close().await;
    let seat = seats.iter().find(|s| s.seat == "a").expect("seat a");
    let token = tokens.sign(&links::claims(&meeting, seat)).unwrap();
    (meeting.id, token)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(ws: &mut Ws) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    tokio::time::timeout(Duration::from_secs(20), ws.next())
        .await
        .expect("the server said something within 20 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_every_session_the_server_restarts_and_exits_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let (meeting, token) = schedule(dir.path()).await;
    let mut server = Server::start(dir.path(), &["--no-tls", "--no-ice-tcp", "--log", "info"]);

    let url = format!("ws://127.0.0.1:{}/ws", server.port);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let join = json!({"v": 1, "type": "join", "token": token}).to_string();
    ws.send(Message::Text(join.into())).await.unwrap();
    loop {
        match next(&mut ws).await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_ne!(v["type"], "error", "{v}");
                if v["type"] == "joined" {
                    break;
                }
            }
            Some(Ok(_)) => continue,
            other => panic!("closed before joined: {other:?}"),
        }
    }

    let pid = server.child.id() as libc::pid_t;
    let signalled = Instant::now();
    // SAFETY: kill(2) on our own child, which is running.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);

    let mut bye = None;
    let close = loop {
        match next(&mut ws).await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "bye" {
                    bye = Some(v);
                }
            }
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => break None,
        }
    };
    let bye = bye.unwrap_or_else(|| {
        panic!(
            "closed ({close:?}) without bye; stderr:\n{}",
            server.stderr.lock().unwrap()
        )
    });
    assert_eq!(bye["code"], "server_restarting", "{bye}");
    assert!(
        bye["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0),
        "{bye}"
    );
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1012));

    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM; stderr:\n{}",
            server.stderr.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit after SIGTERM: {status}");

    let database = Db::open_in(dir.path()).await.unwrap();
    let (rows, open): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE left_at IS NULL) FROM attendance \
         WHERE meeting_id = $1",
    )
    .bind(&meeting)
    .fetch_one(database.pool())
    .await
    .unwrap();
    assert_eq!((rows, open), (1, 0), "the point's attendance is closed");
}
