#!/bin/sh
# Issue 11's line targets in the loadtest, over several seeds: fan-out to 20 points over `adsl`,
# `bad` and `flap` with the chair publishing three simulcast layers with three temporal layers
# each (as Chromium's VP8 simulcast does), redundant audio, and transport-wide feedback every
# 50 ms (as Chromium sends it at these rates). One JSON report per profile and seed
# (`simulcast-seeds-PROFILE-sSEED.json`, with every point's numbers) and its table (`.txt`);
# `bench/simulcast-seeds.py` turns them into the rows of docs/benchmarks.md.
# Environment: OUT (bench/results), LOADTEST (target/release/hoinghi-loadtest), SEEDS ("1 2 3"),
# PROFILES ("adsl bad flap"), PROFILE_N (20), LAYERS (150,500,1200), TEMPORAL (3),
# TWCC_MS (50), TAG (a suffix for the file names, e.g. "-twcc100"), EXTRA (more loadtest flags),
# COMMIT (what the binary was built from; default HEAD).
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
LT=${LOADTEST:-target/release/hoinghi-loadtest}
SEEDS=${SEEDS:-1 2 3}
PROFILES=${PROFILES:-adsl bad flap}
P=${PROFILE_N:-20}
LAYERS=${LAYERS:-150,500,1200}
TEMPORAL=${TEMPORAL:-3}
TWCC_MS=${TWCC_MS:-50}
TAG=${TAG:-}
EXTRA=${EXTRA:-}
mkdir -p "$OUT"
[ -x "$LT" ] || cargo build --release -p loadtest
COMMAND="hoinghi-loadtest fanout -n $P --simulcast --layers $LAYERS --temporal-layers $TEMPORAL \
--twcc-interval $TWCC_MS --red --link PROFILE --seed SEED --seconds 30 (flap: 45) --per-point $EXTRA"
cat > "$OUT/simulcast-seeds$TAG-machine.json" <<JSON
{"date": "$(date -u +%Y-%m-%dT%H:%MZ)", "commit": "${COMMIT:-$(git rev-parse --short HEAD)}",
 "loadavg": "$(cut -d' ' -f1-3 /proc/loadavg)", "layers": "$LAYERS", "seeds": "$SEEDS",
 "command": "$COMMAND"}
JSON
for seed in $SEEDS; do
  for profile in $PROFILES; do
    seconds=30
    [ "$profile" = flap ] && seconds=45
    base="$OUT/simulcast-seeds$TAG-$profile-s$seed"
    # shellcheck disable=SC2086 # EXTRA is a list of flags
    "$LT" fanout -n "$P" --simulcast --layers "$LAYERS" --temporal-layers "$TEMPORAL" \
      --twcc-interval "$TWCC_MS" --red --link "$profile" --seed "$seed" --seconds "$seconds" \
      --ready-timeout 30 --per-point $EXTRA --json "$base.json" > "$base.txt"
    echo "$profile seed $seed: $(grep '^targets' "$base.txt" | cut -c1-160)"
  done
done
