//! Running checked code: a scope around a body run on a thread of its own.
//!
//! The body runs on a fresh thread, named like the caller's (so libtest's
//! test name shows in panic messages), inheriting the caller's output
//! capture, and is joined before the verdict. Joining first means the body
//! thread's thread-locals — Rust `thread_local!` values with `Drop`, C state
//! freed by `pthread_key_create` destructors, std's destructor lists — have
//! been freed by the time blocks are counted, so they are never reported.

use crate::config;
use crate::error::Error;
use crate::report::suppress::Suppression;
use crate::report::{self, Outcome, Report, ReportError, Stats};
use crate::stacks::frame_marker;
use crate::sys::mapvec::MapVec;
use crate::track::hooks;
use crate::track::scope::{self, Untracked};
use crate::track::table::{self, Block};
use crate::verdict::{Kind, KindSet, Survivors};
use std::panic;
use std::path::{Path, PathBuf};
use std::time::Instant;

// What a test's panics and leaks make of its outcome.
mod outcome;

/// Options of one check. Built by the attribute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    strict: bool,
    fail_on: Option<&'static str>,
    suppressions: &'static [Suppression],
    crate_dir: Option<&'static str>,
    show: Option<&'static str>,
    max_sections: Option<usize>,
    unclassified: bool,
    caller_is_test: bool,
    /// Whether a body that panics is checked too (`check_panicking = false`
    /// turns it off for one test).
    skip_panicking: bool,
    /// The body closure's type path (`crate::module::test::{{closure}}`):
    /// closures written inside the body are named below it, which tells
    /// this check's work from another's on a thread they share.
    body: Option<&'static str>,
}

impl Options {
    /// The defaults: lost blocks fail, still-reachable ones do not.
    pub const fn new() -> Self {
        Options {
            strict: false,
            fail_on: None,
            suppressions: &[],
            crate_dir: None,
            show: None,
            max_sections: None,
            unclassified: false,
            caller_is_test: false,
            skip_panicking: false,
            body: None,
        }
    }

    /// Names the body's code after `B`'s type, unless it is named already.
    fn body_of<B>(mut self) -> Self {
        if self.body.is_none() {
            self.body = Some(std::any::type_name::<B>());
        }
        self
    }

    /// Skips classification: every surviving block is definitely lost. Only
    /// for measuring what classification costs.
    pub const fn unclassified(mut self) -> Self {
        self.unclassified = true;
        self
    }

    /// Still-reachable blocks fail too.
    pub const fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    /// The kinds that fail the check, in valgrind's words
    /// (`definite,indirect,possible,reachable`, `all`, `none`).
    pub const fn fail_on(mut self, kinds: &'static str) -> Self {
        self.fail_on = Some(kinds);
        self
    }

    /// Suppressions for this check only (the attribute's `suppress = …`).
    pub const fn suppress(mut self, suppressions: &'static [Suppression]) -> Self {
        self.suppressions = suppressions;
        self
    }

    /// The kinds that fail: `fail_on`, else all with `strict`, else the
    /// lost ones. A `fail_on` the attribute did not validate (it is only
    /// reachable through this hidden API) fails loudly.
    fn failing(&self) -> KindSet {
        match self.fail_on {
            Some(words) => KindSet::parse(words)
                .unwrap_or_else(|e| panic!("leakcheck: `fail_on = \"{words}\"`: {e}")),
            None if self.strict => KindSet::ALL,
            None => KindSet::DEFAULT_FAILING,
        }
    }

    /// Whether a test body that panics is checked too (the default) or its
    /// panic is passed on unchecked, as before leakcheck checked panicking
    /// tests (the attribute's `check_panicking = false`).
    pub const fn check_panicking(mut self, check: bool) -> Self {
        self.skip_panicking = !check;
        self
    }

    /// The test crate's directory, where `leakcheck.supp` is looked for.
    pub const fn crate_dir(mut self, dir: &'static str) -> Self {
        self.crate_dir = Some(dir);
        self
    }

    /// The kinds the text report gives sections of, in valgrind's words
    /// (its `--show-leak-kinds`; the attribute's `show = …`).
    pub const fn show(mut self, kinds: &'static str) -> Self {
        self.show = Some(kinds);
        self
    }

    /// At most this many sections in the text report (the attribute's
    /// `max_sections = …`).
    pub const fn max_sections(mut self, sections: usize) -> Self {
        self.max_sections = Some(sections);
        self
    }

    /// What the text report shows: `LEAKCHECK_SHOW` and
    /// `LEAKCHECK_MAX_SECTIONS` when set (the reader's choice at run time),
    /// else the attribute's, else the defaults. A `show` the attribute did
    /// not validate fails loudly, as `fail_on` does.
    fn shown(&self, config: &config::Config) -> report::Shown {
        let kinds = config.show.or_else(|| {
            self.show.map(|words| {
                KindSet::parse(words)
                    .unwrap_or_else(|e| panic!("leakcheck: `show = \"{words}\"`: {e}"))
            })
        });
        report::Shown {
            kinds,
            sections: config
                .max_sections
                .or(self.max_sections)
                .unwrap_or(report::DEFAULT_SECTIONS),
            workspace_from: self.crate_dir,
        }
    }
}

