//! The front door: the accept loop of the web port (HTTPS, or HTTP with `--no-tls`) and of the
//! metrics port.
//!
//! Our own loop rather than `axum::serve` or axum-server, because a server facing the internet
//! must bound what a slow or hostile client can hold, and those bound none of it:
//! - connections per client address and in all ([`limits`]), refused at accept;
//! - the TLS handshake, cut after `timeout` (a client that connects and says nothing too);
//! - the request head, cut after `timeout` (hyper's header-read timeout, which also runs while
//!   a kept-alive connection waits for its next request), and at [`MAX_HEADER_BYTES`] with
//!   `431`;
//! - plain HTTP on the HTTPS port gets a plain answer saying to use https ([`https_only`]).
//!
//! HTTP/1.1 only (ALPN offers nothing else, see `tls::server_config`). Every request carries
//! `ConnectInfo<SocketAddr>` as `axum::serve` gave it, for the per-address limits behind.
//!
//! # Layout
//! - `limits`: per-address and global connection counts.
//! - `https_only`: the answer to plain HTTP on the TLS port.
//! - `held`: a socket that carries its global connection permit until it is dropped.

mod held;
pub mod https_only;
pub mod limits;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use held::{Held, Ticket};
use limits::{Admission, ConnLimits, Refusal};

/// How long open connections get to finish after a shutdown signal.
pub const GRACE: Duration = Duration::from_secs(5);
/// Largest request head (request line and headers). Join links carry a token of a few hundred
/// bytes and our cookies are small; 16 KiB is room to spare, and bounds what a client can make
/// us hold before its request is even read.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Largest read buffer of one connection (hyper's default is ~400 KiB).
const MAX_BUF_BYTES: usize = 64 * 1024;
/// `Strict-Transport-Security` with an operator's certificate: a year, this host only (the
/// operator's domain may have other hosts that are not HTTPS).
const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000");

/// What the front door of one listener bounds and how it speaks.
pub struct FrontDoor {
    pub tls: Option<Tls>,
    pub limits: ConnLimits,
    /// For the TLS handshake, and for each request head.
    pub timeout: Duration,
    pub metrics: FrontMetrics,
}

/// TLS on the web port.
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// Send HSTS: only with the operator's certificate. With our self-signed one, a browser that
    /// remembered HSTS would refuse the click-through the points are told to make.
    pub hsts: bool,
}

pub type ServerTask = tokio::task::JoinHandle<std::io::Result<()>>;

