//! `hoinghi serve` as an operator runs it: the built binary on loopback, a fresh data dir,
//! waiting for its `ready:` line, then plain HTTP or HTTPS requests, then SIGTERM.

mod serve_harness;

use serve_harness::{Server, connect, hoinghi, http_get, https_get};

use std::io::{Read, Write};
use std::process::Stdio;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

#[test]
fn plain_http_serves_health_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-tls", "--metrics-listen", "127.0.0.1:0"]);
    assert!(
        server.base.starts_with("http://localhost:"),
        "{}",
        server.base
    );

    // The ports, then `ready:`, then a pointer to `hoinghi links`: no join link in the output,
    // which a service manager keeps in its journal.
    assert!(
        server.line("media-udp").is_some(),
        "{:?}",
        server.before_ready
    );
    assert!(
        server.line("ice-tcp").is_some(),
        "{:?}",
        server.before_ready
    );
    let hint = server
        .after_ready
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a line after ready");
    assert!(hint.contains("hoinghi links test-room"), "{hint}");
    for line in server.before_ready.iter().chain([&hint]) {
        assert!(!line.contains("t="), "a join link printed: {line}");
    }

    let health = http_get(server.port, "/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.body, "ok");
    assert_eq!(health.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(health.header("referrer-policy"), Some("no-referrer"));

    // Metrics on their own listener only, never on the web port.
    assert_eq!(http_get(server.port, "/metrics").status, 404);
    let metrics_url = server
        .line("metrics")
        .expect("a metrics: line before ready:");
    let metrics_port: u16 = metrics_url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{metrics_url}"));
    let metrics = http_get(metrics_port, "/metrics");
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
        .args(["--media-port", "0"])
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
        .args(["--media-port", "0"])
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
    use std::io::BufRead;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let mut child = hoinghi()
        .args([
            "serve",
            "--no-tls",
            "--workers",
            "1",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--media-port", "0", "--log", "info", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    // The port the kernel chose, from the `listening` log line (stdout is closed).
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(at) = line.find("bound=") {
                let addr = line[at + 6..].split_whitespace().next().unwrap_or("");
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a `listening` log line with bound=");
    let mut answer = String::new();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Still serving after writing to the closed stdout (ready line) at start.
    let again = http_get(
        addr.rsplit(':').next().unwrap().parse().unwrap(),
        "/healthz",
    );
    assert_eq!(again.status, 200);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server exited after serving"
    );
    let _ = child.kill();
    let _ = child.wait();
}
