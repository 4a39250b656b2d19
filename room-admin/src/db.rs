//! The database: one SQLite file (`<data-dir>/hoinghi.db`) in WAL mode, foreign keys on,
//! migrations embedded in the binary and run at open.
//!
//! `synchronous = FULL`: every committed transaction is on disk before the commit returns, so
//! neither a killed process nor a power cut loses a write that was acknowledged. The write rate
//! of an admin panel is a few per second at most; the cost does not matter.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "hoinghi.db";

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Db {
    pool: SqlitePool,
}

pub type Tx<'a> = Transaction<'a, Sqlite>;

impl Db {
    /// Opens (creating when missing) `<data_dir>/hoinghi.db` and brings its schema up to date.
    pub async fn open_in(data_dir: &Path) -> Result<Db, DbError> {
        Db::open(&data_dir.join(DB_FILE)).await
    }

    /// Opens the database file at `path` and runs the migrations.
    pub async fn open(path: &Path) -> Result<Db, DbError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Db { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn begin(&self) -> Result<Tx<'static>, sqlx::Error> {
        self.pool.begin().await
    }

    /// Waits for every connection to close (tests reopening the same file).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Seconds since the Unix epoch (UTC): how every time is stored.
pub fn unix_now() -> i64 {
    unix(SystemTime::now())
}

pub fn unix(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// A random id: `prefix` then 16 hex digits (64 bits).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(rand::random::<[u8; 8]>()))
}

/// A random 128-bit value in hex (token ids, CSRF tokens, passwords).
pub fn random_hex16() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}
