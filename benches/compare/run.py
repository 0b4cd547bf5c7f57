#!/usr/bin/env python3
"""leakcheck side by side with valgrind, heaptrack and LeakSanitizer.

Runs the same workloads (src/main.rs, c/workload.c, tests/suite.rs)
uninstrumented, with leakcheck, under `valgrind --leak-check=full`, under
`heaptrack` and built with LeakSanitizer (`-Zsanitizer=leak`, nightly), and
prints one Markdown table: best wall time and peak RSS per tool, the ratio to
the uninstrumented run, and whether the tool reported the 10 leaks of the two
leaking loops with a full stack (the leaking function through to the Rust
code that called it).

    benches/compare/run.py [--quick] [--profile release|dev|bench]
                           [--repeat N] [--tools plain,leakcheck,...]

--quick runs small sizes once (CI's short form); the default sizes take a few
minutes on 2 cores. A tool that is not installed is skipped with a message
saying how to get it; the table marks it "not run". Builds go to
target/compare/{plain,leakcheck,lsan}: the three need different features or
flags, and a binary cannot be both instrumented and not.
"""

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.path.join(ROOT, "target", "compare")
TRIPLE = "x86_64-unknown-linux-gnu"
PACKAGE = "leakcheck-compare"
TOOLS = ["plain", "leakcheck", "valgrind", "heaptrack", "lsan"]
# Workload -> (full size, quick size, what the size means, leaks expected).
WORKLOADS = {
    "c-loop": (2_000_000, 100_000, "malloc/free pairs in C", 10),
    "rust-loop": (2_000_000, 100_000, "Vec alloc/drop pairs in Rust", 10),
    "zlib": (16, 1, "MB deflated and inflated (libz-sys)", 0),
    "c-tree": (1_000_000, 20_000, "small live C blocks in a tree", 0),
}
LEAKING_FUNCTION = {"c-loop": "compare_c_leak_one", "rust-loop": "rust_leak_one"}
# The function that calls the leaking one: a stack that has it but not the
# leaking function lost its innermost frame.
LOOP_FUNCTION = {"c-loop": "compare_c_loop", "rust-loop": "rust_loop"}
# A frame of the Rust code that called into the workload: a full stack
# reaches it from the leaking function.
CALLER = "compare_workload::"


def die(message):
    print(f"run.py: {message}", file=sys.stderr)
    sys.exit(2)


def run(cmd, env=None, cwd=ROOT, timeout=1800):
    """Runs cmd; returns (wall seconds, peak RSS in KiB, exit code, stdout, stderr)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=out, stderr=err)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid != 0:
                break
            if time.monotonic() > deadline:
                proc.kill()
                die(f"timed out after {timeout} s: {' '.join(cmd)}")
            time.sleep(0.002)
        wall = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        return (
            wall,
            usage.ru_maxrss,
            os.waitstatus_to_exitcode(status),
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def best_of(repeat, cmd, env, what):
    """The fastest of `repeat` runs: (wall, rss, stdout, stderr)."""
    best = None
    for _ in range(repeat):
        wall, rss, code, out, err = run(cmd, env)
        if code != 0:
            die(f"{what} exited with {code}:\n{out[-2000:]}\n{err[-3000:]}")
        if best is None or wall < best[0]:
            best = (wall, rss, out, err)
    return best


def cargo(args, target_dir, env=None, toolchain=None):
    cmd = ["cargo"] + ([f"+{toolchain}"] if toolchain else []) + args
    environment = {"CARGO_TARGET_DIR": target_dir}
    environment.update(env or {})
    return cmd, environment


class Build:
    """One build of the workloads: its binary and how to run its suite."""

    def __init__(self, name, profile, features=(), toolchain=None, rustflags=None):
        self.name = name
        self.profile = profile
        self.target_dir = os.path.join(TARGET, name)
        self.toolchain = toolchain
        self.env = {"RUSTFLAGS": rustflags} if rustflags else {}
        self.args = ["--profile", profile, "-p", PACKAGE]
        if features:
            self.args += ["--features", ",".join(features)]
        # With --target, RUSTFLAGS reach only the target, not build scripts.
        self.triple = [f"--target={TRIPLE}"] if rustflags else []

    def out_dir(self):
        profile_dir = "debug" if self.profile in ("dev", "test") else self.profile
        parts = [self.target_dir] + ([TRIPLE] if self.triple else []) + [profile_dir]
        return os.path.join(*parts)

    def build(self):
        for sub in (["build", "--bins"], ["test", "--no-run", "--test", "suite"]):
            cmd, env = cargo(sub + self.args + self.triple, self.target_dir, self.env, self.toolchain)
            env["CARGO_INCREMENTAL"] = "0"
            _, _, code, _, err = run(cmd, env)
            if code != 0:
                die(f"building {self.name} failed:\n{err[-4000:]}")

    def binary(self):
        return os.path.join(self.out_dir(), "compare-workload")

    def suite(self, runner, wrapper=None):
        """The command that runs the suite under `runner` (test or nextest)."""
        sub = ["test", "--test", "suite", "-q"] if runner == "test" else [
            "nextest", "run", "--test", "suite", "--no-fail-fast", "--status-level", "fail",
            "--final-status-level", "none",
        ]
        args = list(self.args)
        if runner == "nextest":
            # nextest's --profile is its own; cargo's is --cargo-profile.
            args[0] = "--cargo-profile"
        cmd, env = cargo(sub + args + self.triple, self.target_dir, self.env, self.toolchain)
        if wrapper:
            env[f"CARGO_TARGET_{TRIPLE.upper().replace('-', '_')}_RUNNER"] = " ".join(wrapper)
        return cmd, env


def leak_records_valgrind(text):
    """(blocks, [stack text]) of valgrind's definitely lost records."""
    records = []
    for match in re.finditer(
        r"([\d,]+) (?:\([\d,]+ direct, [\d,]+ indirect\) )?bytes in ([\d,]+) blocks? are definitely lost"
        r"[^\n]*\n((?:==\d+==\s+(?:at|by) [^\n]*\n)+)",
        text,
    ):
        records.append((int(match.group(2).replace(",", "")), match.group(3)))
    return records