/// Runs `f` on a thread of its own with every heap allocation it (and the
/// threads it creates) makes recorded, and reports what it left behind.
///
/// The closure runs on a new thread, which is why it must be `Send`. A panic
/// in `f` is resumed on the caller after the thread is joined. No JSON file is
/// written; [`Report::to_json`] gives the same JSON a `#[leak_checked]` test
/// writes.
///
/// ```
/// let report = leakcheck::check(|| {
///     let leaked: &'static mut [u8] = Box::leak(vec![0u8; 64].into_boxed_slice());
///     std::hint::black_box(leaked);
/// });
/// assert!(!report.is_clean());
/// assert_eq!(report.leaked_blocks(), 1);
/// assert_eq!(report.leaked_bytes(), 64);
/// assert_eq!(report.leaks()[0].origin, leakcheck::Origin::Rust);
/// ```
pub fn check<F: FnOnce() + Send>(f: F) -> Report {
    let name = thread_name().unwrap_or_else(|| "check".to_owned());
    let options = Options::new().body_of::<F>();
    match run(name, options.check_panicking(false), f) {
        Ok((_, Some(report))) => report,
        Ok((_, None)) => unreachable!("a check resumes its body's panic"),
        Err(error) => panic!("{error}"),
    }
}

/// [`check`] with options: for the benches and the attribute's tests.
#[doc(hidden)]
pub fn check_with<F: FnOnce() + Send>(options: Options, f: F) -> Report {
    let name = thread_name().unwrap_or_else(|| "check".to_owned());
    match run(name, options.body_of::<F>().check_panicking(false), f) {
        Ok((_, Some(report))) => report,
        Ok((_, None)) => unreachable!("a check resumes its body's panic"),
        Err(error) => panic!("{error}"),
    }
}

/// Runs a `#[leak_checked]` test body: what the attribute expands to.
///
/// A leak fails the test with the report printed once on stderr and a
/// panic that runs no panic hook (so no backtrace into the harness follows
/// it, whatever `RUST_BACKTRACE` says); its payload is the report's text,
/// for a `#[should_panic(expected = …)]` libtest checks itself. A body that
/// panics is checked too (unless `check_panicking = false`): its panic is
/// passed on after the leak report, if it leaked.
#[doc(hidden)]
#[track_caller]
pub fn run_test<R: Send, B: FnOnce() -> R + Send>(
    fn_name: &'static str,
    options: Options,
    body: B,
) -> R {
    let (result, failure) = run_checked_test(fn_name, options.body_of::<B>(), body);
    match (result, failure) {
        (Ok(value), None) => value,
        (Ok(_), Some(report)) => outcome::fail(report),
        (Err(payload), failure) => {
            if let Some(report) = failure {
                outcome::print(&report);
            }
            panic::resume_unwind(payload)
        }
    }
}

/// Runs a `#[leak_checked]` `#[should_panic]` test body: the attribute
/// takes `#[should_panic]` over, since a test that panicked as expected but
/// leaked must fail, and libtest passes every test that panics.
///
/// The test passes when the body panics as expected (a string payload
/// containing `expected`, when given) and leaks nothing, or when the body
/// returns and the leak report is the expected failure (it contains
/// `expected`). Anything else fails with libtest's words and the report.
#[doc(hidden)]
#[track_caller]
pub fn run_test_should_panic<B: FnOnce() + Send>(
    fn_name: &'static str,
    options: Options,
    expected: Option<&'static str>,
    body: B,
) {
    let (result, failure) = run_checked_test(fn_name, options.body_of::<B>(), body);
    if let Some(message) = outcome::should_panic(result, failure, expected) {
        outcome::fail(message)
    }
}

/// Runs a test body under a check, writing its JSON report: what the body
/// did (its value or its panic, untouched) and the report's text when the
/// check failed. With `LEAKCHECK=off` the body runs unchecked.
#[track_caller]
fn run_checked_test<R: Send, B: FnOnce() -> R + Send>(
    fn_name: &'static str,
    options: Options,
    body: B,
) -> (std::thread::Result<R>, Option<String>) {
    match config::enabled() {
        Ok(true) => {}
        Ok(false) => return (panic::catch_unwind(panic::AssertUnwindSafe(body)), None),
        Err(error) => panic!("{error}"),
    }
    let config = match config::get() {
        Ok(config) => config,
        Err(error) => panic!("{error}"),
    };
    let name = thread_name().unwrap_or_else(|| fn_name.to_owned());
    let options = Options {
        caller_is_test: true,
        ..options
    };
    let (result, mut report) = match run(name, options, body) {
        Ok((result, Some(report))) => (result, report),
        Ok((result, None)) => return (result, None),
        Err(error) => panic!("{error}"),
    };
    let _harness = Untracked::harness();
    #[cfg(unix)]
    let _signals = crate::sys::signals::Blocked::asynchronous();
    match write_json(&report, config.report_dir.as_deref()) {
        Ok(path) => {
            #[cfg(feature = "pprof")]
            if config.pprof {
                if let Err(error) = write_pprof(&report, &path) {
                    eprintln!("{error} (the verdict below is unaffected)");
                }
            }
            report.set_json_path(path)
        }
        Err(error) => eprintln!("{error} (the verdict below is unaffected)"),
    }
    let failure = (!report.is_clean()).then(|| report.to_string());
    (result, failure)
}

