//! `hoinghi serve`: put the pieces together and run until SIGINT/SIGTERM.
//!
//! Order matters: everything that can fail on bad configuration (data dir, certificate, ports)
//! fails before the `ready:` line, so a supervisor or test that waits for `ready:` knows the
//! server is really listening.

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use room_admin::api::AdminState;
use room_admin::attendance::AttendanceRecorder;
use room_admin::{Db, Directory, JoinAuthorizer, JoinTokens, Secret, accounts, db};
use tokio_util::sync::CancellationToken;

use crate::cli::{ServeArgs, TURN_SECRET_ENV};
use crate::front::{self, FrontDoor, GRACE, limits::ConnLimits};
use crate::{net, tls, web};

/// Descriptors kept out of the HTTP(S) connection cap: media sockets, ICE-TCP, the database,
/// log files.
const RESERVED_FDS: u64 = 256;
/// How long clients are told to wait before re-joining after a restart (they add jitter).
const RESTART_HINT: Duration = Duration::from_secs(3);
/// How long the WebSocket sessions get to say goodbye at shutdown (within the 10 s a service
/// manager allows before SIGKILL, with the HTTP grace after it).
const SESSIONS_GRACE: Duration = Duration::from_secs(3);
/// How long the relays of linked meetings may take to leave their upstream seats at shutdown
/// (they stop together; each waits for its upstream session at most a few seconds).
const RELAYS_GRACE: Duration = Duration::from_secs(6);
/// Connections the metrics listener holds at once (a scraper or two, on a private address).
const METRICS_CONNECTIONS: usize = 16;
/// How often the allocator gives the kernel back the memory freed since (see [`trim_heap`]).
const TRIM_INTERVAL: Duration = Duration::from_secs(30);

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let use_tls = !conn.no_tls;
    let workers = args.workers.map_or_else(default_workers, usize::from);
    let last_port = u32::from(args.media_port) + workers as u32 - 1;
    if last_port > u32::from(u16::MAX) {
        anyhow::bail!(
            "media ports {}..{last_port} go past 65535: lower --media-port or --workers",
            args.media_port
        );
    }

    let turn = args.turn(std::env::var_os(TURN_SECRET_ENV))?;
    let max_connections = connection_budget(raise_open_files_limit());

    let secret = Secret::load_or_create(&conn.data_dir)?;
    let tokens = JoinTokens::new(&secret);
    let database_url = args.database.url(&conn.data_dir)?;
    // Shown with any password masked (`DatabaseUrl`'s Display).
    tracing::info!(database = %database_url, "control plane database");
    let database = Db::connect(&database_url).await?;
    let bootstrap = accounts::bootstrap(&database, db::unix_now()).await?;
    let directory = Arc::new(Directory::load(&database).await?);
    let public_ip = net::effective_public_ip(conn.listen, conn.public_ip, net::detect_public_ip);

    let tls_config = if use_tls {
        let explicit = args.tls_cert.as_deref().zip(args.tls_key.as_deref());
        let material =
            tls::load_or_create(&conn.data_dir, explicit, &[public_ip, conn.listen.ip()])?;
        let fingerprint = material.fingerprint();
        tracing::info!(
            cert = %material.cert_path.display(),
            generated = material.generated,
            "TLS certificate SHA-256 fingerprint {fingerprint}"
        );
        println!("tls-fingerprint-sha256: {fingerprint}");
        let hsts = material.operator;
        let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(material)?);
        Some(front::Tls { acceptor, hsts })
    } else {
        tracing::warn!("TLS is off (--no-tls): for local development and tests only");
        None
    };

    let listener = TcpListener::bind(conn.listen)
        .with_context(|| format!("cannot listen on {} (--listen)", conn.listen))?;
    let bound = listener.local_addr()?;
    let metrics_listener = match args.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on {addr} (--metrics-listen)"))?,
        ),
        None => None,
    };

    let registry = prometheus::Registry::new();
    register_process_metrics(&registry);
    let sfu = sfu::Sfu::start(
        sfu::SfuConfig {
            public_ip,
            bind_ip: net::media_bind_ip(conn.listen),
            base_port: args.media_port,
            workers,
            ice_tcp_port: args.ice_tcp_port(),
        },
        &registry,
    )
    .with_context(|| {
        let tcp = match args.ice_tcp_port() {
            Some(port) => format!(" and ICE-TCP on TCP port {port} (--ice-tcp-port, --no-ice-tcp)"),
            None => String::new(),
        };
        format!(
            "cannot start {workers} media worker(s) on UDP ports {}..{last_port} (--media-port){tcp}",
            args.media_port
        )
    })?;
    // Joins of stored meetings and of the test room go through the same authorizer; every join
    // and leave is recorded for attendance.
    let authorizer = Arc::new(JoinAuthorizer::with_directory(
        tokens.clone(),
        directory.clone(),
    ));
    let recorder = AttendanceRecorder::start(database.clone()).await?;
    // Floor, hands, microphones and roll call are saved after each change, so that a restart
    // resumes every meeting as it was.
    let controls = room_admin::room_controls::ControlsRecorder::start(database.clone()).await?;
    // The upstream seats of linked meetings' relays are granted in front of the control plane.
    let upstream_seats = Arc::new(crate::relays::UpstreamSeats::default());
    let join_authorizer = Arc::new(crate::relays::WithUpstreamSeats {
        seats: upstream_seats.clone(),
        inner: authorizer.clone(),
        directory: Some(directory.clone()),
    });
    let mut signaling = signaling::Signaling::with_observer(
        sfu.clone(),
        join_authorizer,
        recorder.clone(),
        &registry,
    )
    .with_controls_store(controls.clone())
    // Stable across restarts (derived from the data dir's secret): what relay loops are
    // checked against.
    .with_instance_id(secret.instance_id());
    if args.trust_loopback {
        let limits = signaling::AdmissionLimits {
            exempt_loopback: true,
            ..signaling::AdmissionLimits::default()
        };
        tracing::info!("loopback clients held to the server-wide WebSocket limits only");
        signaling = signaling.with_admission(limits);
    }
    if let Some(turn) = turn {
        // The URLs and lifetime only: the secret has no Display and a redacted Debug.
        let urls: Vec<&str> = turn.urls().iter().map(|u| u.as_str()).collect();
        tracing::info!(
            ?urls,
            ttl_s = turn.ttl().as_secs(),
            "TURN on: clients get time-limited credentials"
        );
        signaling = signaling.with_turn(turn);
    }
    let base = net::base_url(use_tls, bound, public_ip);
    // The relay clients of meetings linked to an upstream server (the cascade).
    let relays = Arc::new(crate::relays::Relays::new(
        database.clone(),
        signaling.clone(),
        upstream_seats,
        crate::relays::bind_ip(net::media_bind_ip(conn.listen), public_ip),
    ));
    let admin = AdminState::new(
        database,
        tokens.clone(),
        directory,
        base.clone(),
        use_tls,
        // The panel's view of who is connected, and its disconnects (re-issued links,
        // uninvited points, meetings cancelled or ended): the signaling layer itself.
        Arc::new(signaling.clone()),
    )
    .with_relays(relays.clone());
    // Meetings that reach their planned end are closed for everyone still in them.
    let closer = room_admin::closer::spawn(admin.clone(), room_admin::closer::INTERVAL);
    let app = web::app(
        signaling.router().merge(room_admin::api::router(admin)),
        crate::linktest::router(authorizer),
    );
    let timeout = Duration::from_secs(args.http_timeout);
    let web_door = FrontDoor {
        tls: tls_config,
        limits: ConnLimits::new(args.max_connections_per_ip as usize, max_connections),
        timeout,
        metrics: front::FrontMetrics::new(&registry, "web")?,
    };
    let metrics_door = FrontDoor {
        tls: None,
        limits: ConnLimits::new(METRICS_CONNECTIONS, METRICS_CONNECTIONS),
        timeout,
        metrics: front::FrontMetrics::new(&registry, "metrics")?,
    };

    let shutdown = CancellationToken::new();
    tokio::spawn(forward_signals(shutdown.clone()));
    let trimmer = tokio::spawn(return_free_memory(TRIM_INTERVAL));
    let relays_task = tokio::spawn(relays.run(shutdown.clone()));
    let mut server = web_door.spawn(listener, app, shutdown.clone())?;
    let metrics_url = match metrics_listener {
        Some(l) => {
            let url = format!("http://{}/metrics", l.local_addr()?);
            // Its end is not watched: the web server is the one whose failure stops us.
            metrics_door.spawn(l, web::metrics_app(registry), shutdown.clone())?;
            Some(url)
        }
        None => None,
    };

    tracing::info!(
        %bound,
        %public_ip,
        workers,
        media_port = args.media_port,
        ice_tcp_port = ?sfu.ice_tcp_port(),
        "listening"
    );
    if let Some((user, password)) = bootstrap {
        // stdout only, once: never through tracing, whose output may be kept in log files.
        let line = format!(
            "admin-bootstrap: first start, account {user:?} created with password {password} \
             (shown only now): log in at {base}/admin and change it"
        );
        if writeln!(std::io::stdout().lock(), "{line}").is_err() {
            tracing::warn!("stdout is closed: the bootstrap password could not be shown");
        }
    }
    // A closed stdout (a supervisor that stopped reading, a pipe into `head`) must not stop a
    // server that is serving: say so in the log and go on.
    let ports = Ports {
        media_udp: sfu.media_ports(),
        ice_tcp: sfu.ice_tcp_port(),
        metrics: metrics_url,
    };
    if let Err(e) = print_ready(&base, &ports) {
        tracing::warn!("cannot print the ready line to stdout: {e}");
    }

    // The server task ends on its own only on failure, or when a signal asked it to (and it may
    // finish before this task sees the cancellation: that is still a clean stop).
    let finished = tokio::select! {
        res = &mut server => Some(res),
        () = shutdown.cancelled() => None,
    };
    if shutdown.is_cancelled() {
        // Every WebSocket is told `bye` `server_restarting` (with when to come back) and closed,
        // and every seat is left, whether or not the listener has finished already (upgraded
        // connections are not its to wait for).
        signaling.shutdown(RESTART_HINT, SESSIONS_GRACE).await;
        // Each relay leaves its upstream seat (a few seconds at most each).
        if tokio::time::timeout(RELAYS_GRACE, relays_task)
            .await
            .is_err()
        {
            tracing::warn!("relays still stopping after {RELAYS_GRACE:?}");
        }
    }
    let outcome = match finished {
        Some(res) if !shutdown.is_cancelled() => Err(server_failure(res)),
        Some(res) => stopped(res),
        None => {
            tracing::info!("shutting down");
            match tokio::time::timeout(GRACE + Duration::from_secs(1), server).await {
                Ok(res) => stopped(res),
                Err(_) => {
                    tracing::warn!("connections still open after {GRACE:?}; closing them");
                    Ok(())
                }
            }
        }
    };
    closer.abort();
    trimmer.abort();
    // The departures of the sessions closed above are on disk before the process ends.
    recorder.flush().await;
    // The last change before the signal is on disk before the process ends.
    controls.flush().await;
    sfu.shutdown();
    outcome
}