def leak_records_lsan(text):
    records = []
    for match in re.finditer(
        r"(?:Direct|Indirect) leak of \d+ byte\(s\) in (\d+) object\(s\) allocated from:\n((?:\s+#\d+ [^\n]*\n)+)",
        text,
    ):
        records.append((int(match.group(1)), match.group(2)))
    return records


def leak_records_heaptrack(text):
    """heaptrack_print --print-leaks groups leaks by their innermost frame,
    then lists each distinct backtrace under it ("... from:"): one record per
    backtrace, the innermost frame's lines prepended."""
    section = text.split("MEMORY LEAKS", 1)[-1]
    records = []
    for group in re.split(r"\n(?=\S+ leaked over \d+ calls from\n)", section):
        head = re.match(r"\s*\S+ leaked over (\d+) calls from\n", group)
        if not head:
            continue
        parts = re.split(r"\n(?=\S+ leaked over \d+ calls from:\n)", group)
        if len(parts) == 1:
            records.append((int(head.group(1)), group))
        for sub in parts[1:]:
            calls = re.match(r"\S+ leaked over (\d+) calls from:", sub)
            records.append((int(calls.group(1)), parts[0] + sub))
    return records


def judge(records, workload):
    """What the tool said about the workload's leaks, for the table."""
    function = LEAKING_FUNCTION.get(workload)
    if function is None:
        blocks = sum(b for b, _ in records)
        return "none (right)" if blocks == 0 else f"{blocks} blocks (false)"
    mine = [(b, s) for b, s in records if function in s]
    blocks = sum(b for b, _ in mine)
    if blocks == 0:
        outer = sum(b for b, s in records if LOOP_FUNCTION[workload] in s)
        return f"{outer} leaks, no `{function}` frame" if outer else "missed"
    full = all(CALLER in s for _, s in mine)
    stack = "full stack" if full else "stack cut short"
    return f"{blocks} leaks, {stack}"


def measure_tool(tool, workload, size, builds, repeat):
    """Best wall, its RSS, the leak verdict; None when the tool can't run."""
    plain = builds["plain"].binary()
    argv = [workload, str(size)]
    if tool == "plain":
        cmd, env = [plain] + argv, {}
    elif tool == "leakcheck":
        cmd, env = [builds["leakcheck"].binary()] + argv, {}
    elif tool == "valgrind":
        cmd, env = ["valgrind", "--leak-check=full", "--num-callers=50", plain] + argv, {}
    elif tool == "heaptrack":
        out = os.path.join(TARGET, f"heaptrack-{workload}")
        cmd, env = ["heaptrack", "-o", out, plain] + argv, {}
    else:
        cmd, env = [builds["lsan"].binary()] + argv, {"LSAN_OPTIONS": "exitcode=0"}
    wall, rss, out, err = best_of(repeat, cmd, env, f"{workload} under {tool}")
    if tool == "plain":
        verdict = "—"
    elif tool == "leakcheck":
        match = re.search(r"leakcheck: leaked (\d+) blocks \d+ bytes, stack: (yes|no)", out)
        if not match:
            die(f"leakcheck's workload printed no verdict:\n{out}\n{err[-2000:]}")
        blocks, stack = int(match.group(1)), match.group(2) == "yes"
        if workload in LEAKING_FUNCTION:
            stack_text = "full stack" if stack else "stack cut short"
            verdict = f"{blocks} leaks, {stack_text}" if blocks else "missed"
        else:
            verdict = "none (right)" if blocks == 0 else f"{blocks} blocks (false)"
    elif tool == "valgrind":
        verdict = judge(leak_records_valgrind(err), workload)
    elif tool == "heaptrack":
        files = [f for f in os.listdir(TARGET) if f.startswith(f"heaptrack-{workload}")]
        data = os.path.join(TARGET, sorted(files)[-1])
        _, _, _, printed, _ = run(["heaptrack_print", "-f", data, "--print-leaks", "1",
                                   "--print-peaks", "0", "--print-allocators", "0",
                                   "--print-temporary", "0"])
        for f in files:
            os.remove(os.path.join(TARGET, f))
        records = leak_records_heaptrack(printed)
        # heaptrack does not classify: what the Rust runtime and glibc keep
        # to the end counts as leaked too. Only the leaking loops are judged.
        verdict = judge(records, workload) if workload in LEAKING_FUNCTION else "n/a (no kinds)"
    else:
        verdict = judge(leak_records_lsan(err), workload)
    return wall, rss, verdict


