#!/usr/bin/env bash
# Run a published crate's own test suite twice: as published ("plain") and
# with every `#[test]` rewritten to `#[leakcheck::leak_checked]`
# ("leakcheck"), then print one summary line comparing the two.
#
#   scripts/real-suites/run.sh CRATE VERSION [--release] [--nextest] [--inject]
#
#   CRATE VERSION   a crate on crates.io, e.g. `rusqlite 0.40.2`, `flate2 1.1.11`.
#   --release       build and run with `--release` (default: the dev profile).
#   --nextest       run with `cargo nextest run` instead of `cargo test`.
#   --inject        also add the known real leak for this crate (see inject())
#                   to the leakcheck copy: the run must then fail that test.
#
# Environment:
#   REAL_SUITES_WORK  where copies, target dirs, logs and JSON reports go
#                     (default: ${TMPDIR:-/tmp}/real-suites).
#   LEAKCHECK_PATH    the leakcheck crate (default: this repository's harness/).
#   FEATURES          cargo features for the suite (default per crate, below).
#   REPEAT            timed runs per copy after the build (default 1).
#   SKIP              test names to leave out of the run, space separated
#                     (libtest's `--skip`, also understood by nextest), e.g.
#                     a test that sleeps for seconds and hides the overhead.
#
# Needs only cargo (and cargo-nextest for --nextest) with access to the
# crates.io registry, perl and a C compiler. The source is fetched through
# cargo, copied out of the registry and edited there; nothing of the suite
# is committed to this repository. Only the run is timed, not the build.
# Doctests are not run (an attribute cannot be put on them): the suites are
# `--lib --tests`. The suite's own profiles are used as published; nothing is
# added to them.
set -euo pipefail

usage() { sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;/^set -e/d' >&2; exit 2; }

[ $# -ge 2 ] || usage
crate=$1 version=$2
shift 2
profile=debug mode=test inject=0
for arg in "$@"; do
    case $arg in
        --release) profile=release ;;
        --nextest) mode=nextest ;;
        --inject) inject=1 ;;
        *) usage ;;
    esac
done

here=$(cd "$(dirname "$0")" && pwd)
leakcheck_path=${LEAKCHECK_PATH:-$(cd "$here/../../harness" && pwd)}
work=${REAL_SUITES_WORK:-${TMPDIR:-/tmp}/real-suites}
repeat=${REPEAT:-1}
mkdir -p "$work"
work=$(cd "$work" && pwd)

# Per-crate defaults: the C backend each crate wraps, built from source so its
# frames have symbols (libz-sys links the system libz.so.1 unless told to
# build it; rusqlite's `bundled` compiles SQLite with `cc`).
case $crate in
    rusqlite) features=${FEATURES:-bundled} ;;
    flate2)
        features=${FEATURES:-zlib}
        no_default=--no-default-features
        export LIBZ_SYS_STATIC=1
        ;;
    *) features=${FEATURES:-} ;;
esac
no_default=${no_default:-}
feature_args=()
[ -n "$features" ] && feature_args=(--features "$features")
[ -n "$no_default" ] && feature_args+=("$no_default")
profile_args=()
[ "$profile" = release ] && profile_args=(--release)

log() { printf '[real-suites] %s\n' "$*" >&2; }

# 1. Fetch the published source through cargo and find it with cargo metadata.
fetch_dir=$work/fetch-$crate-$version
mkdir -p "$fetch_dir/src"
cat >"$fetch_dir/Cargo.toml" <<EOF
[package]
name = "real-suites-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$crate = "=$version"

[workspace]
EOF
: >"$fetch_dir/src/lib.rs"
(cd "$fetch_dir" && cargo fetch --quiet)
src=$(cd "$fetch_dir" && cargo metadata --format-version 1 --quiet |
    grep -o "\"manifest_path\":\"[^\"]*/$crate-$version/Cargo.toml\"" | head -1 |
    sed 's/^"manifest_path":"//; s#/Cargo.toml"$##')
[ -d "$src" ] || { log "cannot find the source of $crate $version"; exit 1; }

