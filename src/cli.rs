//! Command line: `hoinghi [serve] [flags]` and `hoinghi links test-room [--json]`.
//!
//! Every flag can also be set through the environment as `HOINGHI_<FLAG>` (for systemd units and
//! containers); a flag given on the command line wins over the environment. On/off flags accept
//! `1/0`, `true/false`, `yes/no`, `on/off` there.

use std::ffi::OsString;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use room_admin::db::DatabaseUrl;

mod database;
pub use database::DatabaseArgs;
use signaling::turn::{TurnConfig, TurnSecret, TurnUrl};

/// The environment variable that may hold the TURN secret itself. Not a flag: a secret on the
/// command line is visible to every user of the machine in `ps`.
pub const TURN_SECRET_ENV: &str = "HOINGHI_TURN_SECRET";
/// The default first media port: below Linux's ephemeral port range (32768-60999), as Jitsi's.
pub const DEFAULT_MEDIA_PORT: u16 = 10_000;
// Checked when compiling: below the ephemeral range with room for 64 workers, and above the
// ports that need privileges.
const _: () = assert!(DEFAULT_MEDIA_PORT as u32 + 64 < 32_768 && DEFAULT_MEDIA_PORT >= 1024);
/// A secret file larger than this is a wrong path (a log, a binary), not a secret.
const TURN_SECRET_MAX_BYTES: u64 = 4_096;

#[derive(Debug, Parser)]
#[command(
    name = "hoinghi",
    version,
    about = "Self-hosted video conferencing server for provincial meetings (hội nghị truyền hình).",
    long_about = "Self-hosted video conferencing server for provincial meetings (hội nghị truyền \
                  hình): the province hall chairs, commune halls join from a link.\n\n\
                  With no command, `hoinghi` runs `serve`. Every flag can also be set as an \
                  environment variable HOINGHI_<FLAG>, shown next to each flag below.",
    // `hoinghi --listen ...` (flags with no command) means `hoinghi serve --listen ...`.
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: HTTPS (web client, /ws signaling), the media workers, and /metrics on
    /// --metrics-listen when given.
    Serve(ServeArgs),
    /// Print join links.
    Links {
        #[command(subcommand)]
        which: LinksCommand,
    },
    /// Manage admin-panel accounts.
    Admin {
        #[command(subcommand)]
        which: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an account for the admin panel (/admin), or set a new password if it exists.
    ///
    /// The password is read from standard input when it is not a terminal (one line), and
    /// asked for twice, without echo, otherwise.
    Add(AdminAddArgs),
    /// Test helper: write to the database in a loop until killed (crash-consistency test).
    #[command(hide = true)]
    StressWrites(DataDirArgs),
}

#[derive(Debug, Clone, Args)]
pub struct AdminAddArgs {
    /// User name: 2-32 characters, lower-case letters, digits, '.', '_', '-'.
    pub username: String,

    /// `admin` (everything, including accounts) or `operator` (points, meetings, links).
    #[arg(long, default_value = "admin", value_parser = ["admin", "operator"])]
    pub role: String,

    #[command(flatten)]
    pub data: DataDirArgs,
}

#[derive(Debug, Clone, Args)]
pub struct DataDirArgs {
    /// The server's data directory (holds hoinghi.db unless --database-url names another
    /// database).
    #[arg(long, env = "HOINGHI_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    #[command(flatten)]
    pub database: DatabaseArgs,
}

impl DataDirArgs {
    pub fn database_url(&self) -> anyhow::Result<DatabaseUrl> {
        self.database.url(&self.data_dir)
    }
}

#[derive(Debug, Subcommand)]
pub enum LinksCommand {
    /// Links of the permanent test room (one chair, three points), valid for 365 days.
    ///
    /// Takes the same connection flags as `serve` so the links point at that server.
    /// Append `&autojoin=1` to a link for kiosk mode (joins without the pre-join screen).
    TestRoom(LinksArgs),
}

