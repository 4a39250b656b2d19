//! `hoinghi serve` as an operator runs it: the built binary on loopback, a fresh data dir,
//! waiting for its `ready:` line, then plain HTTP or HTTPS requests, then SIGTERM.

mod common;

use common::{free_udp_port, hoinghi};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server; killed on drop so a failing test leaves no process behind.
struct Server {
    child: Child,
    /// Every stdout line up to and including `ready:`.
    before_ready: Vec<String>,
    /// What followed the `ready:` line (the test-room links).
    after_ready: Vec<String>,
    /// `scheme://host:port` from the `ready:` line.
    base: String,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let media_port = free_udp_port();
        let mut cmd = hoinghi();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"])
            .args(["--media-port", &media_port.to_string()])
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

        let mut server = Server {
            child,
            before_ready: Vec::new(),
            after_ready: Vec::new(),
            base: String::new(),
            port: 0,
            stderr,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    server.before_ready.push(line.clone());
                    if let Some(base) = line.strip_prefix("ready: ") {
                        server.base = base.to_owned();
                        break;
                    }
                }
                Err(_) => panic!(
                    "no `ready:` line within {READY_TIMEOUT:?}; stdout: {:?}; stderr:\n{}",
                    server.before_ready,
                    server.stderr.lock().unwrap()
                ),
            }
        }
        // The four test-room links are printed right after `ready:`.
        for _ in 0..4 {
            let line = rx.recv_timeout(IO_TIMEOUT).expect("a test-room link line");
            server.after_ready.push(line);
        }
        server.port = server
            .base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in ready line {:?}", server.base));
        server
    }

    fn fingerprint_line(&self) -> &str {
        self.before_ready
            .iter()
            .find_map(|l| l.strip_prefix("tls-fingerprint-sha256: "))
            .expect("fingerprint printed before ready")
    }

    /// SIGTERM, then the exit status (within a timeout).
    fn terminate(mut self) -> ExitStatus {
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
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 GET with `Connection: close` over any stream; no client library needed.
fn get_over(mut stream: impl Read + Write, path: &str) -> Reply {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    stream.flush().unwrap();
    let mut raw = Vec::new();
    // A TLS peer closing without close_notify is an error for rustls; what was read is kept.
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head and body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

fn http_get(port: u16, path: &str) -> Reply {
    get_over(connect(port), path)
}

/// HTTPS GET trusting only `cert` (the server's self-signed certificate) for `localhost`.
fn https_get(port: u16, cert: CertificateDer<'static>, path: &str) -> Reply {
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
    get_over(rustls::StreamOwned::new(conn, connect(port)), path)
}

#[test]
fn plain_http_serves_health_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-tls"]);
    assert!(
        server.base.starts_with("http://localhost:"),
        "{}",
        server.base
    );

    let labels: Vec<&str> = server
        .after_ready
        .iter()
        .map(|l| l.split_once(": ").expect("label: link").0)
        .collect();
    assert_eq!(
        labels,
        [
            "test-room chair",
            "test-room point-1",
            "test-room point-2",
            "test-room point-3"
        ]
    );
    for line in &server.after_ready {
        let link = line.rsplit(' ').next().unwrap();
        assert!(
            link.starts_with(&format!("{}/join?t=", server.base)),
            "{line}"
        );
    }

    let health = http_get(server.port, "/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.body, "ok");
    assert_eq!(health.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(health.header("referrer-policy"), Some("no-referrer"));

    let metrics = http_get(server.port, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        metrics.headers
    );
    assert!(
        metrics.body.contains("process_resident_memory_bytes"),
        "process metrics missing:\n{}",
        metrics.body
    );

    assert_eq!(http_get(server.port, "/no-such-file.js").status, 404);

    // The secret was made with owner-only permissions.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("secret.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // No TLS material is made when TLS is off.
    assert!(!dir.path().join("tls").exists());

    let status = server.terminate();
    assert!(status.success(), "exit after SIGTERM: {status}");
}

#[test]
fn tls_certificate_is_made_once_and_its_fingerprint_printed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    assert!(
        server.base.starts_with("https://localhost:"),
        "{}",
        server.base
    );

    let cert_path = dir.path().join("tls/cert.pem");
    assert!(cert_path.is_file());
    assert!(dir.path().join("tls/key.pem").is_file());
    let cert = CertificateDer::from_pem_file(&cert_path).expect("a PEM certificate");
    let expected: Vec<String> = Sha256::digest(&cert)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(server.fingerprint_line(), expected.join(":"));

    // Served over TLS with that very certificate, valid for `localhost`.
    let health = https_get(server.port, cert.clone(), "/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.body, "ok");
    // And not over plain HTTP.
    let mut plain = connect(server.port);
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("ok"));

    let first_fingerprint = server.fingerprint_line().to_owned();
    let pem_before = std::fs::read(&cert_path).unwrap();
    assert!(server.terminate().success());

    // A second start reuses the certificate: same file, same fingerprint.
    let again = Server::start(dir.path(), &[]);
    assert_eq!(again.fingerprint_line(), first_fingerprint);
    assert_eq!(std::fs::read(&cert_path).unwrap(), pem_before);
    assert_eq!(https_get(again.port, cert, "/healthz").status, 200);
}

#[test]
fn bad_certificate_fails_before_ready_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let out = hoinghi()
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"])
        .args(["--media-port", &free_udp_port().to_string()])
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args(["--tls-cert", missing.to_str().unwrap()])
        .args(["--tls-key", missing.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains("ready:"), "{stdout}");
    assert!(stderr.contains("missing.pem"), "{stderr}");
}

#[test]
fn listen_address_in_use_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = hoinghi()
        .args(["serve", "--no-tls", "--listen", &addr, "--workers", "1"])
        .args(["--media-port", &free_udp_port().to_string()])
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

/// A supervisor that stops reading stdout must not stop the server: here the pipe is closed
/// before the server writes anything (bootstrap password, ready line, links), and it must still
/// come up and serve.
#[test]
fn server_survives_its_stdout_being_closed() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let free = |udp: bool| -> u16 {
        if udp {
            std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        } else {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        }
    };
    let (port, media) = (free(false), free(true));
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoinghi"))
        .args(["serve", "--no-tls", "--workers", "1", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--media-port")
        .arg(media.to_string())
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    // Wait for the listener (a readiness poll; the assertion is on the answer, not the time).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answer = String::new();
    while Instant::now() < deadline {
        assert!(child.try_wait().unwrap().is_none(), "the server exited");
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            s.read_to_string(&mut answer).unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server exited after serving"
    );
    let _ = child.kill();
    let _ = child.wait();
}