/// Runs a `#[leak_checked]` test body that returns a value (`Result<(), E>`,
/// ...): the value is turned into an exit code on the body's thread, so it
/// need not be `Send`, and libtest judges the exit code as it would the value.
#[doc(hidden)]
#[track_caller]
pub fn run_test_report<T: std::process::Termination, B: FnOnce() -> T + Send>(
    fn_name: &'static str,
    options: Options,
    body: B,
) -> std::process::ExitCode {
    let options = options.body_of::<B>();
    run_test(fn_name, options, move || body().report())
}

fn thread_name() -> Option<String> {
    let _harness = Untracked::harness();
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .map(str::to_owned)
}

/// The body paths of every check this process has started: a leak on a
/// thread a check's scope reached (a pool it started) whose stack runs
/// through another check's body code is that check's work.
struct Bodies;

/// A set, not a list: every check registers its body, and a search of a
/// list made a suite's checks quadratic in its number of tests (9,000
/// instructions a check at 200 tests, unoptimised).
static BODIES: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

impl Bodies {
    fn register(body: Option<&'static str>) -> Bodies {
        if let Some(body) = body {
            let mut bodies = BODIES.lock().unwrap_or_else(|e| e.into_inner());
            bodies.insert(body);
        }
        Bodies
    }

    /// Every registered body but `own`.
    fn others(&self, own: Option<&'static str>) -> Vec<&'static str> {
        let bodies = BODIES.lock().unwrap_or_else(|e| e.into_inner());
        bodies.iter().copied().filter(|&b| Some(b) != own).collect()
    }
}

/// Runs `body` under a check. A body that panics is checked too, its panic
/// returned with the report, unless `options` skip panicking bodies: then
/// the panic is resumed here, unchecked. A panic whose payload is not a
/// string is returned without a report (its blocks are the payload's).
fn run<R: Send>(
    name: String,
    options: Options,
    body: impl FnOnce() -> R + Send,
) -> Result<(std::thread::Result<R>, Option<Report>), Error> {
    hooks::init();
    // Blocks this thread allocated since its last check are the caller's
    // when the caller is user code (`check`); a `#[leak_checked]` test's
    // caller is libtest, whose blocks are no roots of the test's.
    let caller_epoch = if options.caller_is_test {
        0
    } else {
        scope::current_epoch()
    };
    let harness = Untracked::harness();
    let config = match config::get() {
        Ok(config) => config,
        Err(error) => panic!("{error}"),
    };
    install_panic_hook();
    let bodies = Bodies::register(options.body);
    // This thread runs only leakcheck's own code, which allocates through
    // glibc directly (starting the body's thread, the verdict, the report):
    // a signal handler that allocates must not land in it (`sys::signals`).
    // The body gets the caller's mask back.
    #[cfg(unix)]
    let signals = crate::sys::signals::Blocked::asynchronous();
    #[cfg(unix)]
    let callers_mask = signals.saved();
    #[cfg(target_os = "linux")]
    crate::track::threads::mark_harness(0);
    let visible = hooks::c_allocations_visible();
    let dropped_before = table::dropped();
    // Every block in the table from here to the verdict, which reads it all
    // (the blocks of no check are the verdict's roots).
    let caches_closed = crate::track::cache::Closed::new();
    // Every block of the check that the quarantine holds comes after this,
    // and stays held until the pin is dropped after the verdict.
    #[cfg(leakcheck_interpose)]
    let held = crate::track::quarantine::pin();
    #[cfg(leakcheck_interpose)]
    let held_since = held.since;
    #[cfg(not(leakcheck_interpose))]
    let held_since = 0;
    let scope = scope::begin().ok_or(Error::TooManyScopes)?;
    let started = Instant::now();
    let joined = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name(name.clone())
            .spawn_scoped(s, move || {
                #[cfg(unix)]
                crate::sys::signals::restore(callers_mask);
                let result = run_body(scope, body);
                // The body thread is leakcheck's, not the test's: its exit
                // (thread-local destructors, glibc freeing its caches) must
                // not be where an allocating signal handler lands.
                #[cfg(unix)]
                std::mem::forget(crate::sys::signals::Blocked::asynchronous());
                result
            })
            .map(|handle| handle.join())
    });
    // The payload of a body's panic was boxed by std on the body's thread,
    // in the scope: a copy made here (untracked) replaces it, and the
    // original is freed before the verdict counts what is live.
    let mut panic_checked = false;
    let joined = match joined {
        Ok(Err(payload)) if !options.skip_panicking => match outcome::detach(payload) {
            Ok(copy) => {
                panic_checked = true;
                Ok(Err(copy))
            }
            Err(payload) => {
                eprintln!("{}", outcome::not_checked(&name));
                Ok(Err(payload))
            }
        },
        joined => joined,
    };
    scope::wait_for_threads(
        scope,
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(10),
    );
    let elapsed = started.elapsed();
    let counters = scope::end(scope);
    let result = match joined {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(payload)) if panic_checked => Err(payload),
        Ok(Err(payload)) if options.skip_panicking => {
            drop(harness);
            panic::resume_unwind(payload)
        }
        Ok(Err(payload)) => return Ok((Err(payload), None)),
        Err(spawn_error) => {
            panic!("leakcheck: could not start a thread for `{name}`: {spawn_error}")
        }
    };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let blocks = if counters.live_blocks == 0 {
        Survivors::default()
    } else {
        classified(
            scope,
            counters.live_blocks,
            options,
            caller_epoch,
            &mut errors,
        )
    };
    let misuse = misused(scope, held_since, &blocks);
    #[cfg(leakcheck_interpose)]
    if !blocks.is_empty() {
        quarantine_warnings(held_since, &mut warnings);
    }
    // What this check freed is no longer needed for it (writes after free
    // were looked for just now): the quarantine may give it back.
    #[cfg(leakcheck_interpose)]
    drop(held);
    drop(caches_closed);
    if !blocks.is_empty() && counters.unwaited_threads > 0 {
        warnings.push(ReportError {
            kind: "threads_not_waited_for",
            message: format!(
                "{} threads of this test were not waited for (more than {} threads of running \
                 checks were alive at once); what their thread-locals hold may be reported as \
                 leaks",
                counters.unwaited_threads,
                scope::THREAD_CAPACITY
            ),
        });
    }
    #[cfg(target_os = "linux")]
    if !blocks.is_empty() && crate::track::threads::unregistered() > 0 {
        warnings.push(ReportError {
            kind: "threads_unregistered",
            message: format!(
                "{} threads could not be registered (more than 4096 alive at once); their stacks \
                 were not searched, so blocks only they hold may be reported lost",
                crate::track::threads::unregistered()
            ),
        });
    }
    if !blocks.is_empty() && !cfg!(target_os = "linux") && !options.unclassified {
        warnings.push(ReportError {
            kind: "leaks_unclassified",
            message: "leak kinds are not classified on this platform (leakcheck scans memory on \
                      Linux only): every block the check left live is reported definitely lost"
                .to_owned(),
        });
    }
    if !visible && !cfg!(leakcheck_interpose) {
        warnings.push(ReportError {
            kind: "c_allocations_untracked",
            message: "C allocations are not tracked on this platform (leakcheck interposes malloc \
                      on Linux with glibc only); Rust allocations were checked"
                .to_owned(),
        });
    } else if !visible {
        errors.push(ReportError {
            kind: "c_allocations_invisible",
            message: "C allocations are invisible to leakcheck in this process: something replaced the \
                      executable's malloc (valgrind does; so does a sanitizer runtime). Rust allocations \
                      were still checked. Run without that tool, or set LEAKCHECK=off while using it."
                .to_owned(),
        });
    }
    match crate::track::global::rust_visibility() {
        crate::track::global::RustVisibility::Tracked => {}
        crate::track::global::RustVisibility::AsC => warnings.push(ReportError {
            kind: "rust_allocations_seen_as_c",
            message: "Rust allocations reach leakcheck only through the C hooks: this binary's \
                      #[global_allocator] is not wrapped in leakcheck::Tracked, so Rust blocks are \
                      reported as C malloc blocks. Wrap it (`static A: leakcheck::Tracked<System> = \
                      leakcheck::Tracked::new(System);`) or turn leakcheck's default \
                      `global-allocator` feature back on."
                .to_owned(),
        }),
        crate::track::global::RustVisibility::Invisible => errors.push(ReportError {
            kind: "rust_allocations_invisible",
            message: "Rust allocations are invisible to leakcheck: this binary's #[global_allocator] \
                      is not wrapped in leakcheck::Tracked and does not use malloc, so no Rust block \
                      was checked. Wrap it (`#[global_allocator] static A: \
                      leakcheck::Tracked<YourAllocator> = leakcheck::Tracked::new(YourAllocator);`) or \
                      turn leakcheck's default `global-allocator` feature back on."
                .to_owned(),
        }),
    }
    if table::dropped() != dropped_before {
        errors.push(ReportError {
            kind: "untracked_blocks",
            message:
                "the kernel refused memory for leakcheck's block table, so some blocks were not \
                      recorded; the verdict may miss leaks"
                    .to_owned(),
        });
    }
    if config.pprof && options.caller_is_test && !cfg!(feature = "pprof") {
        warnings.push(ReportError {
            kind: "pprof_unavailable",
            message: "LEAKCHECK_PPROF is set, but this leakcheck was built without its `pprof` \
                      feature, so no profile is written: enable it (`leakcheck = { version = \
                      \"0.1\", features = [\"pprof\"] }`), or run `cargo leakcheck summary \
                      --pprof FILE` over the JSON reports"
                .to_owned(),
        });
    }
    let (suppressions, malformed) = crate::report::suppress::for_check(
        config.suppressions.as_deref(),
        options.crate_dir,
        options.suppressions,
    );
    errors.extend(malformed.into_iter().map(|message| ReportError {
        kind: "suppressions",
        message,
    }));
    // The report symbolises, and the `backtrace` crate moves values built
    // on this stack into its static cache, uninitialised bytes and all:
    // what lies below here (the classifier's copies of scanned words, the
    // test's own frames from before the check) would become a root naming
    // glibc addresses that later checks' blocks get. Zeroed first.
    #[cfg(target_os = "linux")]
    if !hooks::malloc_replaced() {
        crate::track::threads::wipe_dead_stack(crate::sys::thread::stack_bounds().0);
    }
    let report = report::build(Outcome {
        test: name,
        body: options.body,
        // Read only to charge a surviving block to another check's body.
        others: if blocks.is_empty() {
            Vec::new()
        } else {
            bodies.others(options.body)
        },
        failing: options.failing(),
        shown: options.shown(config),
        blocks,
        stats: Stats {
            allocations: counters.allocations,
            frees: counters.frees,
            peak_live_bytes: counters.peak_live_bytes,
            duration_ms: elapsed.as_secs_f64() * 1e3,
        },
        suppressions,
        errors,
        warnings,
        misuse,
    });
    #[cfg(unix)]
    drop(signals);
    drop(harness);
    scope::next_epoch();
    Ok((result, Some(report)))
}

