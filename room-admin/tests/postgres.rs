//! The control plane on PostgreSQL: the two migration sets cannot drift apart, a real
//! PostgreSQL gets the schema SQLite gets, write transactions take turns there as on SQLite,
//! and a database that cannot be opened is a clear error without its password.
//!
//! The tests that need a server run against `HOINGHI_TEST_POSTGRES_URL` (run-tests.sh starts a
//! throwaway cluster and sets it), each in a database of its own; without it they say loudly
//! on stderr that they did not run (`.config/nextest.toml` shows that output). The rest of the
//! store runs on PostgreSQL through the admin suites with `HOINGHI_TEST_DATABASE=postgres`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use room_admin::db::testing::fresh_postgres;
use room_admin::db::{Backend, DatabaseUrl, Db, DbError};
use room_admin::{StoreError, points};

const MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
/// How PostgreSQL's copy writes the log tables' ids.
const IDENTITY: &str = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY";

/// `(file name, text)` of the `.sql` files in `dir`, by name.
fn sql_files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn both_migration_sets_hold_the_same_versions_and_text_but_for_the_ids() {
    let sqlite = sql_files(Path::new(MIGRATIONS));
    let postgres = sql_files(&Path::new(MIGRATIONS).join("postgres"));
    assert!(sqlite.len() >= 6, "{:?}", sqlite.keys());
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        postgres.keys().collect::<Vec<_>>(),
        "the same versions and names in migrations/ and migrations/postgres/"
    );
    for (name, pg) in &postgres {
        // PostgreSQL's copy: its own header lines, the identity ids; nothing else differs.
        let back: String = pg
            .lines()
            .filter(|l| !l.starts_with("-- PostgreSQL:") && !l.starts_with("-- identity columns"))
            .map(|l| l.replace(IDENTITY, "INTEGER PRIMARY KEY") + "\n")
            .collect();
        assert_eq!(
            &back, &sqlite[name],
            "{name} differs beyond the identity ids"
        );
    }
}

/// Column name → (type, nullable, part of the primary key), by table.
type Schema = BTreeMap<String, BTreeMap<String, (String, bool, bool)>>;

async fn sqlite_schema(db: &Db) -> (Schema, Vec<String>) {
    let columns: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT m.name, c.name, c.type, c.\"notnull\", c.pk FROM sqlite_master m \
         JOIN pragma_table_info(m.name) c WHERE m.type = 'table' \
         AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let mut schema = Schema::new();
    for (table, column, ty, not_null, pk) in columns {
        let pk = pk > 0;
        // A rowid alias (`INTEGER PRIMARY KEY`) is a 64-bit integer.
        let ty = match ty.as_str() {
            "INTEGER" if pk => "bigint".to_owned(),
            other => other.to_lowercase(),
        };
        // SQLite lets a non-integer primary key hold NULL (a historical quirk); the code never
        // stores one, and PostgreSQL's keys are NOT NULL.
        let nullable = not_null == 0 && !pk;
        schema
            .entry(table)
            .or_default()
            .insert(column, (ty, nullable, pk));
    }
    let indexes = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    (schema, indexes)
}

async fn postgres_schema(db: &Db) -> (Schema, Vec<String>) {
    // information_schema's own types (sql_identifier, …) are cast to text: `Any` reads text.
    let columns: Vec<(String, String, String, String, bool)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text, \
         c.is_nullable::text, EXISTS (SELECT 1 FROM information_schema.key_column_usage k \
         JOIN information_schema.table_constraints t ON t.constraint_name = k.constraint_name \
         AND t.table_schema = k.table_schema WHERE t.constraint_type = 'PRIMARY KEY' \
         AND k.table_schema = c.table_schema AND k.table_name = c.table_name \
         AND k.column_name = c.column_name) \
         FROM information_schema.columns c \
         WHERE c.table_schema = current_schema() AND c.table_name <> '_sqlx_migrations'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let mut schema = Schema::new();
    for (table, column, ty, nullable, pk) in columns {
        schema
            .entry(table)
            .or_default()
            .insert(column, (ty, nullable == "YES", pk));
    }
    let indexes = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() \
         AND indexname NOT LIKE '%_pkey' ORDER BY indexname",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    (schema, indexes)
}

