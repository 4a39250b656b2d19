#!/bin/sh
# Fan-out and join storm against the real `hoinghi serve` (release binary, plain HTTP, one media
# worker, a throwaway data dir): the load generator signs test-room tokens (test-point-1..N) with
# the data dir's secret.key; server CPU and RSS come from /proc/<pid>, counters from /metrics.
#   bench/real-serve.sh                 fanout -n 50 and joinstorm -n 300
# Environment: OUT (bench/results), REAL_FANOUT_N (50), REAL_STORM_N (300, 0: skip),
# HOINGHI (target/release/hoinghi), LOADTEST (target/release/hoinghi-loadtest),
# PORT (18443), MEDIA_PORT (41000).
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
LT=${LOADTEST:-target/release/hoinghi-loadtest}
HN=${HOINGHI:-target/release/hoinghi}
PORT=${PORT:-18443}
MEDIA_PORT=${MEDIA_PORT:-41000}
FANOUT_N=${REAL_FANOUT_N:-50}
STORM_N=${REAL_STORM_N:-300}
mkdir -p "$OUT"
[ -x "$LT" ] && [ -x "$HN" ] || cargo build --release -p hoinghi -p loadtest

cat > "$OUT/real-machine.json" <<JSON
{"cores": $(nproc), "date": "$(date -u +%Y-%m-%dT%H:%MZ)",
 "commit": "$(git rev-parse --short HEAD)", "loadavg": "$(cut -d' ' -f1-3 /proc/loadavg)"}
JSON

DATA=$(mktemp -d)
LOG=$(mktemp)
SPID=
start() {
  RUST_LOG=warn "$HN" serve --no-tls --listen "127.0.0.1:$PORT" --data-dir "$DATA" \
    --public-ip 127.0.0.1 --media-port "$MEDIA_PORT" --workers 1 \
    --metrics-listen 127.0.0.1:0 --trust-loopback > "$LOG" 2>&1 &
  SPID=$!
  i=0
  until grep -q '^ready: ' "$LOG"; do
    i=$((i + 1))
    if [ $i -ge 300 ] || ! kill -0 "$SPID" 2>/dev/null; then cat "$LOG" >&2; exit 1; fi
    sleep 0.1
  done
  # /metrics is served on its own listener only (--metrics-listen), printed before `ready:`.
  METRICS=$(sed -n 's/^metrics: //p' "$LOG" | head -n 1)
}
stop() {
  [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null || true
  SPID=
}
trap 'stop; rm -rf "$DATA" "$LOG"' EXIT INT TERM

WS="ws://127.0.0.1:$PORT/ws"
# A fresh server per run, so each run's RSS and CPU start from an idle process.
start
"$LT" fanout -n "$FANOUT_N" --seconds 20 --server "$WS" --tokens "$DATA" \
  --server-pid "$SPID" --metrics "$METRICS" --progress --json "$OUT/real-fanout-$FANOUT_N.json"
stop
if [ "$STORM_N" -gt 0 ]; then
  start
  "$LT" joinstorm -n "$STORM_N" --spread 10 --seconds 10 --video-kbps 300 --ready-timeout 60 \
    --server "$WS" --tokens "$DATA" --server-pid "$SPID" --metrics "$METRICS" --progress \
    --json "$OUT/real-joinstorm-$STORM_N.json"
  stop
fi