/// What a check whose blocks survive should know about the quarantine:
/// whether freed addresses were handed out again while it ran, so that a
/// stale copy of one (in a global, another block's spare bytes) can make a
/// leaked block at that address look still reachable or possibly lost.
#[cfg(leakcheck_interpose)]
fn quarantine_warnings(held_since: u64, warnings: &mut Vec<ReportError>) {
    use crate::track::quarantine;
    if crate::track::hooks::async_handlers_installed() {
        warnings.push(ReportError {
            kind: "quarantine_off",
            message: "a handler for an asynchronous signal is installed in this process, so freed \
                      blocks go back to glibc at once (held ones would make a handler that \
                      allocates deadlock far more often): a leaked block at a reused address may \
                      be reported still reachable or possibly lost"
                .to_owned(),
        });
        return;
    }
    let evicted = quarantine::evicted_since(held_since);
    if evicted > 0 {
        warnings.push(ReportError {
            kind: "quarantine_overflowed",
            message: format!(
                "{} blocks freed while this check ran went back to glibc before its verdict: \
                 the quarantine holds at most {} MiB in {} blocks, shared by the checks running \
                 at once; a leaked block at one of their addresses may be reported still \
                 reachable or possibly lost (run fewer such tests at once)",
                crate::report::thousands(usize::try_from(evicted).unwrap_or(usize::MAX)),
                quarantine::MAX_BYTES >> 20,
                crate::report::thousands(quarantine::CAPACITY)
            ),
        });
    }
}