def measure_suite(tool, runner, builds, repeat, quick):
    if tool == "valgrind":
        build, wrapper = builds["plain"], ["valgrind", "--leak-check=full", "-q"]
    elif tool == "heaptrack":
        return None  # one heaptrack file per test process: not comparable
    else:
        build, wrapper = builds[tool], None
    cmd, env = build.suite(runner, wrapper)
    if quick:
        cmd.append("m00::")  # 10 of the 200: valgrind under nextest takes minutes
    run(cmd, env)  # warm: cargo's own checks, the page cache
    wall, rss, _, _ = best_of(repeat, cmd, env, f"the suite under {tool} ({runner})")
    return wall, rss, "—"


def available(tool, nextest):
    """None when the tool can run, else why not."""
    if tool == "valgrind" and not shutil.which("valgrind"):
        return "valgrind not installed (apt-get install valgrind)"
    if tool == "heaptrack" and not shutil.which("heaptrack"):
        return "heaptrack not installed (apt-get install heaptrack)"
    if tool == "lsan":
        probe = subprocess.run(["rustup", "run", "nightly", "rustc", "--version"],
                               capture_output=True)
        if probe.returncode != 0:
            return "no nightly toolchain (rustup toolchain install nightly)"
    if tool == "nextest" and not nextest:
        return "cargo-nextest not installed (cargo install cargo-nextest)"
    return None


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} × {model}, {platform.system()} {platform.release()}, load average {load:.1f} at start"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--profile", default="release", choices=["release", "dev", "bench"])
    parser.add_argument("--repeat", type=int, help="timed runs per cell (best is kept)")
    parser.add_argument("--tools", default=",".join(TOOLS),
                        help=f"comma-separated subset of {','.join(TOOLS)}")
    args = parser.parse_args()
    tools = [t for t in args.tools.split(",") if t]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        die(f"--tools: unknown tool(s) {', '.join(unknown)}; expected some of {', '.join(TOOLS)}")
    for needed in ("plain",):
        if needed not in tools:
            tools.insert(0, needed)
    repeat = args.repeat or (1 if args.quick else 3)
    if repeat < 1:
        die("--repeat must be at least 1")
    nextest = subprocess.run(["cargo", "nextest", "--version"], capture_output=True).returncode == 0
    skipped = {}
    for tool in list(tools):
        why = available(tool, nextest)
        if why:
            print(f"run.py: skipping {tool}: {why}", file=sys.stderr)
            skipped[tool] = why
            tools.remove(tool)

    builds = {"plain": Build("plain", args.profile)}
    if "leakcheck" in tools:
        builds["leakcheck"] = Build("leakcheck", args.profile, features=["leakcheck"])
    if "lsan" in tools:
        builds["lsan"] = Build("lsan", args.profile, toolchain="nightly",
                               rustflags="-Zsanitizer=leak")
    for build in builds.values():
        print(f"run.py: building {build.name} ({args.profile})", file=sys.stderr)
        build.build()

    rows = []
    for workload, (full, quick, what, _) in WORKLOADS.items():
        size = quick if args.quick else full
        cells = {}
        for tool in tools:
            print(f"run.py: {workload} {size} under {tool}", file=sys.stderr)
            cells[tool] = measure_tool(tool, workload, size, builds, repeat)
        rows.append((f"{workload} ({size:,} {what})", cells))
    for runner in ["test", "nextest"]:
        if runner == "nextest" and not nextest:
            skipped["nextest"] = available("nextest", nextest)
            continue
        cells = {}
        for tool in tools:
            print(f"run.py: suite under {tool} ({runner})", file=sys.stderr)
            cells[tool] = measure_suite(tool, runner, builds, repeat, args.quick)
        label = "cargo test" if runner == "test" else "cargo nextest run"
        count = 10 if args.quick else 200
        rows.append((f"{count} small tests, `{label}`", cells))

    print(f"Machine: {machine()}. Profile `{args.profile}`, best of {repeat}.")
    print()
    print("| workload | tool | wall | × plain | peak RSS | × plain | the 10 leaks |")
    print("|---|---|--:|--:|--:|--:|---|")
    for label, cells in rows:
        base = cells["plain"]
        for tool in TOOLS:
            if tool in skipped:
                print(f"| {label} | {tool} | not run | | | | {skipped[tool]} |")
                continue
            cell = cells.get(tool)
            if cell is None:
                if tool in tools:
                    print(f"| {label} | {tool} | — | | | | not comparable |")
                continue
            wall, rss, verdict = cell
            print(f"| {label} | {tool} | {wall:.2f} s | {wall / base[0]:.1f}× | "
                  f"{rss / 1024:.0f} MB | {rss / base[1]:.1f}× | {verdict} |")


if __name__ == "__main__":
    main()
