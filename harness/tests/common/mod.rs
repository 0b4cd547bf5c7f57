//! Shared by the integration tests: assertions on reports and their stacks,
//! and running one test of the current binary in a child process.
//!
//! Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use leakcheck::{Frame, Kind, Leak, Origin, Report, Status};
use leakcheck_test_support::{file_of, line_of};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// The path of the function or closure this is expanded in, as a
/// symbolised stack names it: `track_box_leak::caught::{{closure}}`.
#[allow(unused_macros)]
macro_rules! here {
    () => {{
        fn marker() {}
        let name = ::std::any::type_name_of_val(&marker);
        name.strip_suffix("::marker").unwrap_or(name)
    }};
}
#[allow(unused_imports)]
pub(crate) use here;

/// A frame's function name, `???` when it has none.
pub fn function(frame: &Frame) -> &str {
    frame.function.as_deref().unwrap_or("???")
}

/// The stack as `function (file:line)` lines, for assertion messages.
pub fn render(stack: &[Frame]) -> String {
    stack
        .iter()
        .map(|f| {
            let file = f.file.as_deref().unwrap_or("?");
            format!("  {} ({file}:{})\n", function(f), f.line.unwrap_or(0))
        })
        .collect()
}

/// The report's kinds, as (kind, blocks, bytes) in `Kind` order.
pub fn kinds(report: &Report) -> Vec<(Kind, usize, usize)> {
    let kinds = report.kinds().iter();
    kinds
        .map(|(&kind, count)| (kind, count.blocks, count.bytes))
        .collect()
}

/// The report's only leak site; fails with the report when there are others.
pub fn single_leak(report: &Report) -> &Leak {
    assert_eq!(report.leaks().len(), 1, "expected one leak site:\n{report}");
    &report.leaks()[0]
}

/// Asserts that the verdict is `blocks` blocks of `bytes` bytes leaked from
/// one site, definitely lost, made by `origin`'s `allocator`, and returns
/// that site.
pub fn assert_one_site<'r>(
    report: &'r Report,
    (blocks, bytes): (usize, usize),
    origin: Origin,
    allocator: &str,
) -> &'r Leak {
    assert_eq!(report.status(), Status::Leaked, "{report}");
    assert!(!report.is_clean(), "{report}");
    let leaked = (report.leaked_blocks(), report.leaked_bytes());
    assert_eq!(leaked, (blocks, bytes), "{report}");
    assert!(report.errors().is_empty(), "{report}");
    let leak = single_leak(report);
    assert_eq!(leak.kind, Kind::DefinitelyLost, "{report}");
    assert_eq!(
        (leak.origin, leak.allocator),
        (origin, allocator),
        "{report}"
    );
    assert_eq!((leak.blocks, leak.bytes), (blocks, bytes), "{report}");
    leak
}

/// Asserts a clean verdict after at least `allocations` allocations: the
/// checked code's blocks were seen, and all freed.
pub fn assert_clean(report: &Report, allocations: usize) {
    assert_eq!(report.status(), Status::Clean, "{report}");
    assert!(report.is_clean(), "{report}");
    assert_eq!(
        (report.leaked_blocks(), report.leaked_bytes()),
        (0, 0),
        "{report}"
    );
    assert!(report.leaks().is_empty(), "{report}");
    assert!(report.errors().is_empty(), "{report}");
    let stats = report.stats();
    assert!(stats.allocations >= allocations, "{stats:?}");
}

/// The leak site whose stack contains `function`.
pub fn leak_through<'r>(report: &'r Report, function: &str) -> &'r Leak {
    report
        .leaks()
        .iter()
        .find(|leak| leak.stack.iter().any(|f| self::function(f) == function))
        .unwrap_or_else(|| panic!("no leak site goes through `{function}`:\n{report}"))
}

/// Asserts that `frame` is `function` and, in debug builds, that it is at
/// `file:line`. `file` may be absolute (a C fixture) or relative to the
/// workspace (`file!()`): the frame's absolute path must end with it.
///
/// Release builds inline and merge code, so lines are only exact in debug.
pub fn assert_frame(frame: &Frame, function: &str, file: &str, line: u32) {
    assert_eq!(self::function(frame), function, "frame {frame:?}");
    if cfg!(debug_assertions) {
        let actual = frame
            .file
            .as_deref()
            .unwrap_or_else(|| panic!("frame without a file: {frame:?}"));
        assert!(
            Path::new(actual).ends_with(file),
            "frame {frame:?} is not in {file}"
        );
        assert_eq!(
            frame.line,
            Some(line),
            "frame {frame:?} is not at {file}:{line}"
        );
    }
}

