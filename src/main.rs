//! # hoinghi
//!
//! The server binary: one process runs the web client, signaling and the media workers.
//!
//! # Layout
//! - `cli`: flags and commands (clap), each flag also an environment variable.
//! - `net`: public IP, media bind address and the base URL of join links.
//! - `tls`: the HTTPS certificate (given, or generated once into the data dir) and rustls setup.
//! - `web`: `/healthz`, the embedded web client, security headers, body limit; `/metrics` for
//!   its own listener.
//! - `front`: the accept loop: connection caps per address, TLS-handshake and header-read
//!   timeouts, header size cap, plain HTTP on the HTTPS port, HSTS.
//! - `linktest`: the pre-join link test, for join-token holders, within byte budgets.
//! - `serve`: `hoinghi serve`, composing sfu + signaling + room-admin; shutdown on signals.
//! - `links`: `hoinghi links test-room`.
//! - `admin_cmd`: `hoinghi admin add <user>` (and a hidden crash-test writer).

mod admin_cmd;
mod cli;
mod front;
mod links;
mod linktest;
mod net;
mod relays;
mod serve;
mod tls;
mod web;

use std::process::ExitCode;

use clap::Parser;
use cli::{AdminCommand, Cli, Command, LinksCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Links {
            which: LinksCommand::TestRoom(args),
        }) => links::test_room(&args),
        Some(Command::Admin {
            which: AdminCommand::Add(args),
        }) => admin_cmd::add(&args),
        Some(Command::Admin {
            which: AdminCommand::StressWrites(args),
        }) => admin_cmd::stress_writes(&args),
        Some(Command::Serve(args)) => serve(args),
        None => serve(cli.serve),
    }
}

fn serve(args: cli::ServeArgs) -> anyhow::Result<()> {
    init_logging(&args.log)?;
    // Every rustls config in this process uses `ring`; installing it as the process default
    // also serves any library that asks for the default provider (none may pull in aws-lc).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hoinghi-io")
        .build()?;
    runtime.block_on(serve::run(args))
}

/// Logs to stderr, so stdout stays for the `ready:` line and links.
fn init_logging(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("invalid --log filter {filter:?}: {e}"))?;
    // Colours only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
    Ok(())
}
