#!/bin/sh
# Issue 14's measurement: a chair (720p fake camera, three simulcast layers) and two points in
# real Chromium on an unshaped loopback for ten minutes; every 10 s, packetsLost and nackCount of
# every stream at every page (tests/browser/seqgaps.mjs, which CI runs for 90 s). The per-sample
# table goes to $OUT/seqgaps.txt. Not part of run-all.sh: it measures correctness, not speed.
# Environment: OUT (bench/results), SECONDS_WATCHED (600), HOINGHI_BIN (target/debug/hoinghi).
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
[ -x "${HOINGHI_BIN:-target/debug/hoinghi}" ] || cargo build --bin hoinghi
[ -d tests/browser/node_modules ] || (cd tests/browser && npm ci)
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ) commit $(git rev-parse --short HEAD) loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
  SEQGAPS_SECONDS=${SECONDS_WATCHED:-600} node tests/browser/seqgaps.mjs
} 2>&1 | tee "$OUT/seqgaps.txt"
