#!/usr/bin/env bash
# Runs every test of the project, as CI does (.ci/run calls this script):
# formatting, lints, build, Rust tests, then the browser tests in real Chromium.
# On a fresh Debian machine it first installs what the tests need (Chromium, coturn for the TURN
# test, PostgreSQL for the control plane's tests on it, the browser tests' npm packages); anything
# already there is left as is.
set -euo pipefail
cd "$(dirname "$0")"

# Root needs no sudo (and CI containers often have none).
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

step() { printf '\n== %s\n' "$*"; }

if [ -f tests/browser/run.mjs ] && [ ! -x /usr/bin/chromium ]; then
  step "installing chromium (browser test)"
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
if [ -f tests/browser/turn.mjs ] && [ ! -x /usr/bin/turnserver ]; then
  step "installing coturn (TURN browser test)"
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y coturn
  # The test runs its own turnserver on a free loopback port; the package's system service
  # would listen on 3478 on every interface of a developer's machine.
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now coturn || true
  fi
fi
if { [ -f tests/browser/icetcp.mjs ] || [ -f tests/browser/red.mjs ] || [ -f tests/browser/resume.mjs ]; } && ! command -v iptables >/dev/null 2>&1 \
  && [ ! -x /usr/sbin/iptables ]; then
  step "installing iptables (ICE-TCP browser test drops UDP on loopback)"
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y iptables
fi
if [ -f tests/browser/constrained.mjs ] && ! command -v tc >/dev/null 2>&1 && [ ! -x /usr/sbin/tc ]; then
  step "installing iproute2 (constrained-link browser test shapes loopback with tc)"
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y iproute2
fi
if [ -x tests/pg-cluster.sh ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  step "installing postgresql (the control plane's tests on PostgreSQL)"
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
fi
if [ -f tests/browser/package-lock.json ]; then
  step "npm ci (tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund)
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "vendored crates = their crates.io release + vendor/patches/*.diff"
vendor/check-patches.sh

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build"
cargo build --workspace --all-targets

# The control plane's PostgreSQL tests run against a cluster of their own, on a Unix socket in a
# temporary directory (no TCP port to race for), stopped and deleted however this script ends.
# Always set, so CI never skips them (they say so loudly when the variable is missing).
step "PostgreSQL cluster for the control plane tests (tests/pg-cluster.sh)"
PG_DIR=$(mktemp -d)
trap 'tests/pg-cluster.sh stop "$PG_DIR" || true; rm -rf "$PG_DIR"' EXIT
HOINGHI_TEST_POSTGRES_URL=$(tests/pg-cluster.sh start "$PG_DIR")
export HOINGHI_TEST_POSTGRES_URL
echo "$HOINGHI_TEST_POSTGRES_URL"

step "Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace
else
  cargo test --workspace
fi

# The same store tests once more with PostgreSQL under them: room-admin's own (unit, lifecycle,
# trust) and the admin API suites, each test in a fresh database (room_admin::db::testing).
step "control plane tests again, on PostgreSQL"
if cargo nextest --version >/dev/null 2>&1; then
  HOINGHI_TEST_DATABASE=postgres cargo nextest run --workspace \
    -E 'package(room-admin) | binary(admin_api) | binary(admin_room)'
else
  HOINGHI_TEST_DATABASE=postgres cargo test -p room-admin
  HOINGHI_TEST_DATABASE=postgres cargo test --test admin_api --test admin_room
fi

# Not workspace members (patched in through [patch.crates-io]), so --workspace leaves them out.
step "vendored crates' own unit tests (rtc, rtc-ice)"
cargo test -p rtc -p rtc-ice --lib

# Uses target/debug/hoinghi, built above.
if [ -f tests/browser/run.mjs ]; then
  step "browser test (Chromium)"
  node tests/browser/run.mjs
fi
if [ -f tests/browser/controls.mjs ]; then
  step "meeting controls browser test (Chromium)"
  node tests/browser/controls.mjs
fi
if [ -f tests/browser/early.mjs ]; then
  step "early arrival browser test: countdown, then the kiosk joins by itself (Chromium)"
  node tests/browser/early.mjs
fi
if [ -f tests/browser/admin.mjs ]; then
  step "admin panel browser test (Chromium)"
  node tests/browser/admin.mjs
fi
if [ -f tests/browser/screens.mjs ]; then
  step "chair, hall and IT staff screens browser test (120 points, Chromium)"
  node tests/browser/screens.mjs
fi
if [ -f tests/browser/chairwalk.mjs ]; then
  step "chair walks its 120-point grid twice while a point re-joins 30 times: SDP bounded, every tile decodes (Chromium)"
  node tests/browser/chairwalk.mjs
fi
if [ -f tests/browser/cascade.mjs ]; then
  step "cascade browser test: two servers, the province chair's upward panel, a commune's hand and the floor passed up (Chromium)"
  node tests/browser/cascade.mjs
fi
if [ -f tests/browser/simulcast.mjs ]; then
  step "simulcast layer routing browser test (Chromium)"
  node tests/browser/simulcast.mjs
fi
if [ -f tests/browser/seqgaps.mjs ]; then
  step "no sequence gap on a clean line browser test (Chromium, 90 s)"
  node tests/browser/seqgaps.mjs
fi
if [ -f tests/browser/turn.mjs ]; then
  step "TURN relay browser test (coturn, Chromium)"
  node tests/browser/turn.mjs
fi
if [ -f tests/browser/icetcp.mjs ]; then
  step "ICE-TCP browser test (UDP dropped by iptables, Chromium)"
  # The firewall rule needs root; the test removes it on every exit path.
  $SUDO env PATH="$PATH:/usr/sbin:/sbin" node tests/browser/icetcp.mjs
fi
if [ -f tests/browser/resume.mjs ]; then
  step "session resume and a 10 s media line cut browser test (UDP dropped by iptables, Chromium)"
  $SUDO env PATH="$PATH:/usr/sbin:/sbin" node tests/browser/resume.mjs
fi
if [ -f tests/browser/red.mjs ]; then
  step "redundant audio browser test (10 % loss by iptables, Chromium)"
  $SUDO env PATH="$PATH:/usr/sbin:/sbin" node tests/browser/red.mjs
fi
if [ -f tests/browser/constrained.mjs ]; then
  step "constrained downlink browser test (400 kbit/s by tc on loopback, Chromium)"
  $SUDO env PATH="$PATH:/usr/sbin:/sbin" node tests/browser/constrained.mjs
fi
