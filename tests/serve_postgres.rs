//! `hoinghi serve --database-url postgres://…` as a province with its own database cluster runs
//! it: the real binary on a fresh PostgreSQL database (from `HOINGHI_TEST_POSTGRES_URL`, which
//! run-tests.sh sets; without it the test says loudly that it did not run), the bootstrap
//! account logging in over `/api/v1`, a point and a meeting created, and the meeting found in
//! PostgreSQL, with nothing in the data dir's place of the SQLite file. And a database URL that
//! cannot be used stops the server with an error that names it without its password.

mod serve_harness;

use serve_harness::{Server, admin_session, hoinghi, post};

use room_admin::db::testing::fresh_postgres;
use room_admin::db::{DB_FILE, Db};
use room_admin::meetings;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn the_server_keeps_its_meetings_in_postgres() {
    let Some(url) = fresh_postgres("the_server_keeps_its_meetings_in_postgres").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url_text = url.connect_url();
    let server = Server::start(dir.path(), &["--no-tls", "--database-url", &url_text]);
    let port = server.port;
    // The first login may only change the password; that ends the session.
    let session = admin_session(&server, "họp tỉnh trên PostgreSQL");

    let point = json!({"code": "06", "name": "Hội trường UBND tỉnh", "kind": "province_hall"});
    let created = post(port, "/api/v1/points", Some(&session), &point);
    assert_eq!(created.status, 201, "{}", created.body);
    let starts = room_admin::db::unix_now() + 3600;
    let local = |t: i64| room_admin::timefmt::local_rfc3339(t)[..16].to_owned();
    let meeting = json!({
        "title": "Hội nghị trên PostgreSQL",
        "starts_at": local(starts),
        "ends_at": local(starts + 7200),
        "chair_point": "06",
        "points": [],
    });
    let created = post(port, "/api/v1/meetings", Some(&session), &meeting);
    assert_eq!(created.status, 201, "{}", created.body);
    let id = serde_json::from_str::<Value>(&created.body).unwrap()["meeting"]["id"]
        .as_str()
        .expect("the meeting's id")
        .to_owned();

    // In PostgreSQL, not in a SQLite file under the data dir.
    let db = Db::connect(&url).await.unwrap();
    let stored = meetings::get(&db, &id).await.unwrap();
    assert_eq!(stored.title, "Hội nghị trên PostgreSQL");
    assert!(!dir.path().join(DB_FILE).exists());
    let stderr = server.stderr.lock().unwrap().clone();
    assert!(stderr.contains("control plane database"), "{stderr}");
    assert!(server.terminate().success());
}

/// Plain HTTP on any free port: the server is not meant to get as far as serving.
const SERVE: &[&str] = &[
    "serve",
    "--no-tls",
    "--listen",
    "127.0.0.1:0",
    "--media-port",
    "0",
];

/// `hoinghi serve` on a fresh data dir with the database URL from the environment or the
/// command line, run until it exits: its stdout and stderr, which must not hold `secret`.
fn serve_fails(dir: &std::path::Path, url: &str, from_env: bool, secret: &str) -> String {
    let mut cmd = hoinghi();
    cmd.args(SERVE).arg("--data-dir").arg(dir);
    if from_env {
        cmd.env("HOINGHI_DATABASE_URL", url);
    } else {
        cmd.args(["--database-url", url]);
    }
    let out = cmd.output().unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{shown}");
    assert!(!shown.contains(secret), "{shown}");
    assert!(!shown.contains("panicked"), "{shown}");
    shown
}

#[test]
fn a_database_url_that_cannot_be_used_stops_the_server_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let unreachable = format!(
        "postgres://hoinghi:s3cret-pw@localhost/hoinghi?host={}",
        dir.path().display()
    );
    // The log line and the error name it, password masked.
    let masked = "postgres://hoinghi:***@localhost/hoinghi";
    for from_env in [true, false] {
        let shown = serve_fails(dir.path(), &unreachable, from_env, "s3cret-pw");
        assert!(
            shown.contains("control plane database") && shown.contains(masked),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("cannot open the database {masked}")),
            "{shown}"
        );
    }
    let shown = serve_fails(
        dir.path(),
        "mysql://hoinghi:s3cret-pw@localhost/hoinghi",
        true,
        "s3cret-pw",
    );
    assert!(shown.contains("bad --database-url"), "{shown}");
    // clap would show an environment variable's value in the help: not this one's.
    let help = hoinghi()
        .args(["serve", "--help"])
        .env("HOINGHI_DATABASE_URL", &unreachable)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("HOINGHI_DATABASE_URL"), "{help}");
    assert!(!help.contains("s3cret-pw"), "{help}");
}
