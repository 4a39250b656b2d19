//! The database: SQLite, one file `<data-dir>/hoinghi.db` (the default, embedded), or a
//! PostgreSQL database (`--database-url postgres://…`, for a province that runs its own
//! database cluster). Migrations are embedded in the binary and run at open.
//!
//! **One query set, sqlx's `Any` driver.** The domain code writes SQL both engines accept
//! (`$n` placeholders, `ON CONFLICT` upserts, `TRUE`/`FALSE`, times as integers, ids as text)
//! and decodes only what `Any` carries (`i64`, `i32`, `f64`, `bool`, `String`, their
//! `Option`s), so every query runs unchanged on both through one `AnyPool`. An enum of two
//! pools would have put a `match` in each of the ~60 queries, and code generic over
//! `sqlx::Database` a wall of `Encode`/`Decode`/`Executor` bounds on each function, for nothing
//! `Any` lacks here. Its cost: values pass through `AnyValue` (a copy each, nothing at an admin
//! panel's rates); the per-engine connection settings are statements run after connecting
//! (below), since `Any` connects from a URL alone; and sqlx 0.9's `Any` could not read a
//! SQLite BOOLEAN column (sqlx issue #2778), so `vendor/sqlx-sqlite` carries that fix.
//!
//! **Two migration sets, the same versions.** SQLite runs `migrations/` (unchanged: deployed
//! databases recorded their checksums, and sqlx refuses to start when a recorded one differs);
//! PostgreSQL runs `migrations/postgres/`, the same versions and names, differing only where the
//! DDL must: SQLite's `INTEGER PRIMARY KEY` (a rowid alias) of the four log tables is
//! `BIGINT GENERATED ALWAYS AS IDENTITY` there. `tests/postgres.rs` checks that both sets
//! have the same versions and text but for that, and give the same tables, columns, types,
//! keys and indexes.
//!
//! `synchronous = FULL` (SQLite): every committed transaction is on disk before the commit
//! returns, so neither a killed process nor a power cut loses a write that was acknowledged.
//! The write rate of an admin panel is a few per second at most; the cost does not matter.
//! (PostgreSQL's default `synchronous_commit = on` is the same promise.)
//!
//! **Write transactions one at a time, on both** ([`Db::begin`]). SQLite: `BEGIN IMMEDIATE`
//! takes the write lock first, waiting up to the busy timeout for it. A plain (deferred)
//! `BEGIN` starts as a reader, and when it later writes while the attendance recorder committed
//! in between, SQLite answers "database is locked" at once (a stale snapshot cannot wait its
//! way out), which the panel saw as a 500 during join storms. The code also relies on writers
//! running in a row: a transaction checks, then writes on what it checked (a point's code is
//! free, then the point is inserted; a point exists, then its fields are written). PostgreSQL's
//! default READ COMMITTED would let two such transactions pass the same check (a unique
//! violation, a 500 instead of the 409). So there each write transaction first takes a
//! transaction-level advisory lock ([`WRITE_LOCK`], released at commit or rollback), with
//! `lock_timeout` as long as SQLite's busy timeout. SERIALIZABLE would let writers overlap, but
//! every caller would have to retry serialization failures, for a concurrency a few writes a
//! second do not need. The recorders' single-statement writes outside `begin` take no lock on
//! PostgreSQL (on SQLite they wait for the write lock): each is one atomic statement, so any
//! interleaving is one that running them in some order would give.
//!
//! The SQLite database and its `-wal` and `-shm` files hold the staff's password hashes and
//! every meeting's links: they are mode 0600 whatever the umask and the data dir's mode. The
//! main file is created 0600 before SQLite opens it (SQLite gives its `-wal` and `-shm` the main
//! file's mode), and files left more open by an earlier version are narrowed at every open.

mod location;

#[doc(hidden)]
pub mod testing;

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};

pub use location::DatabaseUrl;

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "hoinghi.db";

/// Permission bits of the database and its companions: the owner only.
pub const FILE_MODE: u32 = 0o600;

