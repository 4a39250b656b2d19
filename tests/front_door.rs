//! The web port's front door against slow and hostile clients, on the real binary: request heads
//! dripped or never finished, heads over the size cap, more connections from one address than
//! it may hold, TLS handshakes never finished, plain HTTP on the HTTPS port; HSTS only with the
//! operator's certificate; the open-files limit raised at start; the link test only for holders
//! of a join token. Timeouts are set short (`--http-timeout 2`) and the waits for the server's
//! answer are long, so a loaded machine is slow but not wrong.

mod serve_harness;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serve_harness::{Reply, Server, connect, connect_from, exchange, get_over, hoinghi, http_get};

/// How long a test waits for the server to close a connection it must close (the server's own
/// timeout is 2 s here): generous, for a machine with a load average of 20.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// Reads until the server closes (EOF or reset: true) or `within` passes (false). Whatever the
/// server sent before closing is returned in `got`.
fn closed_by_server(stream: &mut TcpStream, within: Duration, got: &mut Vec<u8>) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true, // reset
        }
    }
}

fn no_tls(dir: &std::path::Path, extra: &[&str]) -> Server {
    let mut args = vec!["--no-tls", "--http-timeout", "2"];
    args.extend_from_slice(extra);
    Server::start(dir, &args)
}

#[test]
fn a_request_head_dripped_byte_by_byte_is_cut_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = no_tls(dir.path(), &[]);
    let mut stream = connect(server.port);
    let mut writer = stream.try_clone().unwrap();
    let started = Instant::now();
    // A header byte every 200 ms, for as long as the server lets us: a head that never ends.
    let drip = std::thread::spawn(move || {
        let _ = writer.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n");
        loop {
            if writer.write_all(b"X").is_err() || started.elapsed() > CLOSE_WAIT {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let mut got = Vec::new();
    assert!(
        closed_by_server(&mut stream, CLOSE_WAIT, &mut got),
        "still open after {CLOSE_WAIT:?} of dripping"
    );
    assert!(started.elapsed() >= Duration::from_secs(1), "cut too early");
    drip.join().unwrap();
}

#[test]
fn a_connection_that_never_sends_a_request_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let server = no_tls(dir.path(), &[]);
    let mut stream = connect(server.port);
    let mut got = Vec::new();
    assert!(closed_by_server(&mut stream, CLOSE_WAIT, &mut got));
    // Requests that do come in time are served as before.
    assert_eq!(http_get(server.port, "/healthz").status, 200);
}

#[test]
fn a_request_head_over_the_cap_gets_431() {
    let dir = tempfile::tempdir().unwrap();
    let server = no_tls(dir.path(), &[]);
    let big = "a".repeat(20 * 1024);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\n\r\n");
    let raw = exchange(connect(server.port), request.as_bytes());
    let reply = Reply::parse(&raw).expect("an HTTP answer");
    assert_eq!(reply.status, 431);

    // A head under the cap (8 KiB of headers) is still fine.
    let fine = "a".repeat(8 * 1024);
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Fine: {fine}\r\nConnection: close\r\n\r\n"
    );
    let reply = Reply::parse(&exchange(connect(server.port), request.as_bytes())).unwrap();
    assert_eq!(reply.status, 200);
}

#[test]
fn one_address_over_its_cap_is_refused_while_another_is_served() {
    let dir = tempfile::tempdir().unwrap();
    // Held connections must outlive the test's checks: a long head timeout here.
    let server = Server::start(
        dir.path(),
        &[
            "--no-tls",
            "--http-timeout",
            "120",
            "--max-connections-per-ip",
            "4",
        ],
    );
    let held: Vec<TcpStream> = (0..4)
        .map(|_| connect_from("127.0.0.1", server.port).unwrap())
        .collect();
    // The fifth from the same address is closed without an answer.
    let mut extra = connect_from("127.0.0.1", server.port).unwrap();
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut got = Vec::new();
    assert!(closed_by_server(&mut extra, CLOSE_WAIT, &mut got));
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));

    // Another address is served.
    let other = connect_from("127.0.0.2", server.port).expect("bind 127.0.0.2");
    assert_eq!(get_over(other, "/healthz").status, 200);

    // A held connection that closes gives its place back.
    drop(held);
    let deadline = Instant::now() + CLOSE_WAIT;
    loop {
        let stream = connect_from("127.0.0.1", server.port).unwrap();
        let raw = exchange(
            stream,
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        if Reply::parse(&raw).is_some_and(|r| r.status == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the address never got its places back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_tls_handshake_never_finished_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--http-timeout", "2"]);
    // A handshake record header promising 512 bytes that never come.
    let mut half = connect(server.port);
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
    let mut got = Vec::new();
    assert!(closed_by_server(&mut half, CLOSE_WAIT, &mut got));
    // And a client that connects and says nothing at all.
    let mut silent = connect(server.port);
    assert!(closed_by_server(&mut silent, CLOSE_WAIT, &mut got));
}

#[test]
fn plain_http_on_the_https_port_is_told_to_use_https() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let reply = get_over(connect(server.port), "/healthz");
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("https://"), "{}", reply.body);
    assert!(reply.body.contains("HTTPS"), "{}", reply.body);
}

#[test]
fn hsts_is_sent_with_the_operators_certificate_only() {
    let dir = tempfile::tempdir().unwrap();
    let generated = Server::start(dir.path(), &[]);
    let cert_path = dir.path().join("tls/cert.pem");
    let cert = CertificateDer::from_pem_file(&cert_path).unwrap();
    let reply = serve_harness::https_get(generated.port, cert.clone(), "/healthz");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("strict-transport-security"), None);
    drop(generated);

    // The same certificate given as the operator's: now browsers are told to stay on HTTPS.
    let given = tempfile::tempdir().unwrap();
    let (c, k) = (given.path().join("c.pem"), given.path().join("k.pem"));
    std::fs::copy(&cert_path, &c).unwrap();
    std::fs::copy(dir.path().join("tls/key.pem"), &k).unwrap();
    let operator = Server::start(
        dir.path(),
        &[
            "--tls-cert",
            c.to_str().unwrap(),
            "--tls-key",
            k.to_str().unwrap(),
        ],
    );
    let reply = serve_harness::https_get(operator.port, cert, "/healthz");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("strict-transport-security"),
        Some("max-age=31536000")
    );
}

#[test]
fn the_open_files_soft_limit_is_raised_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = hoinghi();
    cmd.args([
        "serve",
        "--no-tls",
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "1",
    ])
    .args([
        "--media-port",
        "0",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls (getrlimit/setrlimit) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The soft limit systemd gives a service, under a higher hard limit.
            lim.rlim_cur = 256.min(lim.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("ready: ") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(n > 0, "the server exited before ready");
    }
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect::<Vec<_>>();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        open_files[0], open_files[1],
        "soft limit not raised: {limits}"
    );
    assert_ne!(open_files[0], "256", "{limits}");
}

#[test]
fn the_link_test_needs_a_join_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = no_tls(dir.path(), &[]);
    let anonymous = http_get(server.port, "/api/linktest/download?bytes=1000");
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.body.contains("\"error\""), "{}", anonymous.body);

    let token = loadtest::scenario::mint_test_room_token(dir.path(), false, 0).unwrap();
    let request = format!(
        "GET /api/linktest/download?bytes=1000 HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    let reply = Reply::parse(&exchange(connect(server.port), request.as_bytes())).unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some("1000"));
}
