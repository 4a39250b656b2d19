#!/bin/sh
# The simulcast measurements of docs/benchmarks.md: fan-out to 20 points over each link profile
# with the chair publishing three layers, and a town hall with a floor holder. Called by
# bench/run-all.sh; run alone (then `python3 bench/render.py`) to refresh only these.
# Environment: OUT (bench/results), LOADTEST (target/release/hoinghi-loadtest), PROFILE_N (20),
# LAYERS (150,500,1200), FLOOR_N (10), COMMIT (what the binary was built from; default HEAD).
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
LT=${LOADTEST:-target/release/hoinghi-loadtest}
P=${PROFILE_N:-20}
LAYERS=${LAYERS:-150,500,1200}
mkdir -p "$OUT"
[ -x "$LT" ] || cargo build --release -p loadtest
cat > "$OUT/simulcast-machine.json" <<JSON
{"date": "$(date -u +%Y-%m-%dT%H:%MZ)", "commit": "${COMMIT:-$(git rev-parse --short HEAD)}",
 "loadavg": "$(cut -d' ' -f1-3 /proc/loadavg)", "layers": "$LAYERS"}
JSON
for profile in fibre adsl bad; do
  "$LT" fanout -n "$P" --simulcast --layers "$LAYERS" --link "$profile" --seconds 30 \
    --ready-timeout 30 --per-point --json "$OUT/simulcast-$profile.json"
done
"$LT" fanout -n "$P" --simulcast --layers "$LAYERS" --link flap --seconds 45 --ready-timeout 30 \
  --per-point --json "$OUT/simulcast-flap.json"
# The single 800 kbit/s stream over the constrained profiles against the same server and client,
# for the comparison.
for profile in adsl bad; do
  "$LT" fanout -n "$P" --link "$profile" --seconds 30 --ready-timeout 30 \
    --json "$OUT/single-$profile.json"
done
# Every point publishes three layers here too: fewer points keep the generator's own CPU small.
"$LT" townhall -n "${FLOOR_N:-10}" --simulcast --layers "$LAYERS" --floor --seconds 20 \
  --json "$OUT/simulcast-townhall-floor.json"
