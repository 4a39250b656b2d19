//! The database: one SQLite file (`<data-dir>/hoinghi.db`) in WAL mode, foreign keys on,
//! migrations embedded in the binary and run at open.
//!
//! `synchronous = FULL`: every committed transaction is on disk before the commit returns, so
//! neither a killed process nor a power cut loses a write that was acknowledged. The write rate
//! of an admin panel is a few per second at most; the cost does not matter.
//!
//! Every write transaction starts with `BEGIN IMMEDIATE` ([`Db::begin`]): it takes the write
//! lock first, waiting up to the busy timeout for it. A plain (deferred) `BEGIN` starts as a
//! reader, and when it later writes while the attendance recorder committed in between, SQLite
//! answers "database is locked" at once (a stale snapshot cannot wait its way out), which the
//! panel saw as a 500 during join storms.
//!
//! The database and its `-wal` and `-shm` files hold the staff's password hashes and every
//! meeting's links: they are mode 0600 whatever the umask and the data dir's mode. The main file
//! is created 0600 before SQLite opens it (SQLite gives its `-wal` and `-shm` the main file's
//! mode), and files left more open by an earlier version are narrowed at every open.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "hoinghi.db";

/// Permission bits of the database and its companions: the owner only.
pub const FILE_MODE: u32 = 0o600;

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot make the database file private: {0}")]
    Permissions(#[from] io::Error),
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
        make_private(path)?;
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
        // The `-wal` and `-shm` exist now (WAL mode made them): narrow any left by an older run.
        make_private(path)?;
        Ok(Db { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A write transaction: `BEGIN IMMEDIATE`, so it waits for the write lock (busy timeout)
    /// instead of failing when it upgrades from reader to writer. Use it for every transaction
    /// that writes.
    pub async fn begin(&self) -> Result<Tx<'static>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Waits for every connection to close (tests reopening the same file).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The database file and its `-wal`, `-shm` and `-journal` companions.
pub fn companion_files(path: &Path) -> [PathBuf; 4] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [
        path.to_owned(),
        with("-wal"),
        with("-shm"),
        with("-journal"),
    ]
}

/// Creates the database file with mode [`FILE_MODE`] when missing (never truncating it), and
/// narrows the mode of it and of its existing companions to [`FILE_MODE`].
pub fn make_private(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)?;
    for file in companion_files(path) {
        match fs::metadata(&file) {
            Ok(meta) if meta.permissions().mode() & 0o777 != FILE_MODE => {
                fs::set_permissions(&file, fs::Permissions::from_mode(FILE_MODE))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