type ServerResult = Result<std::io::Result<()>, tokio::task::JoinError>;

/// Result of the server task after a requested stop.
fn stopped(res: ServerResult) -> anyhow::Result<()> {
    match res {
        Ok(Ok(())) => Ok(()),
        other => Err(server_failure(other)),
    }
}

fn server_failure(res: ServerResult) -> anyhow::Error {
    match res {
        Ok(Ok(())) => anyhow::anyhow!("HTTP server stopped unexpectedly"),
        Ok(Err(e)) => anyhow::Error::new(e).context("HTTP server failed"),
        Err(e) => anyhow::Error::new(e).context("HTTP server task failed"),
    }
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// CPU, memory, open files of this process, as `process_*` metrics, and the tokio tasks alive.
/// Must run inside the server's runtime.
fn register_process_metrics(registry: &prometheus::Registry) {
    let collector = prometheus::process_collector::ProcessCollector::for_self();
    if let Err(e) = registry.register(Box::new(collector)) {
        tracing::warn!("process metrics unavailable: {e}");
    }
    match AliveTasks::new(tokio::runtime::Handle::current()) {
        Ok(tasks) => {
            if let Err(e) = registry.register(Box::new(tasks)) {
                tracing::warn!("task metric unavailable: {e}");
            }
        }
        Err(e) => tracing::warn!("task metric unavailable: {e}"),
    }
}

/// `hoinghi_tokio_alive_tasks`: tasks spawned on the server's runtime and not yet finished, read
/// at each scrape. A task left behind by every join or leave shows here as steady growth (the soak,
/// `bench/soak.sh`, watches it).
struct AliveTasks {
    handle: tokio::runtime::Handle,
    gauge: prometheus::IntGauge,
}

impl AliveTasks {
    fn new(handle: tokio::runtime::Handle) -> prometheus::Result<Self> {
        let gauge = prometheus::IntGauge::new(
            "hoinghi_tokio_alive_tasks",
            "Tokio tasks alive in the server's runtime",
        )?;
        Ok(Self { handle, gauge })
    }
}

impl prometheus::core::Collector for AliveTasks {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let alive = self.handle.metrics().num_alive_tasks();
        self.gauge.set(i64::try_from(alive).unwrap_or(i64::MAX));
        self.gauge.collect()
    }
}

