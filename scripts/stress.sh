#!/usr/bin/env bash
# Runs one of the whole-binary stress tests over and over, in batches, each
# batch a process with a time limit; exits non-zero on any miss or timeout.
#
#   scripts/stress.sh [--release] parallel|busy [RUNS] [BATCH] [TIMEOUT_SECONDS]
#
#   parallel  harness/tests/verdict_parallel.rs: 43 tests on 8 threads, three
#             leaking; every leaked block must be definitely lost.
#   busy      real-crates/tests/track_stress.rs: 16 busy checks at once (8
#             threads of Rust and C churn each, rayon's global pool, a 100 us
#             timer), one leaking one C block; exactly that test must fail.
#
# RUNS child runs in all (default 200), BATCH per process (default 10), each
# process stopped after TIMEOUT_SECONDS (default 300). Each test reads its
# count from LEAKCHECK_STRESS_RUNS; `cargo test` runs them with the default.
set -euo pipefail

profile=()
if [[ "${1:-}" == "--release" ]]; then
    profile=(--release)
    shift
fi
case "${1:-}" in
parallel) package=leakcheck test=verdict_parallel fn=parallel_run_fails_exactly_the_leaking_tests ;;
busy) package=leakcheck-real-crates test=track_stress fn=sixteen_busy_checks_at_once_give_the_exact_verdict_every_run ;;
*)
    sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;/^set -e/d' >&2
    exit 2
    ;;
esac
shift
runs=${1:-200}
batch=${2:-10}
timeout_s=${3:-300}
cd "$(dirname "$0")/.."
logs=$(mktemp -d "${TMPDIR:-/tmp}/stress-$test.XXXXXX")

# Build once, then run the test binary itself (no cargo lock held between
# batches, so a debug and a release stress can run side by side).
exe=$(cargo test -p "$package" --test "$test" "${profile[@]}" --no-run --message-format=json |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[[ -x "$exe" ]] || { echo "no test binary built" >&2; exit 2; }

done_runs=0
failed=0
batches=0
while ((done_runs < runs)); do
    n=$((runs - done_runs < batch ? runs - done_runs : batch))
    batches=$((batches + 1))
    log="$logs/batch-$batches.log"
    if ! LEAKCHECK_STRESS_RUNS=$n timeout "$timeout_s" "$exe" --exact "$fn" >"$log" 2>&1; then
        failed=$((failed + 1))
        echo "batch $batches ($n runs) FAILED: $log"
        grep -m1 -E "run [0-9]+|timed out|panicked" "$log" || true
    else
        rm -f "$log"
    fi
    done_runs=$((done_runs + n))
    echo "runs: $done_runs/$runs, failed batches: $failed/$batches"
done
echo "$test ${profile[*]:-debug}: $done_runs runs in $batches batches, $failed failed batches (logs: $logs)"
((failed == 0))
