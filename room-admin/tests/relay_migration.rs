//! Migration 7 (relay seats) on a SQLite database deployed before it: the `seats` table is
//! rebuilt to accept the role `relay`, and every seat issued before keeps its row (its link
//! keeps working), its key and its index.

use std::path::Path;

use room_admin::Db;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");

/// A database file at `path` as version 6 left it: the first six migrations, run by sqlx as
/// a server of that version ran them (the checksums recorded are the released files').
async fn database_at_version_6(path: &Path, scratch: &Path) {
    for entry in std::fs::read_dir(MIGRATIONS).unwrap() {
        let file = entry.unwrap().path();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".sql") && name.as_str() < "0007" {
            std::fs::copy(&file, scratch.join(&name)).unwrap();
        }
    }
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let pool = AnyPool::connect(&url).await.unwrap();
    Migrator::new(scratch)
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    for statement in [
        "INSERT INTO points (code, name, kind, created_at, updated_at) \
         VALUES ('06', 'UBND tỉnh', 'province_hall', 1, 1)",
        "INSERT INTO meetings (id, title, starts_at, ends_at, open_minutes, capacity, status, \
         created_by, created_at, updated_at) \
         VALUES ('m-1', 'Họp', 100, 200, 30, 50, 'scheduled', 'admin', 1, 1)",
        "INSERT INTO seats (meeting_id, seat, point_code, name, role, jti, issued_at) \
         VALUES ('m-1', '06', '06', 'UBND tỉnh', 'chair', 'j-chair', 5)",
        "INSERT INTO seats (meeting_id, seat, point_code, name, role, jti, issued_at) \
         VALUES ('m-1', 'obs-1', NULL, 'Lãnh đạo', 'observer', 'j-obs', 6)",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    // Version 6 refuses a relay seat: what migration 7 is for.
    let refused = sqlx::query(
        "INSERT INTO seats (meeting_id, seat, point_code, name, role, jti, issued_at) \
         VALUES ('m-1', 'relay-1', NULL, 'Tỉnh', 'relay', 'j-r', 7)",
    )
    .execute(&pool)
    .await;
    assert!(refused.is_err(), "version 6 took a relay seat");
    pool.close().await;
}

#[tokio::test]
async fn seats_issued_before_version_7_survive_it_and_relay_seats_are_accepted_after() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let path = dir.path().join("hoinghi.db");
    database_at_version_6(&path, scratch.path()).await;

    let db = Db::open(&path).await.unwrap();
    let rows = sqlx::query(
        "SELECT seat, point_code, name, role, jti, issued_at FROM seats \
         WHERE meeting_id = 'm-1' ORDER BY seat",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let seats: Vec<(String, Option<String>, String, String, String, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    assert_eq!(
        seats,
        [
            (
                "06".to_owned(),
                Some("06".to_owned()),
                "UBND tỉnh".to_owned(),
                "chair".to_owned(),
                "j-chair".to_owned(),
                5
            ),
            (
                "obs-1".to_owned(),
                None,
                "Lãnh đạo".to_owned(),
                "observer".to_owned(),
                "j-obs".to_owned(),
                6
            ),
        ]
    );
    let insert = "INSERT INTO seats (meeting_id, seat, point_code, name, role, jti, issued_at) \
                  VALUES ('m-1', $1, NULL, 'Tỉnh Cao Bằng', $2, 'j-r', 7)";
    sqlx::query(insert)
        .bind("relay-1")
        .bind("relay")
        .execute(db.pool())
        .await
        .unwrap();
    // The rebuilt table keeps its checks, key and foreign keys.
    for (seat, role) in [("x", "speaker"), ("relay-1", "relay")] {
        let err = sqlx::query(insert)
            .bind(seat)
            .bind(role)
            .execute(db.pool())
            .await;
        assert!(err.is_err(), "{seat} {role} accepted");
    }
    let orphan = sqlx::query(
        "INSERT INTO seats (meeting_id, seat, point_code, name, role, jti, issued_at) \
         VALUES ('m-none', 'relay-2', NULL, 'Tỉnh', 'relay', 'j', 7)",
    )
    .execute(db.pool())
    .await;
    assert!(orphan.is_err(), "a seat of no meeting was accepted");
    let index: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'seats_point_code' \
         AND tbl_name = 'seats'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(index, 1);
    db.close().await;
}
