#!/bin/sh
# Regenerates docs/benchmarks.md: runs every measurement into bench/results, then renders.
#   bench/run-all.sh            everything (about 25 minutes on 2 cores)
# Environment: FANOUT_NS ("50 150 300"), STORM_N (300), PROFILE_N (20), LAYERS and FLOOR_N (see
# bench/simulcast.sh); REAL_FANOUT_N (50) and
# REAL_STORM_N (300) for the runs against the real `hoinghi serve` (bench/real-serve.sh); RATES,
# TCP_N, TCP_CCS for the ICE-TCP runs on a shaped path (bench/tcp-shaped.sh, needs root); SOAK=1
# adds the hour-long soak (bench/soak.sh, SOAK_N and the other SOAK_* there).
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
LT=${LOADTEST:-target/release/hoinghi-loadtest}
mkdir -p "$OUT"
[ -x "$LT" ] && [ -x target/release/hoinghi ] || cargo build --release -p hoinghi -p loadtest

cat > "$OUT/machine.json" <<JSON
{"cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')",
 "cores": $(nproc), "kernel": "$(uname -r)", "date": "$(date -u +%Y-%m-%dT%H:%MZ)",
 "commit": "$(git rev-parse --short HEAD)", "loadavg": "$(cut -d' ' -f1-3 /proc/loadavg)"}
JSON

"$LT" limit --json > "$OUT/limit.json"
OUT="$OUT" LOADTEST="$LT" bench/compare-janus.sh ${FANOUT_NS:-50 150 300}
# The storm runs against a server in its own process (signaling and media measured from /proc),
# so the 300 client peers do not share a runtime with the server's signaling.
N=${STORM_N:-300}
SERVE_LOG=$(mktemp)
"$LT" serve --listen 127.0.0.1:0 > "$SERVE_LOG" &
SPID=$!
i=0
until grep -q '^metrics ' "$SERVE_LOG"; do i=$((i + 1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done
WS=$(sed -n 's/^ready //p' "$SERVE_LOG")
METRICS=$(sed -n 's/^metrics //p' "$SERVE_LOG")
"$LT" joinstorm -n "$N" --spread 10 --seconds 10 --video-kbps 300 --ready-timeout 60 \
  --server "$WS" --server-pid "$SPID" --metrics "$METRICS" --progress --json "$OUT/joinstorm-$N.json"
kill "$SPID"; wait "$SPID" 2>/dev/null || true; rm -f "$SERVE_LOG"
P=${PROFILE_N:-20}
for profile in fibre adsl bad tcp-only; do
  "$LT" fanout -n "$P" --link "$profile" --seconds 30 --ready-timeout 20 --json "$OUT/link-$profile.json"
done
"$LT" fanout -n "$P" --link flap --seconds 45 --json "$OUT/link-flap.json"
OUT="$OUT" LOADTEST="$LT" PROFILE_N="$P" bench/simulcast.sh
# Redundant audio: adsl and bad without and with --red (bench/red.sh).
OUT="$OUT" LOADTEST="$LT" PROFILE_N="$P" bench/red.sh
"$LT" townhall -n 20 --seconds 20 --json "$OUT/townhall-20.json"
"$LT" soak -n 20 --seconds 60 --churn 2 --json "$OUT/soak-20.json"
# The same loads against the real `hoinghi serve` (signed test-room tokens, /proc and /metrics).
OUT="$OUT" LOADTEST="$LT" bench/real-serve.sh
# The hour-long soak against the real `hoinghi serve` (bench/soak.sh) only when asked: SOAK=1.
if [ "${SOAK:-0}" = 1 ]; then
  OUT="$OUT" LOADTEST="$LT" bench/soak.sh || echo "run-all.sh: the soak found growth (see $OUT)" >&2
fi
# ICE-TCP behind a slow line (kernel-shaped, in a network namespace) beside UDP at the same rate.
if [ "$(id -u)" = 0 ]; then
  OUT="$OUT" LOADTEST="$LT" bench/tcp-shaped.sh
else
  echo "run-all.sh: not root, skipping bench/tcp-shaped.sh (tc, iptables, ip netns)" >&2
fi
python3 bench/render.py "$OUT" docs/benchmarks.md
