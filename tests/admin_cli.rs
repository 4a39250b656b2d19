//! The admin side of the binary: `hoinghi admin add`, the one-time bootstrap password, the admin
//! panel page and the API's JSON answer to an oversized body on the real server.

mod common;

use common::hoinghi;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use room_admin::{Db, accounts};

fn admin_add(dir: &Path, user: &str, role: &str, password: &str) -> std::process::Output {
    let mut child = hoinghi()
        .args(["admin", "add", user, "--role", role, "--data-dir"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may refuse a bad user name before reading stdin: a broken pipe is fine.
    let _ = writeln!(child.stdin.take().unwrap(), "{password}");
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn admin_add_reads_the_password_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = admin_add(dir.path(), "it.backan", "operator", "mật khẩu rất dài");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created"));
    let db = Db::open_in(dir.path()).await.unwrap();
    let a = accounts::get(&db, "it.backan").await.unwrap();
    assert_eq!(a.role, "operator");
    assert!(accounts::verify_password(
        &a.password_hash,
        "mật khẩu rất dài"
    ));
    db.close().await;

    // Again: a new password for the same account.
    let out = admin_add(dir.path(), "it.backan", "operator", "another password");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("changed"));
    let db = Db::open_in(dir.path()).await.unwrap();
    let a = accounts::get(&db, "it.backan").await.unwrap();
    assert!(accounts::verify_password(
        &a.password_hash,
        "another password"
    ));
    db.close().await;

    // Refused: short password, bad user name; nothing is created.
    let out = admin_add(dir.path(), "x2", "admin", "short");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("characters"));
    let out = admin_add(dir.path(), "Bad Name", "admin", "long enough password");
    assert!(!out.status.success());
    let db = Db::open_in(dir.path()).await.unwrap();
    assert_eq!(accounts::list(&db).await.unwrap().len(), 1);
}

struct Server {
    child: Child,
    lines: Vec<String>,
    port: u16,
    stderr: std::thread::JoinHandle<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(clippy::zombie_processes)] // waited for in `stop` or `Drop`
fn start(dir: &Path) -> Server {
    let mut child = hoinghi()
        .args([
            "serve",
            "--no-tls",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
        ])
        .args(["--media-port", "0", "--data-dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let (tx, rx) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        // Read to the end even after `start` stopped listening: a reader that goes away closes
        // the pipe, and the server's later output would then hit a broken pipe.
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a ready line");
        lines.push(line.clone());
        if let Some(base) = line.strip_prefix("ready: ") {
            let port = base.rsplit(':').next().unwrap().parse().unwrap();
            return Server {
                child,
                lines,
                port,
                stderr,
            };
        }
    }
}

impl Server {
    fn stop(mut self) -> String {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
        let (tx, rx) = mpsc::channel();
        let handle = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
        std::thread::spawn(move || tx.send(handle.join().unwrap()));
        rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default()
    }

    fn request(&self, raw: &[u8]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(raw);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[test]
fn bootstrap_password_is_printed_once_and_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path());
    let line = first
        .lines
        .iter()
        .find(|l| l.starts_with("admin-bootstrap: "))
        .expect("bootstrap line before ready")
        .clone();
    let password = line
        .split("password ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(password.len(), 20);

    // The admin panel page is served, with its policies.
    let page =
        first.request(b"GET /admin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.to_lowercase().contains("content-security-policy"));

    // Over the server's 1 MiB body limit, the API answers with its JSON error (from the
    // announced length, before reading the body).
    let raw = format!(
        "POST /api/v1/points/import HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        2 << 20
    );
    let answer = first.request(raw.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"too_large\""), "{answer}");

    let logs = first.stop();
    assert!(!logs.contains(&password), "the password reached the logs");

    let second = start(dir.path());
    assert!(
        !second
            .lines
            .iter()
            .any(|l| l.starts_with("admin-bootstrap")),
        "{:?}",
        second.lines
    );
    second.stop();
}