/// Every `every`, [`trim_heap`] on a blocking thread.
async fn return_free_memory(every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let _ = tokio::task::spawn_blocking(trim_heap).await;
    }
}

/// Gives the kernel back the free pages of every malloc arena. glibc keeps what the threads
/// freed mapped in their arenas: after a peak (joins while the machine was busy, keyframes for a
/// hundred points at once) the heap in use went back down but the RSS stayed at the peak, and
/// every later, higher peak raised it for good (the soak, `bench/soak.sh`: +49 % from minute 10 to
/// minute 24 with 100 points while heaptrack showed the heap in use back at its level).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: glibc's malloc_trim takes each arena's lock itself; any thread may call it.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}

/// Cancels `shutdown` on the first SIGINT (Ctrl-C) or SIGTERM (systemd, docker stop).
async fn forward_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot listen for SIGTERM: {e}");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
    shutdown.cancel();
}

/// Where the media and the metrics ended up (they may have been asked for with port 0).
struct Ports {
    media_udp: Vec<u16>,
    ice_tcp: Option<u16>,
    metrics: Option<String>,
}

/// The ports, then the `ready:` line: the contract with scripts and tests that start the server
/// (they wait for `ready:`, and read `media-udp:`, `ice-tcp:`, `metrics:` before it).
///
/// No join link here: stdout of a service ends up in the journal, and a year-long chair link
/// there is a key for anyone who can read logs. `hoinghi links test-room` prints them on demand.
fn print_ready(base: &str, ports: &Ports) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let udp: Vec<String> = ports.media_udp.iter().map(u16::to_string).collect();
    writeln!(out, "media-udp: {}", udp.join(","))?;
    if let Some(port) = ports.ice_tcp {
        writeln!(out, "ice-tcp: {port}")?;
    }
    if let Some(url) = &ports.metrics {
        writeln!(out, "metrics: {url}")?;
    }
    writeln!(out, "ready: {base}")?;
    writeln!(
        out,
        "test-room links (one chair, three points): hoinghi links test-room, with the same flags"
    )?;
    out.flush()?;
    Ok(())
}

