//! Where the database is: `--database-url sqlite://PATH` or `postgres://…`, and how it is shown.
//!
//! A PostgreSQL URL may carry a password (in the user info or as `?password=`). It never leaves
//! this module in clear: [`DatabaseUrl`]'s `Display` and `Debug` print it as `***`, and an error
//! from the driver has the password cut out of its text before it is wrapped ([`scrub`]).

use std::fmt;
use std::path::PathBuf;

use url::Url;

use super::DbError;

/// What `--database-url` names: a SQLite file or a PostgreSQL database.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(Url),
}

/// What stands for a password in anything printed.
const MASK: &str = "***";

impl DatabaseUrl {
    /// Parses `sqlite://PATH` (`sqlite:PATH`; `sqlite:///abs/path` is the absolute path) or
    /// `postgres://…` (`postgresql://…`). The error never repeats the URL: it may hold a password.
    pub fn parse(s: &str) -> Result<DatabaseUrl, DbError> {
        let bad = |why: &str| DbError::Url(why.to_owned());
        let (scheme, _) = s.split_once(':').ok_or_else(|| {
            bad("expected sqlite://PATH or postgres://USER@HOST/DATABASE, got no scheme")
        })?;
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                let rest = &s[scheme.len() + 1..];
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.contains('?') {
                    return Err(bad(
                        "a sqlite URL takes no parameters (WAL, FULL sync and foreign keys are \
                         always on)",
                    ));
                }
                if path.is_empty() || path == ":memory:" {
                    return Err(bad(
                        "a sqlite URL needs a file path (sqlite:///var/lib/…/hoinghi.db)",
                    ));
                }
                let path = percent_encoding::percent_decode_str(path)
                    .decode_utf8()
                    .map_err(|_| bad("the sqlite path is not UTF-8 once decoded"))?;
                Ok(DatabaseUrl::Sqlite(PathBuf::from(path.as_ref())))
            }
            "postgres" | "postgresql" => {
                // `url`'s own error names the part that is wrong, never the input.
                let url = Url::parse(s)
                    .map_err(|e| DbError::Url(format!("not a valid postgres URL: {e}")))?;
                Ok(DatabaseUrl::Postgres(url))
            }
            other
                if other
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                Err(DbError::Url(format!(
                    "unsupported database `{other}:` (sqlite:// or postgres://)"
                )))
            }
            _ => Err(bad(
                "expected sqlite://PATH or postgres://USER@HOST/DATABASE",
            )),
        }
    }

    /// The password the URL carries (user info or `?password=`), if any.
    pub(super) fn password(&self) -> Option<String> {
        let DatabaseUrl::Postgres(url) = self else {
            return None;
        };
        let info = url.password().map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        });
        info.or_else(|| {
            url.query_pairs()
                .find(|(k, _)| k == "password")
                .map(|(_, v)| v.into_owned())
        })
    }

    /// The URL with any password replaced by `***`: what logs and errors show.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => {
                let mut shown = url.clone();
                if shown.password().is_some() {
                    // Only fails for URLs that cannot have a password, which this one has.
                    let _ = shown.set_password(Some(MASK));
                }
                if url.query_pairs().any(|(k, _)| k == "password") {
                    let pairs: Vec<(String, String)> = url
                        .query_pairs()
                        .map(|(k, v)| {
                            let v = if k == "password" {
                                MASK.into()
                            } else {
                                v.into_owned()
                            };
                            (k.into_owned(), v)
                        })
                        .collect();
                    shown.query_pairs_mut().clear().extend_pairs(pairs);
                }
                shown.to_string()
            }
        }
    }

    /// The URL the `Any` driver connects with (for SQLite: the file, created when missing),
    /// password included: for connecting, never for showing.
    pub fn connect_url(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => {
                use sqlx::ConnectOptions;
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .to_url_lossy()
                    .to_string()
            }
            DatabaseUrl::Postgres(url) => url.to_string(),
        }
    }
}

/// `text` with every occurrence of `password` (raw and percent-encoded) replaced by `***`.
pub(super) fn scrub(text: &str, password: Option<&str>) -> String {
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return text.to_owned();
    };
    let encoded =
        percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    text.replace(password, MASK).replace(&encoded, MASK)
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_a_file() {
        for (url, path) in [
            (
                "sqlite:///var/lib/hoinghi/hoinghi.db",
                "/var/lib/hoinghi/hoinghi.db",
            ),
            ("sqlite://data/hoinghi.db", "data/hoinghi.db"),
            ("sqlite:data/hoinghi.db", "data/hoinghi.db"),
            ("SQLITE:///tmp/a%20b.db", "/tmp/a b.db"),
        ] {
            assert_eq!(
                DatabaseUrl::parse(url).unwrap(),
                DatabaseUrl::Sqlite(path.into()),
                "{url}"
            );
        }
        for bad in ["sqlite://", "sqlite::memory:", "sqlite:///tmp/x.db?mode=ro"] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_urls_are_refused_without_repeating_them() {
        for bad in [
            "mysql://u:s3cret-pw@h/db",
            "s3cret-pw",
            "postgres://u:s3cret-pw@[::1/db",
            "hoinghi.db",
        ] {
            let err = DatabaseUrl::parse(bad).unwrap_err().to_string();
            assert!(!err.contains("s3cret-pw"), "{err}");
            assert!(err.contains("sqlite") || err.contains("postgres"), "{err}");
        }
    }

    #[test]
    fn passwords_are_masked_wherever_they_are() {
        let url = DatabaseUrl::parse("postgres://hn:p%40ss@db.tinh.vn:5432/hoinghi").unwrap();
        assert_eq!(url.password().as_deref(), Some("p@ss"));
        assert_eq!(url.redacted(), "postgres://hn:***@db.tinh.vn:5432/hoinghi");
        assert_eq!(
            format!("{url:?}"),
            "DatabaseUrl(postgres://hn:***@db.tinh.vn:5432/hoinghi)"
        );
        let url =
            DatabaseUrl::parse("postgresql:///hoinghi?host=/run/pg&password=top%20secret").unwrap();
        assert_eq!(url.password().as_deref(), Some("top secret"));
        assert!(!url.to_string().contains("secret"), "{url}");
        assert!(url.to_string().contains("host=%2Frun%2Fpg"), "{url}");
        let no_pw = DatabaseUrl::parse("postgres:///hoinghi?host=/run/pg").unwrap();
        assert_eq!(no_pw.password(), None);
    }

    #[test]
    fn scrub_cuts_the_password_raw_and_encoded() {
        let text = "auth failed for p@ss (p%40ss)";
        assert_eq!(scrub(text, Some("p@ss")), "auth failed for *** (***)");
        assert_eq!(scrub(text, None), text);
    }
}