# 2. Two copies: as published, and rewritten for leakcheck.
plain=$work/$crate-$version
checked=$work/$crate-$version-leakcheck
copy() { # copy SRC DST: refresh the sources, keep DST/target (the build cache)
    mkdir -p "$2"
    find "$2" -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {} +
    (cd "$1" && tar cf - --exclude=./target .) | (cd "$2" && tar xf -)
    # A published manifest is not a workspace member of anything around it.
    grep -q '^\[workspace\]' "$2/Cargo.toml" || printf '\n[workspace]\n' >>"$2/Cargo.toml"
}
copy "$src" "$plain"
copy "$src" "$checked"

# Every line that is `#[test]` (possibly followed by the item on the same
# line) becomes `#[leakcheck::leak_checked]`, which implies `#[test]`.
# `#[cfg(...)]` lines above it are kept; the attribute must come before
# `#[should_panic]`/`#[ignore]`, and `#[test]` is first in both suites.
rewritten=$(find "$checked" -path "$checked/target" -prune -o -name '*.rs' -print0 |
    xargs -0 perl -i -ne '
        $n += s/^(\s*)#\[test\]/$1#[leakcheck::leak_checked]/;
        print;
        END { print STDERR "$n\n" }' 2>&1 >/dev/null | tail -1)
printf '\n[dev-dependencies.leakcheck]\npath = "%s"\n' "$leakcheck_path" >>"$checked/Cargo.toml"
# Edition 2015 (no `edition` key) has no extern prelude: each crate root
# that has a test names leakcheck with `extern crate`, as its users would.
if ! grep -Eq '^edition *= *"20(18|2[0-9])"' "$checked/Cargo.toml"; then
    for root in "$checked/src/lib.rs" "$checked"/tests/*.rs; do
        if [ -f "$root" ]; then printf '\n#[cfg(test)]\nextern crate leakcheck;\n' >>"$root"; fi
    done
fi

# 3. Optionally, a real leak the run must catch, with its stack through C.
inject() {
    case $crate in
        rusqlite)
            # `test_execute_batch` (src/lib.rs): the connection is forgotten
            # after its statements ran, so sqlite3 and everything it owns leak.
            perl -0 -i -pe '
                s/(fn test_execute_batch\(\) -> Result<\(\)> \{\n\s*let db = Connection::open_in_memory\(\)\?;.*?)\n(\s*)Ok\(\(\)\)\n/$1\n$2std::mem::forget(db);\n$2Ok(())\n/s or die "rusqlite: test_execute_batch not found\n"
            ' "$checked/src/lib.rs"
            echo "test::test_execute_batch"
            ;;
        flate2)
            # `gz::write::tests::decode_writer_one_chunk`: a second encoder
            # is written to and forgotten while its zlib stream is open.
            perl -0 -i -pe '
                s/(fn decode_writer_one_chunk\(\) \{\n(\s*)let mut e = GzEncoder::new\(Vec::new\(\), Compression::default\(\)\);\n)/$1$2let mut leaked = GzEncoder::new(Vec::new(), Compression::default());\n$2leaked.write_all(STR.as_ref()).unwrap();\n$2std::mem::forget(leaked);\n/ or die "flate2: decode_writer_one_chunk not found\n"
            ' "$checked/src/gz/write.rs"
            echo "gz::write::tests::decode_writer_one_chunk"
            ;;
        bzip2)
            # `read::tests::smoke`: a second encoder, whose libbz2 stream
            # `BZ2_bzCompressInit` opened, is forgotten.
            perl -0 -i -pe '
                s/(fn smoke\(\) \{\n(\s*)let m: &\[u8\] = &\[1, 2, 3, 4, 5, 6, 7, 8\];\n)/$1$2std::mem::forget(BzEncoder::new(m, Compression::default()));\n/ or die "bzip2: read::tests::smoke not found\n"
            ' "$checked/src/read.rs"
            echo "read::tests::smoke"
            ;;
        *) log "no injected leak known for $crate"; exit 2 ;;
    esac
}
injected=
[ "$inject" = 1 ] && injected=$(inject)

# 4. Build, then time the runs.
ftag=${features//[, ]/+}
tag=$profile-$mode${ftag:+-$ftag}${injected:+-inject}${SKIP:+-skip}
reports=$work/reports-$crate-$version-$tag
rm -rf "$reports"
build() { # build DIR
    (cd "$1" && cargo test --no-run --lib --tests "${feature_args[@]}" "${profile_args[@]}" \
        >"$work/build-$(basename "$1")-$tag.log" 2>&1) ||
        { log "build failed in $1, see $work/build-$(basename "$1")-$tag.log"; tail -30 "$work/build-$(basename "$1")-$tag.log" >&2; exit 1; }
}
skip_args=()
for pattern in ${SKIP:-}; do skip_args+=(--skip "$pattern"); done
[ ${#skip_args[@]} -gt 0 ] && skip_args=(-- "${skip_args[@]}")
run_once() { # run_once DIR LOG: run the suite, write its output to LOG
    local dir=$1 out=$2
    if [ "$mode" = nextest ]; then
        (cd "$dir" && cargo nextest run --lib --tests "${feature_args[@]}" "${profile_args[@]}" \
            --no-fail-fast --color never --hide-progress-bar --final-status-level fail \
            "${skip_args[@]}" >"$out" 2>&1) || true
    else
        (cd "$dir" && cargo test --lib --tests "${feature_args[@]}" "${profile_args[@]}" \
            --no-fail-fast --color never "${skip_args[@]}" >"$out" 2>&1) || true
    fi
}
now() { date +%s.%N; }
# summarise LOG: "TESTS PASSED FAILED IGNORED" then one failing test a line
summarise() {
    perl -ne '
        BEGIN { $mode = shift }
        if ($mode eq "test") {
            $bin = $1 if /^\s+Running (?:unittests )?\S+ \((\S+)\)/;
            ($b = $bin) =~ s{.*/}{}; $b =~ s/-[0-9a-f]{16}$//;
            if (/^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored/) {
                $p += $1; $f += $2; $i += $3;
            }
            push @fail, "$b $1" if /^test (\S+) \.\.\. FAILED/;
        } else {
            if (/^\s+Summary \[.*\] (\d+) tests? run: (\d+) passed(?:.*?, (\d+) failed)?(?:.*?, (\d+) skipped)?/) {
                $run = $1; $p = $2; $f = $3 // 0; $i = $4 // 0;
            }
            $final = 1 if /^\s+Summary \[/;
            push @fail, "$1 $2" if $final && /^\s+(?:FAIL|SIGSEGV|SIGABRT|SIGBUS|ABORT|TIMEOUT|LEAK-FAIL)\b.*\]\s+(?:\(\s*\d+\/\s*\d+\)\s+)?(\S+)\s+(\S+)\s*$/;
        }
        END {
            my $t = $p + $f + $i;
            print "$t $p $f $i\n", map { "$_\n" } @fail;
        }' "$mode" "$1"
}

