#!/usr/bin/env bash
# Runs harness/tests/parallel.rs's parent test over and over: each of its
# runs is one child run of 43 tests on 8 threads, three of them leaking, and
# asserts that every leaked block is found *definitely lost* (a stale copy of
# an address must never make one still reachable or possibly lost).
#
#   scripts/stress-parallel.sh [--release] [RUNS] [BATCH] [TIMEOUT_SECONDS]
#
# RUNS child runs in all (default 200), BATCH per process (default 10), each
# process stopped after TIMEOUT_SECONDS (default 300). Prints the runs done,
# the failed batches and where their output is; exits non-zero on any miss
# or timeout. `cargo test` itself runs the test once (5 child runs).
set -euo pipefail

profile=()
if [[ "${1:-}" == "--release" ]]; then
    profile=(--release)
    shift
fi
runs=${1:-200}
batch=${2:-10}
timeout_s=${3:-300}
cd "$(dirname "$0")/.."
logs=$(mktemp -d "${TMPDIR:-/tmp}/stress-parallel.XXXXXX")

# Build once, then run the test binary itself (no cargo lock held between
# batches, so a debug and a release stress can run side by side).
exe=$(cargo test -p leakcheck --test parallel "${profile[@]}" --no-run --message-format=json |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[[ -x "$exe" ]] || { echo "no test binary built" >&2; exit 2; }

done_runs=0
failed=0
batches=0
while ((done_runs < runs)); do
    n=$((runs - done_runs < batch ? runs - done_runs : batch))
    batches=$((batches + 1))
    log="$logs/batch-$batches.log"
    if ! PARALLEL_RUNS=$n timeout "$timeout_s" \
        "$exe" --exact parallel_run_fails_exactly_the_leaking_tests >"$log" 2>&1; then
        failed=$((failed + 1))
        echo "batch $batches ($n runs) FAILED: $log"
        grep -m1 -E "run [0-9]+:|timed out|panicked" "$log" || true
    else
        rm -f "$log"
    fi
    done_runs=$((done_runs + n))
    echo "runs: $done_runs/$runs, failed batches: $failed/$batches"
done
echo "${profile[*]:-debug}: $done_runs runs in $batches batches, $failed failed batches (logs: $logs)"
((failed == 0))