impl FrontDoor {
    /// Serves `app` on `listener` until `shutdown`, then gives open connections [`GRACE`].
    pub fn spawn(
        self,
        listener: std::net::TcpListener,
        app: Router,
        shutdown: CancellationToken,
    ) -> std::io::Result<ServerTask> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        Ok(tokio::spawn(
            Arc::new(self).accept_loop(listener, app, shutdown),
        ))
    }

    async fn accept_loop(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        app: Router,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let tracker = TaskTracker::new();
        let mut last_warning: Option<Instant> = None;
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before it was taken:
                    // never a reason to stop serving. Pause so a full table is not spun on, and
                    // say it once in a while, not per attempt.
                    if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!("cannot accept a connection: {e}");
                        last_warning = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match self.limits.admit(peer.ip()) {
                Ok(admission) => {
                    let door = self.clone();
                    let task = door.connection(stream, peer, admission, app.clone(), &shutdown);
                    tracker.spawn(task);
                }
                Err(why) => {
                    self.metrics.refused(why);
                    drop(stream);
                }
            }
        }
        drop(listener);
        tracker.close();
        if tokio::time::timeout(GRACE, tracker.wait()).await.is_err() {
            tracing::warn!("connections still open after {GRACE:?}; closing them");
        }
        Ok(())
    }

    /// One connection from accept to close: TLS (when on), then HTTP/1.1 requests.
    fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        admission: Admission,
        app: Router,
        shutdown: &CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static {
        let shutdown = shutdown.clone();
        async move {
            // The address slot is held until the HTTP part ends (an upgraded WebSocket is
            // signaling's to limit); the global permit goes with the socket to its end.
            let Admission { slot, permit } = admission;
            let ticket = Ticket::new(permit, self.metrics.open_guard());
            let _ = stream.set_nodelay(true);
            match &self.tls {
                None => {
                    self.http(Held::new(stream, ticket), peer, app, shutdown, false)
                        .await
                }
                Some(tls) => {
                    let handshake = tokio::select! {
                        () = shutdown.cancelled() => return,
                        r = tokio::time::timeout(self.timeout, tls.accept(stream)) => r,
                    };
                    match handshake {
                        Ok(Some(stream)) => {
                            let io = Held::new(stream, ticket);
                            self.http(io, peer, app, shutdown, tls.hsts).await;
                        }
                        Ok(None) => {}
                        Err(_) => self.metrics.cut("handshake_timeout"),
                    }
                }
            }
            drop(slot);
        }
    }

    /// HTTP/1.1 on an established stream, with the head size and time bounds; graceful on
    /// shutdown (the request in flight finishes, an idle connection closes).
    async fn http<I>(
        &self,
        io: I,
        peer: SocketAddr,
        app: Router,
        shutdown: CancellationToken,
        hsts: bool,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move {
                let mut res = app.oneshot(req).await?;
                if hsts {
                    res.headers_mut()
                        .insert(header::STRICT_TRANSPORT_SECURITY, HSTS);
                }
                Ok::<_, Infallible>(res)
            }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.timeout)
            .max_header_size(MAX_HEADER_BYTES)
            .max_buf_size(MAX_BUF_BYTES)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            if e.is_timeout() {
                self.metrics.cut("header_timeout");
            }
            // Resets, malformed requests, timeouts: the client's doing, not worth a warning.
            tracing::debug!("HTTP connection from {peer} ended: {e}");
        }
    }
}

impl Tls {
    /// The TLS stream, or `None` when the client was not speaking TLS (answered in plain HTTP)
    /// or the handshake failed.
    async fn accept(
        &self,
        mut stream: TcpStream,
    ) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(1) if first[0] == https_only::TLS_HANDSHAKE => {}
            Ok(1) => {
                https_only::refuse(&mut stream).await;
                return None;
            }
            _ => return None,
        }
        match self.acceptor.accept(stream).await {
            Ok(tls) => Some(tls),
            Err(e) => {
                tracing::debug!("TLS handshake failed: {e}");
                None
            }
        }
    }
}

/// Counters of the front door, in the server's registry.
#[derive(Clone)]
pub struct FrontMetrics {
    refused: prometheus::IntCounterVec,
    cut: prometheus::IntCounterVec,
    open: prometheus::IntGauge,
}

impl FrontMetrics {
    /// Registered in `registry` with `listener` (`web` or `metrics`) as a constant label.
    pub fn new(registry: &prometheus::Registry, listener: &str) -> prometheus::Result<Self> {
        let labels = std::collections::HashMap::from([("listener".to_owned(), listener.into())]);
        let refused = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "hoinghi_http_connections_refused_total",
                "HTTP(S) connections closed at accept: too many from one address, or in all",
            )
            .const_labels(labels.clone()),
            &["reason"],
        )?;
        let cut = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "hoinghi_http_connections_cut_total",
                "HTTP(S) connections closed for a TLS handshake or request head too slow",
            )
            .const_labels(labels.clone()),
            &["reason"],
        )?;
        let open = prometheus::IntGauge::with_opts(
            prometheus::Opts::new(
                "hoinghi_http_connections_open",
                "HTTP(S) connections open (WebSockets included)",
            )
            .const_labels(labels),
        )?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(cut.clone()))?;
        registry.register(Box::new(open.clone()))?;
        Ok(FrontMetrics { refused, cut, open })
    }

    fn refused(&self, why: Refusal) {
        self.refused.with_label_values(&[why.as_str()]).inc();
    }

    fn cut(&self, why: &str) {
        self.cut.with_label_values(&[why]).inc();
    }

    fn open_guard(&self) -> OpenGuard {
        self.open.inc();
        OpenGuard(self.open.clone())
    }
}

/// Counts a connection as open until dropped.
pub struct OpenGuard(prometheus::IntGauge);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