/// Flags that decide where the server is and how links to it look; shared by `serve` and `links`.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Address and port for HTTPS (or HTTP with --no-tls): the web client and /ws.
    /// Port 0 picks a free port (printed on the `ready:` line).
    #[arg(long, env = "HOINGHI_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// Directory for the server's own files: the database (hoinghi.db), join-token secret
    /// (secret.key) and the generated TLS certificate (tls/). Created if missing.
    #[arg(long, env = "HOINGHI_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// IP address announced to browsers in ICE candidates and used in join links when listening
    /// on 0.0.0.0. Default: the --listen address when it is a specific address, else the first
    /// non-loopback IPv4 address of this machine (loopback if there is none). Set it to the
    /// address points can reach, e.g. the public IP behind a 1:1 NAT.
    #[arg(long, env = "HOINGHI_PUBLIC_IP")]
    pub public_ip: Option<IpAddr>,

    /// Serve plain HTTP and WS instead of HTTPS and WSS. For local development and tests only:
    /// browsers allow camera and microphone over plain HTTP only on localhost, and join tokens
    /// would cross the network in clear text.
    #[arg(long, env = "HOINGHI_NO_TLS", value_parser = BoolishValueParser::new())]
    pub no_tls: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub conn: ConnArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// First UDP port for media. Media worker i listens on UDP port (media-port + i); open
    /// media-port .. media-port + workers - 1 in the firewall. The default sits below Linux's
    /// ephemeral range (32768-60999), where any outgoing connection could hold the port.
    /// 0: any free port for each worker (printed as `media-udp:` before `ready:`; for tests).
    #[arg(long, env = "HOINGHI_MEDIA_PORT", default_value_t = DEFAULT_MEDIA_PORT)]
    pub media_port: u16,

    /// TCP port for media over ICE-TCP, for points whose firewall drops UDP (one port for all
    /// workers; browsers fall back to it by themselves). Default: the number of --media-port,
    /// on TCP. 0: any free port (logged). Open it in the firewall too.
    #[arg(long, env = "HOINGHI_ICE_TCP_PORT", conflicts_with = "no_ice_tcp")]
    pub ice_tcp_port: Option<u16>,

    /// Media over UDP only: no ICE-TCP listener.
    #[arg(long, env = "HOINGHI_NO_ICE_TCP", value_parser = BoolishValueParser::new())]
    pub no_ice_tcp: bool,

    /// Number of media worker threads (each owns whole rooms and one UDP port).
    /// Default: the number of CPU cores.
    #[arg(long, env = "HOINGHI_WORKERS",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,

    /// TLS certificate chain (PEM) to use instead of the generated self-signed one.
    /// Needs --tls-key.
    #[arg(
        long,
        env = "HOINGHI_TLS_CERT",
        requires = "tls_key",
        conflicts_with = "no_tls"
    )]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(
        long,
        env = "HOINGHI_TLS_KEY",
        requires = "tls_cert",
        conflicts_with = "no_tls"
    )]
    pub tls_key: Option<PathBuf>,

    /// Address for Prometheus metrics (`GET /metrics`, plain HTTP), e.g. 127.0.0.1:9464. Off by
    /// default: the metrics say who is connected and how the server is built, so they are not
    /// served on the web port. Port 0: any free port (printed as `metrics:` before `ready:`).
    #[arg(long, env = "HOINGHI_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Most HTTP(S) connections open at once from one client address (an IPv6 /64 counts as
    /// one). A WebSocket stops counting once it is upgraded. Raise it when many halls share one
    /// NAT address.
    #[arg(long, env = "HOINGHI_MAX_CONNECTIONS_PER_IP", value_name = "N",
          default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections_per_ip: u32,

    /// Hold loopback clients (127.0.0.0/8, ::1) to the server-wide WebSocket limits only, not
    /// to the per-address ones: for a reverse proxy or a load generator on this host, which
    /// shows every client as one loopback address. Off by default.
    #[arg(long, env = "HOINGHI_TRUST_LOOPBACK", value_parser = BoolishValueParser::new())]
    pub trust_loopback: bool,

    /// Seconds a client gets for its TLS handshake, and for each request head (also while a
    /// kept-alive connection waits for its next request); then the connection is closed.
    #[arg(long, env = "HOINGHI_HTTP_TIMEOUT", value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub http_timeout: u64,

    /// Log filter (tracing EnvFilter syntax), e.g. `info`, `debug`, `info,sfu=debug`.
    /// Logs go to stderr.
    #[arg(long, env = "HOINGHI_LOG", default_value = "info")]
    pub log: String,

    /// TURN server handed to browsers, for points whose network allows only TCP 443 outbound:
    /// `turn:HOST[:PORT][?transport=udp|tcp]` or `turns:...`. Repeat the flag for several
    /// (comma-separated in the environment). Needs the secret shared with the TURN server
    /// (--turn-secret-file or HOINGHI_TURN_SECRET).
    #[arg(
        long = "turn-url",
        env = "HOINGHI_TURN_URLS",
        value_name = "URL",
        value_delimiter = ',',
        value_parser = clap::value_parser!(TurnUrl)
    )]
    pub turn_urls: Vec<TurnUrl>,

    /// File holding the secret shared with the TURN server (coturn's `static-auth-secret`);
    /// surrounding whitespace is ignored. Instead of a file, the environment variable
    /// HOINGHI_TURN_SECRET may hold the secret itself; the file wins when both are set.
    #[arg(long, env = "HOINGHI_TURN_SECRET_FILE", value_name = "PATH")]
    pub turn_secret_file: Option<PathBuf>,

    /// Lifetime in seconds of the TURN credentials each participant gets when it joins
    /// (60..=604800). Relayed connections break when they expire: keep it above the longest
    /// meeting.
    #[arg(long, env = "HOINGHI_TURN_TTL", value_name = "SECONDS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(60..=604_800))]
    pub turn_ttl: u64,
}