/// Asserts that `frame` is `function` at the allocation marked `marker` in
/// the fixture sources (file and line checked in debug builds).
pub fn assert_fixture_frame(frame: &Frame, function: &str, marker: &str) {
    assert_frame(frame, function, file_of(marker), line_of(marker));
}

/// Function-name prefixes of frames below the test: libtest, std, core and
/// leakcheck itself. None may be in a report's stack.
const BELOW_THE_TEST: &[&str] = &[
    "test::",
    "<test::",
    "std::",
    "<std::",
    "core::",
    "<core::",
    "leakcheck::",
    "<leakcheck::",
    "__rust",
];

/// Asserts that the stack ends at `bottom` (the test's closure or function,
/// or a thread's start routine) with no libtest, std or harness frame in it.
pub fn assert_ends_at(leak: &Leak, bottom: &str) {
    let stack = render(&leak.stack);
    for frame in &leak.stack {
        let name = function(frame);
        assert!(
            !BELOW_THE_TEST.iter().any(|prefix| name.starts_with(prefix)),
            "frame `{name}` is below the test:\n{stack}"
        );
    }
    let last = leak
        .stack
        .last()
        .unwrap_or_else(|| panic!("empty stack in {leak:?}"));
    assert_eq!(function(last), bottom, "bottom frame:\n{stack}");
}

/// The environment variable that makes a test of this binary act as a child:
/// its value is the name of the one test that leaks on purpose.
pub const CHILD_ENV: &str = "LEAKCHECK_TEST_CHILD";

/// Whether this process was started by [`run_child`] for `test` (or by
/// [`run_binary`] with `role`). Child tests return early otherwise, so they
/// pass in a normal run.
pub fn is_child(role: &str) -> bool {
    std::env::var_os(CHILD_ENV).is_some_and(|value| value == role)
}

/// What a child process did.
#[derive(Debug)]
pub struct Child {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its stdout: libtest's progress lines.
    pub stdout: String,
    /// Its stderr: panic messages and leakcheck's warnings.
    pub stderr: String,
}

