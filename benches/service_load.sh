#!/bin/sh
# Requests per second of the example service (examples/examples/service.rs)
# with leakcheck's profiling mode at the default rate, against the same
# service built without leakcheck (`--no-default-features`: it does not link
# leakcheck at all), over loopback, in alternating runs of the same session.
#
#   benches/service_load.sh [REQUESTS] [THREADS] [ROUNDS]   # default 20000 2 3
#
# Every run is bounded: REQUESTS requests, each with a 10 s timeout, and the
# whole run killed after 120 s.
set -eu
requests=${1:-20000}
threads=${2:-2}
rounds=${3:-3}
cd "$(dirname "$0")/.."
cargo build -q --release -p leakcheck-examples --example service --no-default-features
cp target/release/examples/service target/release/examples/service-without-leakcheck
cargo build -q --release -p leakcheck-examples --example service
cargo build -q --release -p leakcheck-benches --bin http_load
if nm -D target/release/examples/service-without-leakcheck | grep -q ' T malloc$'; then
    echo "the baseline links leakcheck's hooks" >&2; exit 1
fi

run() { # BINARY -> "requests/s CPU-microseconds-per-request"
    out=$(mktemp)
    "$1" --addr 127.0.0.1:0 >"$out" &
    pid=$!
    while ! grep -q listening "$out"; do sleep 0.1; done
    addr=$(sed -n 's|^listening on http://||p' "$out")
    rps=$(timeout 120 target/release/http_load "$addr" /work "$requests" "$threads" | sed -n 's/requests\/s //p')
    # The service's own CPU time (user + system, clock ticks): on a shared,
    # loaded machine a steadier measure of its cost than wall-clock rate.
    ticks=$(awk '{print $14 + $15}' /proc/$pid/stat)
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -f "$out"
    echo "rss_kb $rss" >&2
    echo "$rps $(echo "scale=1; $ticks * 1000000 / $(getconf CLK_TCK) / $requests" | bc)"
}

# Alternating which goes first, so a machine that gets busier or quieter
# during a round favours neither.
for round in $(seq "$rounds"); do
    if [ $((round % 2)) -eq 1 ]; then
        plain=$(run target/release/examples/service-without-leakcheck)
        profiled=$(run target/release/examples/service)
    else
        profiled=$(run target/release/examples/service)
        plain=$(run target/release/examples/service-without-leakcheck)
    fi
    set -- $plain; plain_rps=$1; plain_cpu=$2
    set -- $profiled; prof_rps=$1; prof_cpu=$2
    echo "round $round: without leakcheck $plain_rps req/s ${plain_cpu} us CPU/req; profiling mode $prof_rps req/s ${prof_cpu} us CPU/req; rps ratio $(echo "scale=3; $plain_rps / $prof_rps" | bc), CPU ratio $(echo "scale=3; $prof_cpu / $plain_cpu" | bc)"
done
