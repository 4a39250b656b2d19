//! `--database-url`: where the control plane is stored, and how the flag keeps its password out
//! of what is printed.

use std::path::Path;

use clap::Args;
use room_admin::db::DatabaseUrl;

/// Where the control plane (accounts, points, meetings, attendance) is stored.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// The control plane's database: `sqlite:///path/to/file.db`, or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (a Unix socket:
    /// `postgres:///DATABASE?host=/run/postgresql`). Default: the SQLite file hoinghi.db in
    /// --data-dir. The schema is created or brought up to date at start. Prefer the environment
    /// or a socket with peer authentication to a password on the command line (`ps` shows it).
    #[arg(
        long,
        env = "HOINGHI_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<DatabaseUrlArg>,
}

impl DatabaseArgs {
    /// The database to open: `--database-url`, else `<data_dir>/hoinghi.db`.
    pub fn url(&self, data_dir: &Path) -> anyhow::Result<DatabaseUrl> {
        match &self.database_url {
            Some(arg) => Ok(DatabaseUrl::parse(&arg.0)?),
            None => Ok(DatabaseUrl::Sqlite(data_dir.join(room_admin::db::DB_FILE))),
        }
    }
}

/// `--database-url` as given, parsed when the database is opened so the error can leave the
/// URL out (a clap parse error would repeat it, password and all). `Debug` masks it.
#[derive(Clone)]
pub struct DatabaseUrlArg(pub String);

impl std::str::FromStr for DatabaseUrlArg {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DatabaseUrlArg(s.to_owned()))
    }
}

impl std::fmt::Debug for DatabaseUrlArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match DatabaseUrl::parse(&self.0) {
            Ok(url) => write!(f, "{url}"),
            Err(_) => f.write_str("(not a database URL)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AdminCommand, Cli, Command};
    use super::*;
    use clap::Parser;
    use std::path::PathBuf;

    #[test]
    fn the_default_is_hoinghi_db_in_the_data_dir() {
        let cli = Cli::try_parse_from(["hoinghi", "--data-dir", "/srv/hn"]).unwrap();
        assert_eq!(
            cli.serve.database.url(&cli.serve.conn.data_dir).unwrap(),
            DatabaseUrl::Sqlite(PathBuf::from("/srv/hn/hoinghi.db"))
        );
    }

    #[test]
    fn serve_and_admin_add_take_a_url_that_debug_output_masks() {
        let url = "postgres://hn:s3cret-pw@db.tinh.vn/hoinghi";
        let cli = Cli::try_parse_from(["hoinghi", "serve", "--database-url", url]).unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("serve")
        };
        assert_eq!(
            args.database.url(&args.conn.data_dir).unwrap(),
            DatabaseUrl::parse(url).unwrap()
        );
        let shown = format!("{args:?}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(
            shown.contains("postgres://hn:***@db.tinh.vn/hoinghi"),
            "{shown}"
        );

        let cli =
            Cli::try_parse_from(["hoinghi", "admin", "add", "it", "--database-url", url]).unwrap();
        let Some(Command::Admin {
            which: AdminCommand::Add(add),
        }) = cli.command
        else {
            panic!("admin add")
        };
        assert_eq!(
            add.data.database_url().unwrap(),
            DatabaseUrl::parse(url).unwrap()
        );
    }

    #[test]
    fn a_bad_url_is_refused_when_opening_without_being_repeated() {
        let cli =
            Cli::try_parse_from(["hoinghi", "--database-url", "mysql://u:s3cret-pw@h/db"]).unwrap();
        let err = cli
            .serve
            .database
            .url(&cli.serve.conn.data_dir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mysql"), "{err}");
        assert!(!err.contains("s3cret-pw"), "{err}");
    }
}
