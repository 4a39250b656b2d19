#!/bin/sh
# Soak: a meeting of SOAK_N points for SOAK_MINUTES minutes against the release `hoinghi serve`
# (plain HTTP, throwaway data dir, every port picked by the kernel). `hoinghi-loadtest soak`: the
# chair publishes VP8 video and Opus audio, the points subscribe, and every SOAK_CHURN seconds the
# oldest point leaves and a new one joins. From the first second every point receives media
# (minute 0), once a minute: the server's RSS and threads (/proc/PID/status), open descriptors
# (/proc/PID/fd), live tokio tasks (`hoinghi_tokio_alive_tasks`), live peer connections (sum of
# `hoinghi_peer_connections`), participants and open WebSockets, from /metrics.
#   bench/soak.sh          100 points, 60 minutes, growth measured from minute 10
# Writes $OUT/soak-$SOAK_N[-$SOAK_TAG].csv (one row a minute), .json (the load generator's report),
# -summary.txt (each figure at minute 0, SOAK_WARMUP and SOAK_MINUTES, the growth from
# SOAK_WARMUP, whether it is within SOAK_LIMIT %, and the load generator's table). Exit 1 if a
# figure grew beyond it.
# Environment: OUT (bench/results), SOAK_N (100), SOAK_MINUTES (60), SOAK_WARMUP (10),
# SOAK_CHURN (2), SOAK_LIMIT (5), SOAK_WORKERS (1), SOAK_TAG (none), SOAK_BUILD (the commit
# checked out: what the binary was built from, when built elsewhere), SOAK_TAIL (60: seconds the load runs past
# the last sample), HOINGHI (target/release/hoinghi),
# LOADTEST (target/release/hoinghi-loadtest).
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
LT=${LOADTEST:-target/release/hoinghi-loadtest}
HN=${HOINGHI:-target/release/hoinghi}
N=${SOAK_N:-100}
MINUTES=${SOAK_MINUTES:-60}
WARMUP=${SOAK_WARMUP:-10}
CHURN=${SOAK_CHURN:-2}
LIMIT=${SOAK_LIMIT:-5}
WORKERS=${SOAK_WORKERS:-1}
TAIL=${SOAK_TAIL:-60}
mkdir -p "$OUT"
[ -x "$LT" ] && [ -x "$HN" ] || cargo build --release -p hoinghi -p loadtest