/// The heap misuse charged to `scope` (which has ended), with what the
/// guard bytes of its live `blocks` and its blocks in the quarantine (held
/// since `held_since`) show.
fn misused(scope: u32, held_since: u64, blocks: &Survivors) -> report::misuse::MisuseInput {
    #[cfg(leakcheck_interpose)]
    {
        let taken = crate::track::misuse::take(scope, held_since, blocks.iter().map(|(b, _)| *b));
        report::misuse::MisuseInput {
            events: taken.events.iter().copied().collect(),
            dropped: taken.dropped,
        }
    }
    #[cfg(not(leakcheck_interpose))]
    {
        let _ = (scope, held_since, blocks);
        report::misuse::MisuseInput::default()
    }
}

/// The body thread's frame that everything charged to the scope runs above:
/// the scope's base frame, the last one a stack keeps. The body may be
/// inlined here (release builds do); a report then cuts only this function's
/// own frame at that address and keeps the body's inlined frames.
#[inline(never)]
fn run_body<R>(scope: u32, body: impl FnOnce() -> R) -> R {
    let base = frame_marker();
    #[cfg(target_os = "linux")]
    crate::track::threads::mark_harness(scope);
    let previous = scope::enter_body(scope, base);
    // Left also when the body panics: the thread's exit is not the test's.
    let _leave = LeaveThread(previous);
    let result = body();
    std::hint::black_box(base);
    result
}

/// Takes the body's thread out of its scope when dropped, the body having
/// returned or unwound, after wiping the dead part of its stack below.
struct LeaveThread(scope::Current);

impl Drop for LeaveThread {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if !hooks::malloc_replaced() {
            crate::track::threads::wipe_dead_stack(scope::stack_low());
        }
        scope::leave_thread(self.0);
    }
}

/// The scope's surviving blocks with their kinds, and for an indirectly
/// lost block the address of the definitely lost one it hangs off.
/// Collected into mapped pages, not a heap block: live heap blocks are
/// roots, and this one would hold the address of every block looked for.
fn classified(
    scope: u32,
    expected: usize,
    options: Options,
    caller_epoch: u32,
    errors: &mut Vec<ReportError>,
) -> Survivors {
    let mut blocks = MapVec::<Block>::new();
    let mut room = expected + 64;
    loop {
        if !blocks.reserve(room) {
            errors.push(ReportError {
                kind: "classification_failed",
                message: "no memory to collect the surviving blocks".to_owned(),
            });
            return Survivors::default();
        }
        let spare = blocks.spare();
        let found = table::collect_scope(scope, expected, spare);
        if found <= spare.len() {
            // SAFETY: collect_scope wrote the first `found` elements.
            unsafe { blocks.set_len(found) };
            break;
        }
        room = found + 64;
    }
    #[cfg(target_os = "linux")]
    if !options.unclassified {
        match crate::verdict::classify::classify(scope, &mut blocks, caller_epoch) {
            Ok((kinds, roots)) => return Survivors::new(blocks, kinds, roots),
            Err(failed) => errors.push(ReportError {
                kind: "classification_failed",
                message: format!(
                    "leaks could not be classified ({}); every block is reported as definitely lost",
                    failed.0
                ),
            }),
        }
    }
    let _ = options;
    Survivors::all(blocks, Kind::DefinitelyLost).unwrap_or_else(|| {
        errors.push(ReportError {
            kind: "classification_failed",
            message: "no memory for the kinds of the surviving blocks".to_owned(),
        });
        Survivors::default()
    })
}

/// Keeps what the panic machinery allocates (the message, std's backtrace
/// caches under `RUST_BACKTRACE`) out of every scope, and out of the roots:
/// std's symbolisation caches keep stale addresses of what they freed (and
/// leakcheck's own report panics with `RUST_BACKTRACE` set fill them).
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::thread::panicking() {
        return;
    }
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let _runtime = Untracked::harness();
            previous(info);
        }));
    });
}