impl ServeArgs {
    /// The TURN configuration, if any; `env_secret` is the value of [`TURN_SECRET_ENV`]. URLs
    /// without a secret, or a secret without URLs, are refused: either half alone means the
    /// operator expects relayed points to work and they would not.
    /// The ICE-TCP port to listen on, `None` when ICE-TCP is off.
    pub fn ice_tcp_port(&self) -> Option<u16> {
        (!self.no_ice_tcp).then(|| self.ice_tcp_port.unwrap_or(self.media_port))
    }

    pub fn turn(&self, env_secret: Option<OsString>) -> anyhow::Result<Option<TurnConfig>> {
        let secret = match (&self.turn_secret_file, env_secret) {
            (Some(path), _) => Some(read_turn_secret(path)?),
            (None, Some(value)) => {
                let text = value
                    .into_string()
                    .map_err(|_| anyhow::anyhow!("{TURN_SECRET_ENV} is not valid UTF-8"))?;
                Some(TurnSecret::new(&text).with_context(|| format!("{TURN_SECRET_ENV} is set"))?)
            }
            (None, None) => None,
        };
        match (self.turn_urls.is_empty(), secret) {
            (true, None) => Ok(None),
            (false, None) => anyhow::bail!(
                "--turn-url needs the secret shared with the TURN server: \
                 --turn-secret-file PATH or {TURN_SECRET_ENV}"
            ),
            (true, Some(_)) => anyhow::bail!(
                "a TURN secret is set (--turn-secret-file or {TURN_SECRET_ENV}) but no \
                 --turn-url: give the TURN server's URL, or remove the secret"
            ),
            (false, Some(secret)) => Ok(Some(TurnConfig::new(
                self.turn_urls.clone(),
                secret,
                Duration::from_secs(self.turn_ttl),
            )?)),
        }
    }
}