NAME="soak-$N${SOAK_TAG:+-$SOAK_TAG}"
# What was measured: the binary's build, given by whoever built it elsewhere, else this checkout.
BUILD=${SOAK_BUILD:-$(git rev-parse --short HEAD)}
CSV="$OUT/$NAME.csv"
JSON="$OUT/$NAME.json"
SUMMARY="$OUT/$NAME-summary.txt"
DATA=$(mktemp -d)
SLOG=$(mktemp)
LLOG=$(mktemp)
SPID=
LPID=
cleanup() {
  [ -n "$LPID" ] && kill "$LPID" 2>/dev/null || true
  [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null || true
  rm -rf "$DATA" "$SLOG" "$LLOG"
}
trap cleanup EXIT INT TERM

RUST_LOG=warn "$HN" serve --no-tls --listen 127.0.0.1:0 --data-dir "$DATA" \
  --public-ip 127.0.0.1 --media-port 0 --ice-tcp-port 0 --workers "$WORKERS" \
  --metrics-listen 127.0.0.1:0 --trust-loopback > "$SLOG" 2>&1 &
SPID=$!
i=0
until grep -q '^ready: ' "$SLOG"; do
  i=$((i + 1))
  if [ $i -ge 600 ] || ! kill -0 "$SPID" 2>/dev/null; then cat "$SLOG" >&2; exit 1; fi
  sleep 0.1
done
BASE=$(sed -n 's/^ready: //p' "$SLOG" | head -n 1)
METRICS=$(sed -n 's/^metrics: //p' "$SLOG" | head -n 1)
# `ready: http://localhost:PORT`: the port, on the address the server listens on.
PORT=${BASE##*:}
PORT=${PORT%%/*}
WS="ws://127.0.0.1:$PORT/ws"

# Metric values summed over their label sets (the per-worker gauges), from one scrape.
metric() {
  awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF; found = 1 }
    END { if (found) printf "%d", s; else printf "NA" }' "$2"
}
SCRAPE=$(mktemp)
sample() {
  curl -sf --max-time 20 "$METRICS" > "$SCRAPE" || : > "$SCRAPE"
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SPID/status")
  threads=$(awk '/^Threads:/ { print $2 }' "/proc/$SPID/status")
  fds=$(ls "/proc/$SPID/fd" | wc -l)
  echo "$1,$(date -u +%Y-%m-%dT%H:%M:%SZ),$rss,$fds,$(metric hoinghi_tokio_alive_tasks "$SCRAPE"),$(metric hoinghi_peer_connections "$SCRAPE"),$(metric hoinghi_participants "$SCRAPE"),$(metric hoinghi_ws_open "$SCRAPE"),$threads" >> "$CSV"
}

echo "minute,utc,rss_kib,open_fds,tokio_tasks,peer_connections,participants,ws_open,threads" > "$CSV"
sample idle
# The window runs SOAK_TAIL seconds past the last sample, so every sample sees the soak at full load.
"$LT" soak -n "$N" --churn "$CHURN" --seconds $((MINUTES * 60 + TAIL)) --server "$WS" \
  --tokens "$DATA" --server-pid "$SPID" --metrics "$METRICS" --progress --json "$JSON" \
  > "$LLOG" 2>&1 &
LPID=$!
# Minute 0: the load generator's window opens once every point receives media.
until grep -q 'measuring' "$LLOG"; do
  if ! kill -0 "$LPID" 2>/dev/null; then cat "$LLOG" >&2; exit 1; fi
  sleep 1
done
START=$(date +%s)
m=0
while [ $m -le "$MINUTES" ]; do
  now=$(date +%s)
  due=$((START + m * 60))
  [ "$now" -lt "$due" ] && sleep $((due - now))
  kill -0 "$SPID" 2>/dev/null || { echo "server died at minute $m" >&2; cat "$SLOG" >&2; exit 1; }
  sample "$m"
  m=$((m + 1))
done
wait "$LPID" || echo "load generator exited with $?" >&2
LPID=
rm -f "$SCRAPE"

{
  echo "soak: $N points, churn every $CHURN s, $MINUTES min, workers $WORKERS, server $BUILD, $(nproc) cores"
  echo "command: SOAK_N=$N SOAK_MINUTES=$MINUTES SOAK_WARMUP=$WARMUP SOAK_CHURN=$CHURN${SOAK_TAG:+ SOAK_TAG=$SOAK_TAG} bench/soak.sh"
  awk -F, -v w="$WARMUP" -v e="$MINUTES" -v lim="$LIMIT" '
    NR == 1 { for (i = 3; i <= NF; i++) name[i] = $i; next }
    $1 == "0" { for (i = 3; i <= NF; i++) a[i] = $i }
    $1 == w { for (i = 3; i <= NF; i++) b[i] = $i }
    $1 == e { for (i = 3; i <= NF; i++) c[i] = $i }
    $1 != "idle" && $1 + 0 >= w { for (i = 3; i <= NF; i++) if (!(i in mx) || $i + 0 > mx[i]) mx[i] = $i + 0 }
    END {
      printf "%-17s %10s %10s %10s %10s %9s\n", "figure", "minute 0", "minute " w, "minute " e, "max " w "-" e, "growth"
      bad = 0
      for (i = 3; i <= 6; i++) {
        g = (b[i] > 0) ? (c[i] - b[i]) * 100 / b[i] : 0
        ok = (g <= lim) ? "ok" : "GROWTH"
        if (g > lim) bad = 1
        printf "%-17s %10s %10s %10s %10s %+8.1f%% %s\n", name[i], a[i], b[i], c[i], mx[i], g, ok
      }
      for (i = 7; i <= NF; i++)
        printf "%-17s %10s %10s %10s %10s\n", name[i], a[i], b[i], c[i], mx[i]
      exit bad
    }' "$CSV" && status=0 || status=1
  python3 - "$JSON" <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))
p = r["points"]
print(f"load generator: {p['joined']} of {p['requested']} points joined, {p['churn_joins']} churn joins,"
      f" {p['churn_leaves']} leaves, {len(r['failures'])} failures, window {r['window_s']:.0f} s,"
      f" load average {r['load_average'][0]:.1f} -> {r['load_average'][1]:.1f}")
for f in r["failures"][:5]:
    print(f"  failure: {f['point']} {f['stage']}: {f['error']}")
PY
  sed -n '/^Soak · /,$p' "$LLOG"
} > "$SUMMARY"
cat "$SUMMARY"
exit "${status:-0}"