#[tokio::test]
async fn postgres_gets_the_tables_columns_types_keys_and_indexes_sqlite_gets() {
    let Some(url) = fresh_postgres("postgres_gets_the_tables_columns…").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Db::open_in(dir.path()).await.unwrap();
    let postgres = Db::connect(&url).await.unwrap();
    assert_eq!(postgres.backend(), Backend::Postgres);
    let (s_schema, s_indexes) = sqlite_schema(&sqlite).await;
    let (p_schema, p_indexes) = postgres_schema(&postgres).await;
    assert!(s_schema.len() >= 11, "{:?}", s_schema.keys());
    assert!(s_schema["attendance"].contains_key("loss_max"));
    assert_eq!(s_schema, p_schema);
    assert_eq!(s_indexes, p_indexes);
}

#[tokio::test]
async fn migrations_run_once_and_data_survives_reconnecting() {
    let Some(url) = fresh_postgres("migrations_run_once_and_data_survives_reconnecting").await
    else {
        return;
    };
    let db = Db::connect(&url).await.unwrap();
    points::create(&db, &point("06"), 1).await.unwrap();
    db.close().await;
    let db = Db::connect(&url).await.unwrap();
    assert_eq!(points::get(&db, "06").await.unwrap().name, "Hội trường 06");
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let versions = sql_files(&Path::new(MIGRATIONS).join("postgres")).len();
    assert_eq!(applied as usize, versions, "each migration ran once");
}

fn point(code: &str) -> points::PointInput {
    points::PointInput {
        code: code.into(),
        name: format!("Hội trường {code}"),
        kind: "commune".into(),
        ..Default::default()
    }
}

/// How many sessions wait for an advisory lock on this database.
async fn lock_waiters(db: &Db) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()",
    )
    .fetch_one(db.pool())
    .await
    .unwrap()
}

/// As `BEGIN IMMEDIATE` on SQLite: a second write transaction waits for the first to end, so
/// a check-then-insert cannot pass the same check twice (a 409, not a unique violation).
#[tokio::test]
async fn write_transactions_take_turns() {
    let Some(url) = fresh_postgres("write_transactions_take_turns").await else {
        return;
    };
    let db = Db::connect(&url).await.unwrap();
    let first = db.begin().await.unwrap();
    let second = tokio::spawn({
        let db = db.clone();
        async move { points::create(&db, &point("058"), 2).await }
    });
    // Seen waiting by the server itself, not guessed from a delay.
    let deadline = Instant::now() + Duration::from_secs(10);
    while lock_waiters(&db).await == 0 {
        assert!(Instant::now() < deadline, "the second writer never waited");
        assert!(!second.is_finished(), "{:?}", second.await.unwrap());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.commit().await.unwrap();
    second.await.unwrap().unwrap();

    // The same code created twice at once: one wins, the other is told it exists.
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { points::create(&db, &point("060"), 3).await })
        })
        .collect();
    let mut created = 0;
    for r in racers {
        match r.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("not a clean conflict: {e:?}"),
        }
    }
    assert_eq!(created, 1);
}

/// Opening fails with the URL (password masked) and why, never the password.
#[tokio::test]
async fn a_database_that_cannot_be_opened_is_a_clear_error_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    // No server behind this socket directory: refused at once.
    let url = format!(
        "postgres://hoinghi:s3cret-pw@localhost/hoinghi?host={}",
        dir.path().display()
    );
    let err = Db::connect(&DatabaseUrl::parse(&url).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::Connect(_)), "{err:?}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(
            shown.contains("postgres://hoinghi:***@localhost/hoinghi"),
            "{shown}"
        );
    }

    let Some(DatabaseUrl::Postgres(mut url)) = fresh_postgres("…cannot be opened…").await
    else {
        return;
    };
    url.set_path("/no_such_database");
    url.query_pairs_mut().append_pair("password", "s3cret-pw");
    let err = Db::connect(&DatabaseUrl::Postgres(url)).await.unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("no_such_database"), "{shown}");
    assert!(shown.contains("does not exist"), "{shown}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
}