impl Child {
    /// Both streams, for assertion messages.
    pub fn output(&self) -> String {
        format!(
            "status: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// Whether [`run_binary_within`] had to kill it.
    pub fn timed_out(&self) -> bool {
        matches!(self.status.code(), Some(124 | 137))
    }

    /// Asserts that the child's one test passed, having printed `printed`,
    /// with nothing from leakcheck on stderr.
    pub fn assert_passed(&self, printed: &str) {
        let output = self.output();
        assert!(self.status.success(), "{output}");
        assert!(self.stdout.contains(printed), "{output}");
        let passed = "test result: ok. 1 passed; 0 failed";
        assert!(self.stdout.contains(passed), "{output}");
        assert!(!self.stderr.contains("leakcheck"), "{output}");
    }

    /// Asserts that the child's one test, `test`, failed. (What the test
    /// prints can split libtest's `test … FAILED` line; the list of
    /// failures after it is whole.)
    pub fn assert_failed(&self, test: &str) {
        let output = self.output();
        assert!(!self.status.success(), "{output}");
        let listed = self
            .stdout
            .lines()
            .any(|line| line.strip_prefix("    ") == Some(test));
        assert!(listed, "{test} is not among the failures:\n{output}");
        let failed = "test result: FAILED. 0 passed; 1 failed";
        assert!(self.stdout.contains(failed), "{output}");
    }
}

/// leakcheck's own settings: cleared in a child so that the parent's
/// environment cannot change what it checks.
const LEAKCHECK_VARS: &[&str] = &[
    "LEAKCHECK",
    "LEAKCHECK_REPORT_DIR",
    "LEAKCHECK_STACK_DEPTH",
    "LEAKCHECK_SUPPRESSIONS",
    "LEAKCHECK_PPROF",
    "LEAKCHECK_SHOW",
    "LEAKCHECK_MAX_SECTIONS",
    "LEAKCHECK_PROFILE_RATE",
    "LEAKCHECK_VERIFY_STACKS",
];

/// Runs this test binary with `args`, [`CHILD_ENV`] set to `role`, and `env`
/// on top of an environment cleared of leakcheck's variables and
/// `RUST_BACKTRACE`.
pub fn run_binary(args: &[&str], role: &str, env: &[(&str, &str)]) -> Child {
    let exe = std::env::current_exe().expect("the test binary's path");
    run_command(exe.to_str().unwrap(), args, role, env)
}

fn run_command(program: &str, args: &[&str], role: &str, env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(program);
    command
        .args(args)
        .env(CHILD_ENV, role)
        .env_remove("RUST_BACKTRACE");
    for var in LEAKCHECK_VARS {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("could not run {program}: {e}"));
    Child {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// [`run_binary`], killed after `seconds` (coreutils' `timeout`): a hang is
/// a failure of the test that waits for it, never a stuck CI. Check
/// [`Child::timed_out`].
pub fn run_binary_within(seconds: u32, args: &[&str], role: &str, env: &[(&str, &str)]) -> Child {
    let exe = std::env::current_exe().expect("the test binary's path");
    let limit = seconds.to_string();
    let mut timed = vec!["--kill-after=5", limit.as_str(), exe.to_str().unwrap()];
    timed.extend_from_slice(args);
    run_command("timeout", &timed, role, env)
}

/// Runs the single test `test` of this binary in a child process, alone,
/// with its output uncaptured.
pub fn run_child(test: &str, env: &[(&str, &str)]) -> Child {
    run_binary(
        &["--exact", test, "--nocapture", "--test-threads=1"],
        test,
        env,
    )
}

/// A directory of its own under cargo's scratch space for integration
/// tests, removed on drop.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// A new, empty directory named after `name`, this process and a
    /// count: tests running in parallel that pass the same name (their
    /// module's path) each get their own, so one's `Drop` cannot remove
    /// another's reports.
    pub fn new(name: &str) -> ScratchDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        ScratchDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Its path as a string, for an environment variable.
    pub fn as_str(&self) -> &str {
        self.0.to_str().expect("a UTF-8 scratch path")
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path after `JSON report: ` in a failure message (its last line:
/// `JSON report: <path>`, or the count of the sites not shown, which ends
/// with it).
pub fn json_report_path(text: &str) -> Option<PathBuf> {
    text.lines()
        .find_map(|line| line.trim().split_once("JSON report: "))
        .map(|(_, path)| PathBuf::from(path))
}

/// The failure message in a child's stderr, a line an item: from
/// leakcheck's summary line to the last line, the one that names the JSON
/// report. Fails with the output when there is none.
pub fn failure_message(child: &Child) -> Vec<&str> {
    let lines: Vec<&str> = child.stderr.lines().collect();
    let start = lines.iter().position(|l| l.starts_with("leakcheck: `"));
    let message = start.and_then(|start| {
        let len = lines[start..]
            .iter()
            .position(|l| l.contains("JSON report: "))?;
        Some(lines[start..=start + len].to_vec())
    });
    message.unwrap_or_else(|| panic!("no failure message:\n{}", child.output()))
}

/// Reads and parses a JSON report file.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}\n{text}", path.display()))
}

/// Sends `signal` to thread `target` every `every` until `stop` is set.
/// `target` must stay alive until then (a scoped thread's parent).
pub fn signal_until(
    target: libc::pthread_t,
    signal: libc::c_int,
    every: std::time::Duration,
    stop: &std::sync::atomic::AtomicBool,
) {
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        // SAFETY: the caller keeps `target` alive until `stop` is set.
        unsafe { libc::pthread_kill(target, signal) };
        std::thread::sleep(every);
    }
}

/// Installs `handler` for `signal` (`SA_RESTART`, an empty mask), failing
/// the test if `sigaction` refuses.
pub fn install_signal_handler(signal: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // The `sigaction` this binary links: leakcheck's, which wraps it.
    install_with(libc::sigaction, signal, handler);
}

/// [`install_signal_handler`] through glibc's own `sigaction`, past the one
/// leakcheck interposes: leakcheck never sees the handler (so it keeps its
/// quarantine on, which any asynchronous handler it sees turns off). Only
/// for a handler that never allocates.
pub fn install_signal_handler_past_leakcheck(
    signal: libc::c_int,
    handler: extern "C" fn(libc::c_int),
) {
    // SAFETY: dlsym with a NUL-terminated name: the definition after this
    // executable's (leakcheck's), glibc's.
    let next = unsafe { libc::dlsym(libc::RTLD_NEXT, c"sigaction".as_ptr()) };
    assert!(!next.is_null(), "glibc's sigaction");
    // SAFETY: glibc's `sigaction`, whose signature this is.
    let glibc: Sigaction = unsafe { std::mem::transmute(next) };
    install_with(glibc, signal, handler);
}

type Sigaction =
    unsafe extern "C" fn(libc::c_int, *const libc::sigaction, *mut libc::sigaction) -> libc::c_int;

fn install_with(sigaction: Sigaction, signal: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: a zeroed sigaction is valid; the handler is a plain extern "C"
    // fn taking the signal number, installed without SA_SIGINFO; `sigaction`
    // is a `sigaction(2)`.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(sigaction(signal, &action, std::ptr::null_mut()), 0);
    }
}
