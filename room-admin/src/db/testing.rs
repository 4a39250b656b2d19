//! Test support: the same store tests on SQLite files or on a real PostgreSQL.
//!
//! [`POSTGRES_URL_ENV`] names a PostgreSQL server the tests may create databases on: a URL to
//! its maintenance database, e.g. `postgres:///postgres?host=/tmp/pg&user=hoinghi`.
//! `run-tests.sh` starts a throwaway cluster on a Unix socket and always sets it. Tests about
//! PostgreSQL itself take a database of their own from [`fresh_postgres`] and, without the
//! variable, pass after saying loudly on stderr that they did not run.
//!
//! [`DATABASE_ENV`]` = postgres` also runs the suites built on [`open_for_test`] (the admin API
//! suites, the store's unit tests) on PostgreSQL, each test in a database of its own so they
//! run in parallel without seeing each other; `run-tests.sh` runs them once more so. The
//! databases are left behind (`hoinghi_test_<hex>`): the cluster is deleted after the run.

use std::path::Path;

use sqlx::{AnyConnection, Connection, Executor};

use super::{DatabaseUrl, Db};

/// The PostgreSQL server tests may create databases on.
pub const POSTGRES_URL_ENV: &str = "HOINGHI_TEST_POSTGRES_URL";
/// `postgres`: the suites built on [`open_for_test`] run on PostgreSQL.
pub const DATABASE_ENV: &str = "HOINGHI_TEST_DATABASE";

/// The server [`POSTGRES_URL_ENV`] names, or `None` (after a loud note on stderr naming `test`)
/// when it is not set. Panics when it is set but not a postgres URL: a typo must not turn the
/// PostgreSQL tests into skips.
pub fn postgres_server(test: &str) -> Option<DatabaseUrl> {
    let Ok(raw) = std::env::var(POSTGRES_URL_ENV) else {
        eprintln!(
            "\n!!! SKIPPED {test}: {POSTGRES_URL_ENV} is not set, nothing ran against PostgreSQL.\n\
             !!! run-tests.sh starts a cluster and sets it; by hand, point it at a server\n\
             !!! where this user may CREATE DATABASE, e.g. postgres:///postgres?host=/tmp/pg\n"
        );
        return None;
    };
    match DatabaseUrl::parse(&raw) {
        Ok(url @ DatabaseUrl::Postgres(_)) => Some(url),
        Ok(_) => panic!("{POSTGRES_URL_ENV} must be a postgres:// URL"),
        Err(e) => panic!("{POSTGRES_URL_ENV}: {e}"),
    }
}

/// A new, empty database on the test server (`None` when there is none, see
/// [`postgres_server`]).
pub async fn fresh_postgres(test: &str) -> Option<DatabaseUrl> {
    let server = postgres_server(test)?;
    let DatabaseUrl::Postgres(mut url) = server.clone() else {
        unreachable!("postgres_server returns postgres URLs")
    };
    let name = format!("hoinghi_test_{}", super::random_hex16());
    sqlx::any::install_default_drivers();
    let mut admin = AnyConnection::connect(&server.connect_url())
        .await
        .unwrap_or_else(|e| panic!("cannot reach {server}: {e}"));
    // The name is ours (hex): no quoting issue.
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {server}: {e}"));
    admin.close().await.ok();
    url.set_path(&format!("/{name}"));
    Some(DatabaseUrl::Postgres(url))
}

/// Whether [`DATABASE_ENV`] asks for PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var(DATABASE_ENV).is_ok_and(|v| v == "postgres")
}

/// The database a store test runs on: `<dir>/hoinghi.db`, or with [`DATABASE_ENV`]` =
/// postgres` a fresh PostgreSQL database (panicking when no server is set: asked for
/// PostgreSQL, a test must not quietly run on SQLite).
pub async fn open_for_test(dir: &Path) -> Db {
    if on_postgres() {
        let url = fresh_postgres("open_for_test")
            .await
            .unwrap_or_else(|| panic!("{DATABASE_ENV}=postgres needs {POSTGRES_URL_ENV}"));
        Db::connect(&url).await.unwrap()
    } else {
        Db::open_in(dir).await.unwrap()
    }
}
