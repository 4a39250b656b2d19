//! `hoinghi serve` as an operator runs it, for the tests that need the real binary and its real
//! front door: a fresh data dir, every port chosen by the kernel (port 0), the `ready:` line
//! waited for, then raw HTTP or HTTPS over std sockets (no client library hiding what was sent).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};

pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The `hoinghi` binary with no `HOINGHI_*` variable inherited from whoever runs the tests.
pub fn hoinghi() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoinghi"));
    for (key, _) in std::env::vars() {
        if key.starts_with("HOINGHI_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A running server; killed on drop so a failing test leaves no process behind.
pub struct Server {
    pub child: Child,
    /// Every stdout line up to and including `ready:`.
    pub before_ready: Vec<String>,
    /// Lines printed after `ready:`, as they come.
    pub after_ready: mpsc::Receiver<String>,
    /// `scheme://host:port` from the `ready:` line.
    pub base: String,
    pub port: u16,
    pub stderr: Arc<Mutex<String>>,
}

impl Server {
    /// `hoinghi serve` on 127.0.0.1, one worker, every port 0, with `extra` flags.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut cmd = hoinghi();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"])
            .args(["--media-port", "0"])
            .args(["--data-dir", data_dir.to_str().unwrap()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start hoinghi");

        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            // Read to the end even when nobody listens any more: closing the pipe early would
            // make the server's later output hit a broken pipe.
            for line in out.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });

        let mut before_ready = Vec::new();
        let deadline = Instant::now() + READY_TIMEOUT;
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    before_ready.push(line.clone());
                    if let Some(base) = line.strip_prefix("ready: ") {
                        break base.to_owned();
                    }
                }
                Err(_) => panic!(
                    "no `ready:` line within {READY_TIMEOUT:?}; stdout: {before_ready:?}; \
                     stderr:\n{}",
                    stderr.lock().unwrap()
                ),
            }
        };
        let port = base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in ready line {base:?}"));
        Server {
            child,
            before_ready,
            after_ready: rx,
            base,
            port,
            stderr,
        }
    }

    /// The value of the `name: value` line printed before `ready:`.
    pub fn line(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}: ");
        self.before_ready
            .iter()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
    }

    pub fn fingerprint_line(&self) -> &str {
        self.line("tls-fingerprint-sha256")
            .expect("fingerprint printed before ready")
    }

    /// SIGTERM, then the exit status (within a timeout).
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child's pid, which is still running or a zombie.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM; stderr:\n{}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status line, headers (lower-case names) and body of a response read to EOF.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parses a whole response; `None` when `raw` is not one.
    pub fn parse(raw: &[u8]) -> Option<Reply> {
        let text = String::from_utf8_lossy(raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.lines();
        let status = lines
            .next()
            .filter(|l| l.starts_with("HTTP/1."))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Some(Reply {
            status,
            headers,
            body: body.to_owned(),
        })
    }
}

/// Sends `request` as is over any stream and reads the answer to EOF.
pub fn exchange(mut stream: impl Read + Write, request: &[u8]) -> Vec<u8> {
    stream.write_all(request).unwrap();
    stream.flush().unwrap();
    let mut raw = Vec::new();
    // A TLS peer closing without close_notify, or a reset: what was read is kept.
    let _ = stream.read_to_end(&mut raw);
    raw
}

/// One HTTP/1.1 GET with `Connection: close` over any stream; no client library needed.
pub fn get_over(stream: impl Read + Write, path: &str) -> Reply {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let raw = exchange(stream, request.as_bytes());
    Reply::parse(&raw)
        .unwrap_or_else(|| panic!("not an HTTP response: {:?}", String::from_utf8_lossy(&raw)))
}

pub fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// A TCP connection to 127.0.0.1:`port` from the local address `from` (any loopback address:
/// all of 127/8 is this machine), with a read timeout.
pub fn connect_from(from: &str, port: u16) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let local: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into())?;
    let remote: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    socket.connect(&remote.into())?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

pub fn http_get(port: u16, path: &str) -> Reply {
    get_over(connect(port), path)
}

/// A rustls client stream over `tcp` trusting only `cert`, for `localhost`.
pub fn tls_over(
    tcp: TcpStream,
    cert: CertificateDer<'static>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// HTTPS GET trusting only `cert` (the server's certificate) for `localhost`.
pub fn https_get(port: u16, cert: CertificateDer<'static>, path: &str) -> Reply {
    get_over(tls_over(connect(port), cert), path)
}

/// One HTTP/1.1 `POST` with a JSON body (and the session's cookie and CSRF token when given).
pub fn post(port: u16, path: &str, session: Option<&(String, String)>, body: &Value) -> Reply {
    request(port, "POST", path, session, body)
}

/// One HTTP/1.1 request with a JSON body (and the session's cookie and CSRF token when given).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    session: Option<&(String, String)>,
    body: &Value,
) -> Reply {
    let body = body.to_string();
    let auth = session.map_or(String::new(), |(cookie, csrf)| {
        format!("Cookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\n")
    });
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{auth}Connection: close\r\n\r\n{body}",
        body.len()
    );
    Reply::parse(&exchange(connect(port), request.as_bytes())).expect("an HTTP answer")
}

/// Logs in: the session cookie (`name=value`) and the CSRF token.
pub fn login(port: u16, user: &str, password: &str) -> ((String, String), Value) {
    let reply = post(
        port,
        "/api/v1/auth/login",
        None,
        &json!({"username": user, "password": password}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let cookie = reply
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let me: Value = serde_json::from_str(&reply.body).unwrap();
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();
    ((cookie, csrf), me)
}

pub fn bootstrap_password(server: &Server) -> String {
    let line = server.line("admin-bootstrap").expect("a bootstrap line");
    line.split("password ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .to_owned()
}

/// The bootstrap account's session after its first login, which may only change the password
/// (to `new_password`) and ends there.
pub fn admin_session(server: &Server, new_password: &str) -> (String, String) {
    let password = bootstrap_password(server);
    let (session, me) = login(server.port, "admin", &password);
    assert_eq!(me["must_change_password"], true);
    let changed = post(
        server.port,
        "/api/v1/auth/password",
        Some(&session),
        &json!({"current_password": password, "new_password": new_password}),
    );
    assert!(changed.status < 300, "{} {}", changed.status, changed.body);
    login(server.port, "admin", new_password).0
}