/// Where reports go: `$LEAKCHECK_REPORT_DIR`, else `<target dir>/leakcheck`.
fn report_dir(configured: Option<&Path>) -> &Path {
    if let Some(dir) = configured {
        return dir;
    }
    // The executable and its directories do not move while it runs: found
    // once, not at every report (three `readlink`s and a `stat` a level).
    static DEFAULT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(default_report_dir)
}

fn default_report_dir() -> PathBuf {
    let exe = crate::config::exe().unwrap_or(Path::new(""));
    // cargo marks its target directory with CACHEDIR.TAG.
    let target = exe
        .ancestors()
        .skip(1)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf);
    let fallback = || {
        // <target>/<profile>/deps/<binary>
        exe.parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir)
    };
    target.unwrap_or_else(fallback).join("leakcheck")
}

/// `<binary>.<test path with :: as .>.json`: unique per test binary (cargo's
/// binary names carry a hash) and test.
fn report_file_name(test: &str) -> String {
    static BINARY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let binary = BINARY.get_or_init(|| {
        let name = crate::config::exe()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        sanitize(name.as_deref().unwrap_or("test"))
    });
    // One buffer: unoptimised (a user's dev profile), `format!` and the
    // sanitised name's own string were 10,000 instructions a report.
    let mut name = Vec::with_capacity(binary.len() + test.len() + 6);
    name.extend_from_slice(binary.as_bytes());
    name.push(b'.');
    sanitize_into(&mut name, test);
    name.extend_from_slice(b".json");
    // Only the binary's sanitised name and ASCII bytes were pushed.
    String::from_utf8(name).unwrap_or_default()
}

/// A test path or binary name as part of a file name: `::` as `.`, anything
/// but ASCII letters, digits, `.`, `-` and `_` as `_` (one a character).
/// A loop over the bytes: unoptimised (a user's dev profile), `replace`
/// and a `chars().map().collect()` were 48,000 instructions a report.
fn sanitize(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    sanitize_into(&mut out, s);
    // Only ASCII bytes were pushed.
    String::from_utf8(out).unwrap_or_default()
}

/// [`sanitize`], appended to `out`.
fn sanitize_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b == b':' && i < bytes.len() && bytes[i] == b':' {
            out.push(b'.');
            i += 1;
        } else if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            out.push(b);
        } else if b & 0xc0 != 0x80 {
            // A character's first byte (UTF-8 continuation bytes are
            // 0b10xxxxxx): one `_` for the whole character.
            out.push(b'_');
        }
    }
}

fn write_json(report: &Report, configured: Option<&Path>) -> Result<PathBuf, Error> {
    // The directory this process last made or found: checked and created
    // once, not at every report; a write that finds it gone makes it again.
    static READY: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let dir = report_dir(configured);
    // One buffer of the right size: `Path::join` copies the directory, then
    // grows the copy (two allocations and a reallocation a report).
    let name = report_file_name(report.test());
    let mut path = PathBuf::with_capacity(dir.as_os_str().len() + 1 + name.len());
    path.push(dir);
    path.push(name);
    let json = report.to_json();
    let ready = || READY.lock().unwrap_or_else(|e| e.into_inner());
    if ready().as_deref() == Some(dir) {
        match write_whole(&path, json.as_bytes()) {
            Err(Error::ReportDir { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            written => return written.map(|()| path),
        }
    }
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::ReportDir { path, source }
    };
    if dir.exists() && !dir.is_dir() {
        return Err(Error::ReportDir {
            path: dir.to_owned(),
            source: std::io::Error::other("it exists and is not a directory"),
        });
    }
    std::fs::create_dir_all(dir).map_err(failed(dir))?;
    write_whole(&path, json.as_bytes())?;
    *ready() = Some(dir.to_owned());
    Ok(path)
}

/// Writes `bytes` aside and moves them into place, so a CI step reading
/// reports never sees half a file (the same test may run in several
/// processes), nor no file where an earlier run left one.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let partial = path.parent().and_then(spare::take).unwrap_or_else(|| {
        // Unique in the process too: a spare keeps the name it was made
        // with, whatever it is written for later.
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let made = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let extension = path.extension().unwrap_or_default().to_string_lossy();
        let pid = std::process::id();
        path.with_extension(format!("{extension}.{pid}.{made}.partial"))
    });
    if let Err(source) = write_into(&partial, bytes) {
        let _ = std::fs::remove_file(&partial);
        return Err(Error::ReportDir {
            path: partial,
            source,
        });
    }
    if exchange(&partial, path) {
        // `partial` now names the earlier report: the next report is
        // written into it.
        spare::keep(partial);
        return Ok(());
    }
    std::fs::rename(&partial, path).map_err(|source| {
        let _ = std::fs::remove_file(&partial);
        Error::ReportDir {
            path: path.to_owned(),
            source,
        }
    })
}

/// Writes `bytes` over what `path` held (creating it if need be) and cuts
/// it to their length: an existing file is not truncated to nothing first,
/// which would make ext4 write the new data out at `close`.
fn write_into(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.write_all(bytes)?;
    file.set_len(bytes.len() as u64)
}

/// Where files cannot be swapped, nothing is kept.
#[cfg(not(all(target_os = "linux", any(target_env = "gnu", target_env = "musl"))))]
mod spare {
    use std::path::{Path, PathBuf};