/// Raises the open-files soft limit to the hard limit (systemd gives services 1,024 soft, a
/// flood of connections would use them up) and returns the limit in force.
fn raise_open_files_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::info!(limit, "open files limit");
            limit
        }
        Err(e) => {
            let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
            tracing::warn!(limit, "cannot raise the open files limit: {e}");
            limit
        }
    }
}

/// HTTP(S) connections held at once: the descriptors left after [`RESERVED_FDS`], at least 64.
fn connection_budget(open_files: u64) -> usize {
    open_files.saturating_sub(RESERVED_FDS).clamp(64, 1 << 20) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gauge as a scraper reads it.
    fn alive_tasks(registry: &prometheus::Registry) -> f64 {
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("hoinghi_tokio_alive_tasks "))
            .expect("hoinghi_tokio_alive_tasks is exported");
        line["hoinghi_tokio_alive_tasks ".len()..].parse().unwrap()
    }

    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn memory_freed_by_a_thread_goes_back_to_the_kernel() {
        // 64 MiB in small blocks from a thread of its own (its own arena, as a media worker or a
        // runtime thread has), all freed but the last: the arena cannot shrink from its top.
        let kept = std::thread::spawn(|| {
            let mut blocks: Vec<Vec<u8>> = (0..16_384).map(|i| vec![i as u8; 4096]).collect();
            let last = blocks.pop();
            drop(blocks);
            last
        })
        .join()
        .unwrap();
        let before = rss_kib();
        trim_heap();
        let after = rss_kib();
        assert!(
            before.saturating_sub(after) >= 32 * 1024,
            "RSS {before} KiB before the trim, {after} KiB after"
        );
        drop(kept);
    }

    #[tokio::test]
    async fn alive_tasks_gauge_follows_the_runtime() {
        let registry = prometheus::Registry::new();
        register_process_metrics(&registry);
        let before = alive_tasks(&registry);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = rx.await;
        });
        assert_eq!(alive_tasks(&registry), before + 1.0);
        tx.send(()).unwrap();
        task.await.unwrap();
        assert_eq!(alive_tasks(&registry), before);
    }
}