build "$plain"
build "$checked"
declare -A times
for copy_dir in "$plain" "$checked"; do
    name=$(basename "$copy_dir")
    times[$name]=
    for ((i = 1; i <= repeat; i++)); do
        out=$work/run-$name-$tag-$i.log
        t0=$(now)
        LEAKCHECK_REPORT_DIR=$reports run_once "$copy_dir" "$out"
        t1=$(now)
        times[$name]+="$(perl -e 'printf "%.2f ", $ARGV[1] - $ARGV[0]' "$t0" "$t1")"
    done
done

p_sum=$(summarise "$work/run-$(basename "$plain")-$tag-1.log")
c_sum=$(summarise "$work/run-$(basename "$checked")-$tag-1.log")
read -r pt pp pf pi <<<"$(head -1 <<<"$p_sum")"
read -r ct cp cf ci <<<"$(head -1 <<<"$c_sum")"
only=$(comm -13 <(tail -n +2 <<<"$p_sum" | sort) <(tail -n +2 <<<"$c_sum" | sort))

echo "$crate $version${features:+ [$features]}${SKIP:+ (skipped: $SKIP)} $profile $( [ "$mode" = nextest ] && echo nextest || echo cargo-test )${injected:+ (injected leak in $injected)}:" \
    "#[test] rewritten: $rewritten;" \
    "plain: $pt tests, $pp passed, $pf failed, $pi ignored, ${times[$(basename "$plain")]% }s;" \
    "leakcheck: $ct tests, $cp passed, $cf failed, $ci ignored, ${times[$(basename "$checked")]% }s"
if [ -n "$only" ]; then
    echo "failing only with leakcheck:"
    sed 's/^/    /' <<<"$only"
fi
fails_plain=$(tail -n +2 <<<"$p_sum")
if [ -n "$fails_plain" ]; then
    echo "failing without leakcheck too:"
    sed 's/^/    /' <<<"$fails_plain"
fi
echo "logs: $work/run-*-$tag-*.log; JSON reports: $reports"
