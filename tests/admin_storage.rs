//! The storage layer on real SQLite files: settings, constraints, reopening, and a writer
//! killed with SIGKILL in the middle of its transactions.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use room_admin::{Db, accounts, db, meetings, points};

async fn pragma(db: &Db, sql: &'static str) -> String {
    let row: (String,) = sqlx::query_as(sql).fetch_one(db.pool()).await.unwrap();
    row.0
}

#[tokio::test]
async fn wal_foreign_keys_and_full_sync_are_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_in(dir.path()).await.unwrap();
    assert_eq!(pragma(&db, "PRAGMA journal_mode").await, "wal");
    let fk: (i64,) = sqlx::query_as("PRAGMA foreign_keys")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(fk.0, 1);
    let sync: (i64,) = sqlx::query_as("PRAGMA synchronous")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(sync.0, 2, "FULL");
    assert!(dir.path().join("hoinghi.db").is_file());

    // A seat of an unknown meeting and point is refused by the foreign keys.
    let err = sqlx::query(
        "INSERT INTO seats (meeting_id, seat, point_code, name, role, jti, issued_at) \
         VALUES ('m-x', 'p', 'nope', 'n', 'point', 'j', 0)",
    )
    .execute(db.pool())
    .await;
    assert!(err.is_err());
    // A kind outside the list is refused by the schema even if the code forgot to check.
    let err = sqlx::query(
        "INSERT INTO points (code, name, kind, created_at, updated_at) VALUES ('1', 'a', 'x', 0, 0)",
    )
    .execute(db.pool())
    .await;
    assert!(err.is_err());
}

#[tokio::test]
async fn data_survives_reopening_and_migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open_in(dir.path()).await.unwrap();
        let input = points::PointInput {
            code: "06".into(),
            name: "Hội trường UBND tỉnh Bắc Kạn".into(),
            kind: "province_hall".into(),
            ..Default::default()
        };
        points::create(&db, &input, db::unix_now()).await.unwrap();
        accounts::bootstrap(&db, db::unix_now())
            .await
            .unwrap()
            .unwrap();
        db.close().await;
    }
    let db = Db::open_in(dir.path()).await.unwrap();
    assert_eq!(
        points::get(&db, "06").await.unwrap().name,
        "Hội trường UBND tỉnh Bắc Kạn"
    );
    assert!(
        accounts::bootstrap(&db, db::unix_now())
            .await
            .unwrap()
            .is_none(),
        "the bootstrap account is made once"
    );
    let n: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let files = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/room-admin/migrations"
    ))
    .unwrap()
    .filter(|e| {
        e.as_ref()
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "sql")
    })
    .count();
    assert_eq!(n.0 as usize, files, "each migration ran once");
}

/// What deployed databases recorded for each SQLite migration (SHA-384 of the file): sqlx
/// refuses to start when a file's checksum differs, so these files never change once released
/// (PostgreSQL's differences live in `migrations/postgres/`).
const DEPLOYED_CHECKSUMS: [(i64, &str); 8] = [
    (
        1,
        "160bfd1f92614c85b15eab307c5fb349c534f23ce22a1897aff24dc0ba5c6dc16aaaf2db2a80c891153faa7c19179ba6",
    ),
    (
        2,
        "b89632cd094c42d513ce59f52811db5cb35daf8bf7fa14036e3b7efea1281742fdaab87549c561ba77b14d0af78b18e6",
    ),
    (
        3,
        "d04f8d6b3c156ddc84a189882fe7efcd8fdb497469ed3476fcfd2d5f18329764c7038026ec0b696504d6353a42d5136e",
    ),
    (
        4,
        "88423b318e030d90625ac954f8a6aea95667307dcd8d66eed5fbf02d9ee5927440015a055dbeb98f668ec07d57d89ec8",
    ),
    (
        5,
        "6c81d2402311907472de0df8c8d1995031d8a75faf222958d1c695209e84d4358e9592c621c10eed3bf05a5e7a91d3c9",
    ),
    (
        6,
        "91b7f8f1189ae0c4082bf89f3f907e4762ad1e47116bf8655372d152f73bf2e7f4523a6cb251cd1ed75ddeb4b1ce18a7",
    ),
    (
        7,
        "d118730e42f8a59247e31afc3e75a2be2e86450acbf0bac228cf9957d7bec0c18ba74ca8ec9c1658479610d7d51c84c9",
    ),
    (
        8,
        "d5ba07f1c1bd56a370e4c0ff5f419068ca6974e0fbcc297c3d82be67add1619496c3af7276acd88bcf39ac047ab645bc",
    ),
];