/// How long a writer waits for another to finish (SQLite's busy timeout, PostgreSQL's
/// `lock_timeout`), and how long opening waits for a first connection.
const WAIT: Duration = Duration::from_secs(10);

/// The key of the advisory lock every PostgreSQL write transaction takes ("hoinghi" in ASCII).
/// Advisory locks are per database: two hoinghi databases on one cluster do not share it.
pub const WRITE_LOCK: i64 = 0x0068_6f69_6e67_6869;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

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
    /// `--database-url` is not one this server can use; never repeats the URL.
    #[error("bad --database-url: {0}")]
    Url(String),
    /// The text holds the URL and the driver's error with any password cut out.
    #[error("cannot open the database {0}")]
    Connect(String),
}

/// Which engine a [`Db`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

pub type Tx<'a> = Transaction<'a, Any>;

impl Db {
    /// Opens (creating when missing) `<data_dir>/hoinghi.db` and brings its schema up to date.
    pub async fn open_in(data_dir: &Path) -> Result<Db, DbError> {
        Db::open(&data_dir.join(DB_FILE)).await
    }

    /// Opens the SQLite database file at `path` and runs the migrations.
    pub async fn open(path: &Path) -> Result<Db, DbError> {
        Db::connect(&DatabaseUrl::Sqlite(path.to_owned())).await
    }

    /// Opens the database `url` names and runs its engine's migrations. Errors carry the URL
    /// with its password masked, never in clear.
    pub async fn connect(url: &DatabaseUrl) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let (backend, migrations) = match url {
            DatabaseUrl::Sqlite(path) => {
                make_private(path)?;
                (Backend::Sqlite, &SQLITE_MIGRATIONS)
            }
            DatabaseUrl::Postgres(_) => (Backend::Postgres, &POSTGRES_MIGRATIONS),
        };
        let hide = |e: &dyn std::fmt::Display| {
            DbError::Connect(location::scrub(
                &format!("{url}: {e}"),
                url.password().as_deref(),
            ))
        };
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(WAIT)
            .after_connect(move |conn, meta| Box::pin(settings(backend, conn, meta)))
            .connect(&url.connect_url())
            .await
            .map_err(|e| match e {
                // What sqlx says when the server refused connections until the deadline.
                sqlx::Error::PoolTimedOut => {
                    hide(&"no connection within 10 s (is the server running and reachable?)")
                }
                e => hide(&e),
            })?;
        migrations.run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => hide(&e),
            e => DbError::Migrate(e),
        })?;
        if let DatabaseUrl::Sqlite(path) = url {
            // The `-wal` and `-shm` exist now (WAL mode made them): narrow any left by an older
            // run.
            make_private(path)?;
        }
        Ok(Db { pool, backend })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A write transaction, waiting (up to 10 s) for any other write transaction to end; see
    /// the module comment. Use it for every transaction that writes.
    pub async fn begin(&self) -> Result<Tx<'static>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                // The function returns `void`, which `Any` cannot carry: wrapped in a query
                // that returns a number.
                sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS locked")
                    .bind(WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    /// Waits for every connection to close (tests reopening the same file).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Per-connection settings `Any` cannot take from the URL. SQLite: the busy timeout first (the
/// switch to WAL may wait for a lock), WAL (kept in the file, so a no-op after the first
/// connection), FULL sync, foreign keys (off by default in SQLite). PostgreSQL: how long a
/// writer waits for the write lock.
async fn settings(
    backend: Backend,
    conn: &mut AnyConnection,
    _: PoolConnectionMetadata,
) -> Result<(), sqlx::Error> {
    let statements: &[&'static str] = match backend {
        Backend::Sqlite => &[
            "PRAGMA busy_timeout = 10000",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = FULL",
            "PRAGMA foreign_keys = ON",
        ],
        Backend::Postgres => &["SET lock_timeout = '10s'"],
    };
    for statement in statements {
        conn.execute(*statement).await?;
    }
    Ok(())
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
