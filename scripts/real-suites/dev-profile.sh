#!/usr/bin/env bash
# The dev profile's cost on rusqlite's suite, four ways, in alternating runs:
# plain, leakcheck as a user gets it (no override), with the README's
# profile overrides given as `--config`, and through `cargo leakcheck test`.
#
#   scripts/real-suites/dev-profile.sh [REPEAT]
#
# Run `scripts/real-suites/run.sh rusqlite 0.40.2` first (same
# REAL_SUITES_WORK): it makes the plain and the rewritten copy this times.
# Prints one line a run with each form's wall time (`cargo test`, the build
# done before), then the peak RSS and CPU time of the unit-test binary of
# each leakcheck build.
set -euo pipefail
repeat=${1:-5}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${REAL_SUITES_WORK:-${TMPDIR:-/tmp}/real-suites}
plain=$work/rusqlite-0.40.2
checked=$work/rusqlite-0.40.2-leakcheck
[ -d "$plain" ] && [ -d "$checked" ] || { echo "run scripts/real-suites/run.sh rusqlite 0.40.2 first" >&2; exit 2; }
export LEAKCHECK_PROFILE_HINT=0
overrides=()
for p in leakcheck backtrace gimli addr2line object miniz_oxide rustc-demangle; do
    overrides+=(--config "profile.dev.package.$p.opt-level=3")
done
(cd "$root" && cargo build -q -p cargo-leakcheck)
cli=$root/target/debug/cargo-leakcheck
args=(--lib --tests --features bundled)
skip=(-- --skip busy::test::test_default_busy)
wall() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -n 1; }
# Builds (and one warm-up run of the CLI, which builds its own variant).
(cd "$plain" && cargo test -q --no-run "${args[@]}" 2>/dev/null)
(cd "$checked" && cargo test -q --no-run "${args[@]}" 2>/dev/null)
(cd "$checked" && cargo test -q --no-run "${args[@]}" "${overrides[@]}" 2>/dev/null)
(cd "$checked" && "$cli" leakcheck test --report-dir "$work/dev-profile-cli" "${args[@]}" "${skip[@]}" >/dev/null 2>&1) || true
for ((i = 1; i <= repeat; i++)); do
    a=$(cd "$plain" && wall cargo test "${args[@]}" "${skip[@]}")
    b=$(cd "$checked" && LEAKCHECK_REPORT_DIR=$work/dev-profile-r1 wall cargo test "${args[@]}" "${skip[@]}")
    c=$(cd "$checked" && LEAKCHECK_REPORT_DIR=$work/dev-profile-r2 wall cargo test "${args[@]}" "${overrides[@]}" "${skip[@]}")
    d=$(cd "$checked" && wall "$cli" leakcheck test --report-dir "$work/dev-profile-cli" "${args[@]}" "${skip[@]}")
    echo "run $i: plain $a s, leakcheck $b s, with overrides $c s, cargo leakcheck test $d s (load $(cut -d' ' -f1 /proc/loadavg))"
done
# The unit-test binaries, newest first: which build is which is in
# `cargo test --no-run` output; print them all.
unit() { # DIR [cargo args]: path of the unit-test binary cargo builds there
    local dir=$1; shift
    (cd "$dir" && cargo test --no-run "${args[@]}" "$@" 2>&1 | sed -n 's/.*unittests src\/lib.rs (\(.*\))/\1/p')
}
for form in plain leakcheck overrides; do
    case $form in
        plain) bin=$plain/$(unit "$plain") ;;
        leakcheck) bin=$checked/$(unit "$checked") ;;
        overrides) bin=$checked/$(unit "$checked" "${overrides[@]}") ;;
    esac
    for ((i = 1; i <= 3; i++)); do
        /usr/bin/time -f "unit tests, $form: %U s user, %S s sys, %M KB peak RSS" \
            "$bin" --skip busy::test::test_default_busy -q 2>&1 >/dev/null | tail -n 1
    done
done
