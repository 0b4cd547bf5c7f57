#!/usr/bin/env python3
"""Median time of every benchmark, and its ratio to its group's baseline.

Usage: summarize.py CRITERION_DIR [CRITERION_DIR ...]

Each CRITERION_DIR is the `criterion/` folder of one `cargo bench` run
(`$CARGO_TARGET_DIR/criterion`, or a copy of it). With several runs, each
ratio is taken within its own run (baseline and case measured minutes apart
on the same machine) and the table shows the median over the runs, with the
per-run values after it. Prints a Markdown table.
"""

import json
import statistics
import sys
from pathlib import Path

BASELINES = {"malloc_free": "glibc", "rust_box": "glibc_calloc", "verdict": "empty/0"}
CASES = {
    "malloc_free": ["glibc", "glibc_2_locks", "hooks", "scope", "scope_depth_16"],
    "rust_box": ["glibc_calloc", "glibc_malloc", "hooks", "scope"],
    "verdict": [
        "empty",
        "clean",
        "leak_one_unclassified",
        "leak_one",
        "leak_one_verdict_unclassified",
        "leak_one_verdict",
        "keep_one_verdict",
    ],
}


def sort_key(key):
    """Groups in file order; verdict cases by block count, after-peak last."""
    group, bench = key
    case, _, n = bench.partition("/")
    after_peak = case.endswith("_after_peak")
    case = case.removesuffix("_after_peak")
    rank = CASES[group].index(case) if case in CASES[group] else len(CASES[group])
    return (list(BASELINES).index(group), after_peak, int(n or 0), rank, bench)


def medians(root):
    """{(group, bench): median ns} for one run."""
    out = {}
    for bench in Path(root).glob("*/**/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        bench_id = meta["full_id"].split("/", 1)[1]
        out[(meta["group_id"], bench_id)] = estimates["median"]["point_estimate"]
    return out


def fmt_time(ns):
    for unit, scale in (("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def main(roots):
    runs = [medians(root) for root in roots]
    order = sorted(runs[0], key=sort_key)
    print("| benchmark | median | × baseline | per run (median, ×) |")
    print("| --- | --: | --: | --- |")
    for group, bench in order:
        times, ratios = [], []
        for run in runs:
            if (group, bench) in run and (group, BASELINES[group]) in run:
                times.append(run[(group, bench)])
                ratios.append(run[(group, bench)] / run[(group, BASELINES[group])])
        per_run = ", ".join(f"{fmt_time(t)} {r:.2f}×" for t, r in zip(times, ratios))
        print(
            f"| `{group}/{bench}` | {fmt_time(statistics.median(times))} "
            f"| {statistics.median(ratios):.2f}× | {per_run} |"
        )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
