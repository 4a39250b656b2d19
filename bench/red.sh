#!/bin/sh
# The redundant-audio measurements of docs/benchmarks.md: fan-out to 20 points over the `adsl` and
# `bad` profiles, each without and with `--red` (same seed, so the same emulated losses). Called
# by bench/run-all.sh; run alone (then `python3 bench/render.py`) to refresh only these.
# Environment: OUT (bench/results), LOADTEST (target/release/hoinghi-loadtest), PROFILE_N (20),
# SEED (1), COMMIT (what the binary was built from; default HEAD).
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
LT=${LOADTEST:-target/release/hoinghi-loadtest}
P=${PROFILE_N:-20}
SEED=${SEED:-1}
mkdir -p "$OUT"
[ -x "$LT" ] || cargo build --release -p loadtest
cat > "$OUT/red-machine.json" <<JSON
{"date": "$(date -u +%Y-%m-%dT%H:%MZ)", "commit": "${COMMIT:-$(git rev-parse --short HEAD)}",
 "loadavg": "$(cut -d' ' -f1-3 /proc/loadavg)", "points": $P, "seed": $SEED}
JSON
for profile in adsl bad; do
  "$LT" fanout -n "$P" --link "$profile" --seconds 30 --ready-timeout 30 --seed "$SEED" \
    --json "$OUT/red-$profile-off.json"
  "$LT" fanout -n "$P" --link "$profile" --seconds 30 --ready-timeout 30 --seed "$SEED" --red \
    --json "$OUT/red-$profile-on.json"
done