/// A database a deployment made before the control plane went through sqlx's `Any` driver
/// (the `Sqlite` driver, the same `migrations/`): the checksums it recorded are the released
/// ones and still match, so it opens, and its booleans read back as booleans.
#[tokio::test]
async fn a_database_made_through_the_sqlite_driver_opens_unchanged() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join(db::DB_FILE))
        .create_if_missing(true);
    let pool = SqlitePool::connect_with(options).await.unwrap();
    sqlx::migrate!("./room-admin/migrations")
        .run(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO points (code, name, kind, disabled, created_at, updated_at) \
         VALUES ('06', 'Hội trường', 'province_hall', TRUE, 1, 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let db = Db::open_in(dir.path()).await.unwrap();
    let recorded: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(db.pool())
            .await
            .unwrap();
    let recorded: Vec<(i64, String)> = recorded
        .into_iter()
        .map(|(v, sum)| (v, hex::encode(sum)))
        .collect();
    let deployed: Vec<(i64, String)> = DEPLOYED_CHECKSUMS
        .iter()
        .map(|&(v, sum)| (v, sum.to_owned()))
        .collect();
    assert_eq!(recorded, deployed);
    let p = points::get(&db, "06").await.unwrap();
    assert!(p.disabled);
    points::set_disabled(&db, "06", false, 2).await.unwrap();
    assert!(!points::get(&db, "06").await.unwrap().disabled);
}

/// The writer (`hoinghi admin stress-writes`, hidden) imports 50 points and creates a meeting
/// with 21 seats per round, each in one transaction. Killed at any moment, the database must be
/// intact and hold only whole transactions.
#[tokio::test]
async fn a_writer_killed_mid_transaction_leaves_a_consistent_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut last_meetings = 0;
    for (round, wait_ms) in [(0, 700u64), (1, 450), (2, 1100)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hoinghi"))
            .args(["admin", "stress-writes", "--data-dir"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "started", "round {round}");
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        // SIGKILL: no destructor, no rollback, no checkpoint.
        child.kill().unwrap();
        child.wait().unwrap();

        let db = Db::open_in(dir.path()).await.unwrap();
        assert_eq!(
            pragma(&db, "PRAGMA integrity_check").await,
            "ok",
            "round {round}"
        );
        let fk: Vec<(String, i64, String, i64)> = sqlx::query_as("PRAGMA foreign_key_check")
            .fetch_all(db.pool())
            .await
            .unwrap();
        assert!(fk.is_empty(), "{fk:?}");
        // Imports are all or nothing: stress points come in whole batches of 50.
        let stress: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM points WHERE code LIKE 'S%'")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(
            stress.0 % 50,
            0,
            "round {round}: {} stress points",
            stress.0
        );
        // Meetings are whole: each has its chair and 20 points.
        let all = meetings::list(&db, None, None).await.unwrap();
        for m in &all {
            let seats = meetings::seats(&db, &m.id).await.unwrap();
            assert_eq!(seats.len(), 21, "round {round}, meeting {}", m.id);
        }
        assert!(
            all.len() >= last_meetings,
            "committed meetings never disappear"
        );
        assert!(!all.is_empty() || round == 0, "the writer wrote something");
        last_meetings = all.len();
        db.close().await;
    }
    assert!(
        last_meetings > 0,
        "the writer committed at least one meeting"
    );
}