    pub(super) fn take(_dir: &Path) -> Option<PathBuf> {
        None
    }

    pub(super) fn keep(path: PathBuf) {
        let _ = std::fs::remove_file(path);
    }
}

/// The file an earlier report was swapped out into: this process's, in the
/// report directory. The next report is written into it, so a report costs
/// no file creation and no unlink (on ext4 those were most of its cost);
/// it is removed at exit.
#[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
mod spare {
    use std::ffi::CString;
    use std::path::{Path, PathBuf};
    use std::sync::{Mutex, Once, TryLockError};

    struct Spare {
        /// The process that made it: a fork child leaves its parent's alone.
        pid: u32,
        path: PathBuf,
        /// `path` for `unlink` at exit, made beforehand.
        c_path: CString,
    }

    static SPARE: Mutex<Option<Spare>> = Mutex::new(None);

    /// This process's spare file in `dir`, if it has one; a spare in
    /// another directory is removed.
    pub(super) fn take(dir: &Path) -> Option<PathBuf> {
        let spare = SPARE.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        if spare.pid != std::process::id() {
            return None;
        }
        if spare.path.parent() == Some(dir) {
            return Some(spare.path);
        }
        let _ = std::fs::remove_file(&spare.path);
        None
    }

    /// Keeps `path` (which holds a report no longer in use) for the next
    /// report, or removes it if one is kept already.
    pub(super) fn keep(path: PathBuf) {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
            let _ = std::fs::remove_file(&path);
            return;
        };
        let pid = std::process::id();
        let previous = SPARE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(Spare { pid, path, c_path });
        if let Some(previous) = previous.filter(|p| p.pid == pid) {
            let _ = std::fs::remove_file(&previous.path);
        }
        static AT_EXIT: Once = Once::new();
        AT_EXIT.call_once(|| {
            // SAFETY: registers a function that takes no arguments and only
            // unlinks a path; a failed registration leaves one file behind.
            unsafe { libc::atexit(remove_at_exit) };
        });
    }

    /// Removes the spare when the process exits. A thread that holds the
    /// lock meanwhile (exit while a report is written) is not waited for:
    /// the spare is then left behind.
    extern "C" fn remove_at_exit() {
        let guard = match SPARE.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        if let Some(spare) = guard.as_ref().filter(|s| s.pid == std::process::id()) {
            // SAFETY: a NUL-terminated path that the guard keeps alive.
            unsafe { libc::unlink(spare.c_path.as_ptr()) };
        }
    }
}

/// Swaps the files `a` and `b` atomically (`renameat2` with
/// `RENAME_EXCHANGE`); false where `b` does not exist yet or the file
/// system cannot. Replacing a recently written file by `rename` makes ext4
/// write the new file's data out first (its `auto_da_alloc`), which
/// measured 2–3 ms a report against 40 µs for the swap and an unlink: most
/// of a small test's time.
#[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
fn exchange(a: &Path, b: &Path) -> bool {
    // NUL-terminated on the stack, not as `CString`s: unoptimised, the two
    // were two allocations and 9,000 instructions a report.
    let mut a_buf = std::mem::MaybeUninit::uninit();
    let mut b_buf = std::mem::MaybeUninit::uninit();
    let (Some(a), Some(b)) = (c_path(a, &mut a_buf), c_path(b, &mut b_buf)) else {
        return false;
    };
    // SAFETY: both are NUL-terminated paths in buffers that outlive the
    // call; renameat2 only reads them.
    let swapped =
        unsafe { libc::renameat2(libc::AT_FDCWD, a, libc::AT_FDCWD, b, libc::RENAME_EXCHANGE) };
    swapped == 0
}

/// Room for a path and its NUL: Linux's `PATH_MAX`, which no path the
/// kernel takes exceeds.
#[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
const PATH_BYTES: usize = 4096;

/// `path` NUL-terminated in `buf` (left uninitialised by the caller:
/// zeroing 4 KiB twice was most of a swap); `None` if it holds a NUL or
/// does not fit (the kernel would refuse it: the caller falls back to
/// `rename`, which reports why).
#[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
fn c_path(
    path: &Path,
    buf: &mut std::mem::MaybeUninit<[u8; PATH_BYTES]>,
) -> Option<*const libc::c_char> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let n = bytes.len();
    if n >= PATH_BYTES {
        return None;
    }
    let at = buf.as_mut_ptr().cast::<u8>();
    // SAFETY: `bytes` is `n` readable bytes; libc's `memchr` and `memcpy`
    // (not the slice methods, which run unoptimised here) read them and
    // write them and the NUL, `n + 1 <= PATH_BYTES` bytes, into `buf`.
    unsafe {
        if !libc::memchr(bytes.as_ptr().cast(), 0, n).is_null() {
            return None;
        }
        libc::memcpy(at.cast(), bytes.as_ptr().cast(), n);
        at.wrapping_add(n).write(0);
    }
    Some(at.cast_const().cast())
}

#[cfg(not(all(target_os = "linux", any(target_env = "gnu", target_env = "musl"))))]
fn exchange(_a: &Path, _b: &Path) -> bool {
    false
}

