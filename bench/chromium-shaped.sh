#!/bin/bash
# Chromium behind a shaped line (issue 11): the chair and one point in real Chromium, the
# server→point flow shaped by tc htb + iptables random drop (tests/browser/linkprofile.mjs),
# each profile of tests/browser/constrained.mjs measured second by second. Root needed.
#   bench/chromium-shaped.sh TAG [RUNS]   (TAG: before, after, ...; HOINGHI_BIN picks the server)
# Writes bench/results/chromium-shaped-TAG-PROFILE-RUN.json (+ .trace: the allocator's decisions);
# bench/render.py turns them into the table in docs/benchmarks.md.
set -euo pipefail
TAG=${1:?tag}
RUNS=${2:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for run in $(seq 1 "$RUNS"); do
  for profile in adsl bad flap; do
    out="$ROOT/bench/results/chromium-shaped-$TAG-$profile-$run.json"
    (cd "$ROOT/tests/browser" && HOINGHI_LOG=${HOINGHI_LOG:-info,sfu::worker::allocate=debug} \
      CONSTRAINED_PROFILE=$profile CONSTRAINED_OUT="$out" node constrained.mjs) >"${out%.json}.log" 2>&1 \
      || echo "$profile run $run failed: see ${out%.json}.log"
  done
done
