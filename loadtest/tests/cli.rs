//! The command line refuses impossible values with a clear message and a failure status.

use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hoinghi-loadtest"))
        .args(args)
        .output()
        .expect("run hoinghi-loadtest");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn impossible_values_are_refused_clearly() {
    for (args, needle) in [
        (&["fanout", "-n", "0"][..], "--points must be at least 1"),
        (
            &["fanout", "--link", "loss=150"][..],
            "loss cannot exceed 100",
        ),
        (
            &["fanout", "--link", "rate=-1M"][..],
            "rate cannot be negative",
        ),
        (
            &["fanout", "--link", "delay=-5"][..],
            "delay cannot be negative",
        ),
        (&["fanout", "--link", "wifi"][..], "unknown link profile"),
        (
            &["fanout", "--temporal-layers", "4"][..],
            "--temporal-layers must be 1, 2 or 3",
        ),
        (
            &["fanout", "--twcc-interval", "5"][..],
            "--twcc-interval must be between 10 and 1000 ms",
        ),
        (
            &["fanout", "--seconds", "-3"][..],
            "--seconds must be positive",
        ),
        (&["joinstorm", "--spread", "-1"][..], "--spread must be"),
        (
            &["fanout", "--fps", "0"][..],
            "--fps must be between 1 and 120",
        ),
        (&["fanout", "--server", "http://x/ws"][..], "ws:// URL"),
        (
            &["compare", "-n", "0"][..],
            "--points must be between 1 and 1000",
        ),
        (&["limit", "--batch", "0"][..], "--batch must be"),
        (
            &["fanout", "--video-file", "/nonexistent/clip.ivf"][..],
            "--video-file /nonexistent/clip.ivf: cannot read",
        ),
        (
            &["fanout", "--audio-file", "/nonexistent/speech.ogg"][..],
            "--audio-file /nonexistent/speech.ogg: cannot read",
        ),
        (
            &["fanout", "--video-file", "Cargo.toml"][..],
            "not a usable VP8 IVF file",
        ),
        (
            &["fanout", "--audio-file", "Cargo.toml"][..],
            "not a usable Ogg Opus file",
        ),
    ] {
        let (ok, err) = run(args);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn help_lists_the_scenarios() {
    let out = Command::new(env!("CARGO_BIN_EXE_hoinghi-loadtest"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "fanout",
        "townhall",
        "joinstorm",
        "soak",
        "compare",
        "limit",
        "serve",
    ] {
        assert!(text.contains(cmd), "{cmd} missing from --help");
    }
}
