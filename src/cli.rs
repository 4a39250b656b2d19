//! Command line: `hoinghi [serve] [flags]` and `hoinghi links test-room [--json]`.
//!
//! Every flag can also be set through the environment as `HOINGHI_<FLAG>` (for systemd units and
//! containers); a flag given on the command line wins over the environment. On/off flags accept
//! `1/0`, `true/false`, `yes/no`, `on/off` there.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

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
    /// Run the server: HTTPS (web client, /ws signaling, /metrics) and the media workers.
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
    /// The server's data directory (holds hoinghi.db).
    #[arg(long, env = "HOINGHI_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
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
    /// Address and port for HTTPS (or HTTP with --no-tls): the web client, /ws and /metrics.
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

    /// First UDP port for media. Media worker i listens on UDP port (media-port + i); open
    /// media-port .. media-port + workers - 1 in the firewall.
    #[arg(long, env = "HOINGHI_MEDIA_PORT", default_value_t = 40000,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub media_port: u16,

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

    /// Log filter (tracing EnvFilter syntax), e.g. `info`, `debug`, `info,sfu=debug`.
    /// Logs go to stderr.
    #[arg(long, env = "HOINGHI_LOG", default_value = "info")]
    pub log: String,
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
        assert_eq!(cli.serve.media_port, 40000);
        assert!(!cli.serve.conn.no_tls);
        assert_eq!(cli.serve.log, "info");
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
            &["hoinghi", "--media-port", "0"],
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
}