/// `LEAKCHECK_PPROF=1`: the failing groups as `<report>.pb.gz` beside the
/// JSON report `json`; a profile left by an earlier leaking run of a test
/// that no longer leaks is removed.
#[cfg(feature = "pprof")]
fn write_pprof(report: &Report, json: &Path) -> Result<(), Error> {
    let path = json.with_extension("pb.gz");
    match report::pprof::to_pprof(report) {
        Some(profile) => write_whole(&path, &profile),
        None => match std::fs::remove_file(&path) {
            Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::ReportDir { path, source })
            }
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_what_files_can_hold() {
        // The definition, written the short way.
        fn by_chars(s: &str) -> String {
            s.replace("::", ".")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        }
        for s in [
            "",
            "tests::a_test",
            "m::n::t0",
            "a:::b",
            "::lead",
            "trail::",
            ":",
            "x y/z\\w",
            "ünïcödé → ✓ 🦀::t",
            "tab\tnew\nline",
            "rusqlite-8e42e04f88110578",
        ] {
            assert_eq!(sanitize(s), by_chars(s), "{s:?}");
        }
        assert_eq!(sanitize("a::b c::ü"), "a.b_c._");
    }

    #[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
    #[test]
    fn exchange_swaps_files_and_refuses_what_the_kernel_would() {
        use std::os::unix::ffi::OsStrExt;
        let dir = std::env::temp_dir().join(format!("leakcheck-exchange-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.json"), dir.join("b.json"));
        std::fs::write(&a, "first").unwrap();
        std::fs::write(&b, "second").unwrap();
        assert!(exchange(&a, &b));
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "second");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "first");
        // A NUL inside, or no room for the NUL after: not passed on.
        let nul = Path::new(std::ffi::OsStr::from_bytes(b"a\0b"));
        assert!(!exchange(nul, &b));
        let long = dir.join("x".repeat(PATH_BYTES));
        assert!(!exchange(&long, &b));
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "first");
        // The longest that fits is passed whole, NUL-terminated whatever
        // the buffer held: the kernel answers for it.
        let mut buf = std::mem::MaybeUninit::new([0xffu8; PATH_BYTES]);
        let longest = "y".repeat(PATH_BYTES - 1);
        let p = c_path(Path::new(&longest), &mut buf).expect("fits with its NUL");
        // SAFETY: `c_path` returned a NUL-terminated string in `buf`.
        let back = unsafe { std::ffi::CStr::from_ptr(p) };
        assert_eq!(back.to_bytes(), longest.as_bytes());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_names_are_safe_and_distinct() {
        let a = report_file_name("ffi::tests::roundtrip");
        let b = report_file_name("ffi::tests::round_trip");
        assert!(a.ends_with(".ffi.tests.roundtrip.json"), "{a}");
        assert_ne!(a, b);
        assert!(!report_file_name("a b/c").contains('/'));
    }

    #[test]
    fn reports_replace_earlier_ones_whole_and_leave_one_spare_at_most() {
        let dir =
            std::env::temp_dir().join(format!("leakcheck-write-whole-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.json"), dir.join("b.json"));
        let long = vec![b'l'; 3000];
        for (path, bytes) in [
            (&a, &b"first"[..]),
            (&a, &long[..]),
            (&b, &b"bee"[..]),
            (&a, &b"short"[..]),
            (&b, &long[..]),
            (&b, &b"end"[..]),
        ] {
            write_whole(path, bytes).unwrap();
            assert_eq!(std::fs::read(path).unwrap(), bytes, "{}", path.display());
        }
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let partial = names.iter().filter(|n| n.ends_with(".partial")).count();
        assert!(partial <= 1, "{names:?}");
        assert_eq!(names.len(), 2 + partial, "{names:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rust_leaks_are_caught_everywhere_and_c_ones_where_hooked() {
        let report = check(|| {
            std::hint::black_box(Box::leak(Box::new([7u8; 48])));
            // SAFETY: a plain C allocation, leaked on purpose.
            std::hint::black_box(unsafe { libc::malloc(24) });
        });
        let bytes_from = |origin| -> usize {
            report
                .leaks()
                .iter()
                .filter(|l| l.origin == origin)
                .map(|l| l.bytes)
                .sum()
        };
        let (c_leaks, rust_leaks) = (
            bytes_from(crate::Origin::C),
            bytes_from(crate::Origin::Rust),
        );
        // Without leakcheck's global allocator a `Box` goes through
        // `System`, that is `malloc`: the C hooks see it, as a C block.
        let (boxed_rust, boxed_c) = if cfg!(feature = "global-allocator") {
            (48, 0)
        } else if cfg!(leakcheck_interpose) {
            (0, 48)
        } else {
            (0, 0)
        };
        assert_eq!(rust_leaks, boxed_rust, "{report}");
        if cfg!(leakcheck_interpose) {
            assert_eq!(c_leaks, 24 + boxed_c, "{report}");
            let warnings: Vec<_> = report.warnings().iter().map(|w| w.kind).collect();
            if cfg!(feature = "global-allocator") {
                assert!(warnings.is_empty(), "{report}");
            } else {
                assert_eq!(warnings, ["rust_allocations_seen_as_c"], "{report}");
            }
        } else {
            assert_eq!(c_leaks, 0, "{report}");
            assert_eq!(report.warnings()[0].kind, "c_allocations_untracked");
            assert!(report
                .to_string()
                .contains("C allocations are not tracked on this platform"));
        }
    }

    #[test]
    fn configured_dir_wins() {
        assert_eq!(report_dir(Some(Path::new("/x/y"))), Path::new("/x/y"));
        assert!(report_dir(None).ends_with("leakcheck"));
    }
}