/// Reads a secret file; errors name the file, never its content.
fn read_turn_secret(path: &Path) -> anyhow::Result<TurnSecret> {
    let context = || format!("cannot read the TURN secret file {}", path.display());
    let mut text = String::new();
    std::fs::File::open(path)
        .with_context(context)?
        .take(TURN_SECRET_MAX_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(context)?;
    if text.len() as u64 > TURN_SECRET_MAX_BYTES {
        anyhow::bail!(
            "the TURN secret file {} is larger than {TURN_SECRET_MAX_BYTES} bytes: is it the right file?",
            path.display()
        );
    }
    TurnSecret::new(&text).with_context(|| format!("TURN secret file {}", path.display()))
}

#[derive(Debug, Clone, Args)]
pub struct LinksArgs {
    #[command(flatten)]
    pub conn: ConnArgs,

    /// Print `{"chair": URL, "points": [URL, URL, URL]}` instead of a readable list.
    #[arg(long, env = "HOINGHI_JSON", value_parser = BoolishValueParser::new())]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_command_means_serve_with_defaults() {
        let cli = Cli::try_parse_from(["hoinghi"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(
            cli.serve.conn.listen,
            "0.0.0.0:8443".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(cli.serve.conn.data_dir, PathBuf::from("./data"));
        assert_eq!(cli.serve.media_port, 10_000);
        assert!(cli.serve.metrics_listen.is_none());
        assert!(!cli.serve.conn.no_tls);
        assert_eq!(cli.serve.log, "info");
    }

    #[test]
    fn ice_tcp_defaults_to_the_media_port_number() {
        let serve = |args: &[&str]| {
            let mut argv = vec!["hoinghi"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).map(|c| c.serve.ice_tcp_port())
        };
        assert_eq!(serve(&[]).unwrap(), Some(10_000));
        assert_eq!(serve(&["--media-port", "0"]).unwrap(), Some(0));
        assert_eq!(serve(&["--media-port", "5000"]).unwrap(), Some(5000));
        assert_eq!(serve(&["--ice-tcp-port", "443"]).unwrap(), Some(443));
        assert_eq!(serve(&["--ice-tcp-port", "0"]).unwrap(), Some(0));
        assert_eq!(serve(&["--no-ice-tcp"]).unwrap(), None);
        assert!(serve(&["--no-ice-tcp", "--ice-tcp-port", "443"]).is_err());
        assert!(serve(&["--ice-tcp-port", "70000"]).is_err());
    }

    #[test]
    fn flags_without_command_go_to_serve() {
        let cli = Cli::try_parse_from(["hoinghi", "--no-tls", "--workers", "2"]).unwrap();
        assert!(cli.command.is_none());
        assert!(cli.serve.conn.no_tls);
        assert_eq!(cli.serve.workers, Some(2));
    }

    #[test]
    fn links_takes_connection_flags() {
        let cli = Cli::try_parse_from([
            "hoinghi",
            "links",
            "test-room",
            "--json",
            "--listen",
            "127.0.0.1:9999",
            "--no-tls",
        ])
        .unwrap();
        let Some(Command::Links {
            which: LinksCommand::TestRoom(args),
        }) = cli.command
        else {
            panic!("expected links test-room");
        };
        assert!(args.json);
        assert!(args.conn.no_tls);
        assert_eq!(args.conn.listen.port(), 9999);
    }

    #[test]
    fn admin_add_takes_a_user_role_and_data_dir() {
        let cli = Cli::try_parse_from([
            "hoinghi",
            "admin",
            "add",
            "it.backan",
            "--role",
            "operator",
            "--data-dir",
            "/tmp/d",
        ])
        .unwrap();
        let Some(Command::Admin {
            which: AdminCommand::Add(args),
        }) = cli.command
        else {
            panic!("expected admin add");
        };
        assert_eq!(args.username, "it.backan");
        assert_eq!(args.role, "operator");
        assert_eq!(args.data.data_dir, PathBuf::from("/tmp/d"));
        assert!(Cli::try_parse_from(["hoinghi", "admin", "add", "x", "--role", "root"]).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        for argv in [
            &["hoinghi", "--workers", "0"][..],
            &["hoinghi", "--media-port", "-1"],
            &["hoinghi", "--http-timeout", "0"],
            &["hoinghi", "--max-connections-per-ip", "0"],
            &["hoinghi", "--listen", "nowhere"],
            &["hoinghi", "--tls-cert", "c.pem"],
            &[
                "hoinghi",
                "--no-tls",
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem",
            ],
        ] {
            assert!(Cli::try_parse_from(argv).is_err(), "{argv:?}");
        }
    }

    fn serve_args(extra: &[&str]) -> ServeArgs {
        let argv = [&["hoinghi", "serve"][..], extra].concat();
        match Cli::try_parse_from(argv).unwrap().command {
            Some(Command::Serve(args)) => args,
            other => panic!("expected serve, got {other:?}"),
        }
    }

    fn secret_file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn turn_flags_parse_and_default_to_off() {
        let args = serve_args(&[]);
        assert!(args.turn_urls.is_empty());
        assert_eq!(args.turn_ttl, 86_400);
        assert!(args.turn(None).unwrap().is_none());

        let file = secret_file("  s3cret-value\n");
        let path = file.path().to_str().unwrap();
        let args = serve_args(&[
            "--turn-url",
            "turn:turn.example.vn:443?transport=tcp",
            "--turn-url",
            "turns:turn.example.vn:443",
            "--turn-secret-file",
            path,
            "--turn-ttl",
            "3600",
        ]);
        let turn = args.turn(None).unwrap().expect("TURN on");
        let urls: Vec<_> = turn.urls().iter().map(|u| u.as_str()).collect();
        assert_eq!(
            urls,
            [
                "turn:turn.example.vn:443?transport=tcp",
                "turns:turn.example.vn:443"
            ]
        );
        assert_eq!(turn.ttl(), Duration::from_secs(3600));
        // Trimmed: the credential is the one made with the bare secret.
        let ice = turn.ice_server("p1", std::time::SystemTime::now());
        let expected = signaling::turn::credential(
            &TurnSecret::new("s3cret-value").unwrap(),
            ice.username.as_deref().unwrap(),
        );
        assert_eq!(ice.credential, Some(expected));
        assert!(!format!("{args:?} {turn:?}").contains("s3cret"));
    }

    #[test]
    fn turn_secret_comes_from_the_environment_unless_a_file_is_given() {
        let url = ["--turn-url", "turn:127.0.0.1:3478"];
        let from_env = serve_args(&url)
            .turn(Some("env-secret".into()))
            .unwrap()
            .unwrap();
        let made = |t: &TurnConfig| {
            let ice = t.ice_server("p1", std::time::UNIX_EPOCH);
            (ice.username.unwrap(), ice.credential.unwrap())
        };
        let env_secret = TurnSecret::new("env-secret").unwrap();
        let (user, cred) = made(&from_env);
        assert_eq!(cred, signaling::turn::credential(&env_secret, &user));

        let file = secret_file("file-secret");
        let both = serve_args(
            &[
                &url[..],
                &["--turn-secret-file", file.path().to_str().unwrap()],
            ]
            .concat(),
        )
        .turn(Some("env-secret".into()))
        .unwrap()
        .unwrap();
        let (user, cred) = made(&both);
        let file_secret = TurnSecret::new("file-secret").unwrap();
        assert_eq!(cred, signaling::turn::credential(&file_secret, &user));
    }

    #[test]
    fn half_a_turn_configuration_is_refused_with_a_clear_message() {
        let err = serve_args(&["--turn-url", "turn:127.0.0.1"])
            .turn(None)
            .unwrap_err();
        assert!(format!("{err:#}").contains("--turn-secret-file"), "{err:#}");

        let file = secret_file("s3cret-value");
        let err = serve_args(&["--turn-secret-file", file.path().to_str().unwrap()])
            .turn(None)
            .unwrap_err();
        assert!(format!("{err:#}").contains("no --turn-url"), "{err:#}");
        let err = serve_args(&[])
            .turn(Some("s3cret-value".into()))
            .unwrap_err();
        assert!(format!("{err:#}").contains("no --turn-url"), "{err:#}");
    }

    #[test]
    fn bad_turn_secrets_are_refused_without_showing_them() {
        let url = ["--turn-url", "turn:127.0.0.1"];
        let empty = secret_file(" \n");
        let missing = std::env::temp_dir().join("hoinghi-no-such-turn-secret");
        let big = secret_file(&"s3cret-value".repeat(1_000));
        for (path, why) in [
            (empty.path(), "empty"),
            (missing.as_path(), "cannot read"),
            (big.path(), "larger than"),
        ] {
            let argv = [&url[..], &["--turn-secret-file", path.to_str().unwrap()]].concat();
            let err = format!("{:#}", serve_args(&argv).turn(None).unwrap_err());
            assert!(
                err.contains(why) && err.contains(path.to_str().unwrap()),
                "{err}"
            );
            assert!(!err.contains("s3cret"), "{err}");
        }
        let err = format!(
            "{:#}",
            serve_args(&url).turn(Some("  ".into())).unwrap_err()
        );
        assert!(
            err.contains("HOINGHI_TURN_SECRET") && err.contains("empty"),
            "{err}"
        );
    }

    #[test]
    fn bad_turn_urls_and_lifetimes_are_refused() {
        for argv in [
            &["hoinghi", "--turn-url", "http://turn.example.vn"][..],
            &["hoinghi", "--turn-url", "turn:turn.example.vn:70000"],
            &[
                "hoinghi",
                "--turn-url",
                "turn:turn.example.vn?transport=tls",
            ],
            &["hoinghi", "--turn-url", "turn:"],
            &["hoinghi", "--turn-ttl", "59"],
            &["hoinghi", "--turn-ttl", "604801"],
            &["hoinghi", "--turn-ttl", "-1"],
        ] {
            assert!(Cli::try_parse_from(argv).is_err(), "{argv:?}");
        }
        let err = Cli::try_parse_from(["hoinghi", "--turn-url", "stun:x"]).unwrap_err();
        assert!(
            err.to_string().contains("must start with turn: or turns:"),
            "{err}"
        );
        assert_eq!(serve_args(&["--turn-ttl", "60"]).turn_ttl, 60);
        assert_eq!(serve_args(&["--turn-ttl", "604800"]).turn_ttl, 604_800);
    }
}
