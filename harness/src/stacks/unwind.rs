//! A cached DWARF unwinder for x86_64: the fast path of stack capture.
//!
//! libgcc's `_Unwind_Backtrace` interprets each frame's call frame
//! information (CFI) afresh, about 100 ns a frame. But the rule that unwinds
//! a frame depends only on its instruction pointer, and a test allocates from
//! the same few call sites over and over. So the rule for each return address
//! (where the CFA is, where the return address and `rbp` are saved) is worked
//! out once with gimli from the object's `.eh_frame`, cached, and applied
//! with a few loads.
//!
//! Most of a walk is not even that: a walk that reaches a frame where the
//! stack joins one of the thread's previous walks, provably unchanged from
//! there outward, takes that walk's remaining frames ([`capture_joining`];
//! the proof is under "joining the previous walk" below).
//!
//! Safety by construction: every stack read is bounds-checked against the
//! range between the capturing frame and the scope's base frame, which is this
//! thread's live stack (a joined walk's re-read of a return address is at a
//! word a checked read of an earlier walk, with the same base, found, above
//! the join frame), so a wrong or unexpected rule can at worst end the
//! walk early, never fault. Anything unusual (no unwind info, a CFA computed
//! by expression, a signal frame) makes [`walk`] report failure, and the
//! caller falls back to libgcc for that capture.
//!
//! The walk itself — the loop over frames, the rule look-up that hits, and
//! the joining — is in `walk_core.rs`, which is also built as an optimised
//! object for unoptimised builds; this file computes the rules and hands
//! each walk what it needs.

use super::capture_core::Capture;
use super::walk_core::{self, Entry, Keep, Request, Rule, CACHE_SLOTS};
use crate::sys::relaxed::Relaxed as _;
use crate::sys::sync::{pages, SpinLock};
use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, LittleEndian, Pointer, Register, RegisterRule,
    UnwindContext, UnwindContextStorage, UnwindSection, UnwindTableRow,
};
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub(crate) use walk_core::{Walk, MAX_FRAMES};

const RBP: Register = Register(6);
const RSP: Register = Register(7);
const RA: Register = Register(16);

/// Bumped whenever code may have been unmapped (`dlclose`): an address can
/// then hold another object's code, so older entries no longer apply.
static GENERATION: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Called after `dlclose`: forget every cached rule.
pub(crate) fn code_unmapped() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

// --- the cache ------------------------------------------------------------

/// Return address → packed rule. Keys are claimed with a CAS and never
/// removed; a reader that finds its key before the rule is published just
/// computes the rule itself.
struct Cache {
    slots: AtomicUsize, // *mut [AtomicU64; 2 * CACHE_SLOTS], 0 until mapped
}

static CACHE: Cache = Cache {
    slots: AtomicUsize::new(0),
};

impl Cache {
    fn table(&self) -> Option<&'static [AtomicU64]> {
        let mut p = self.slots.load(Ordering::Acquire);
        if p == 0 {
            let mapped = pages::map_populated(CACHE_SLOTS * 16) as usize;
            if mapped == 0 {
                return None;
            }
            match self
                .slots
                .compare_exchange(0, mapped, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => p = mapped,
                Err(existing) => {
                    // SAFETY: `mapped` is ours, unused, of this size.
                    unsafe { pages::unmap(mapped as *mut u8, CACHE_SLOTS * 16) };
                    p = existing;
                }
            }
        }
        // SAFETY: `p` maps 2 * CACHE_SLOTS zeroed u64s, never unmapped, and
        // AtomicU64 has the layout of u64. (`slice_from_raw_parts`: see
        // `capture::capture`.)
        Some(unsafe { &*std::ptr::slice_from_raw_parts(p as *const AtomicU64, CACHE_SLOTS * 2) })
    }

    fn get(&self, ip: usize, generation: u32) -> Option<Entry> {
        let table = self.table()?;
        let mut i = walk_core::slot_of(ip);
        for _ in 0..16 {
            let key = table[2 * i].load(Ordering::Acquire);
            if key == 0 {
                return None;
            }
            if key == ip as u64 {
                return Entry::unpack(table[2 * i + 1].load(Ordering::Acquire), generation);
            }
            i = (i + 1) & (CACHE_SLOTS - 1);
        }
        None
    }

    /// Records `entry` for `ip`, replacing an entry of an older generation.
    fn put(&self, ip: usize, entry: Entry, generation: u32) {
        let Some(table) = self.table() else { return };
        let mut i = walk_core::slot_of(ip);
        for _ in 0..16 {
            let key = &table[2 * i];
            match key.compare_exchange(0, ip as u64, Ordering::AcqRel, Ordering::Acquire) {
                Err(existing) if existing != ip as u64 => i = (i + 1) & (CACHE_SLOTS - 1),
                // Ours, new or old: the value is one self-contained word.
                _ => {
                    table[2 * i + 1].store(entry.pack(generation), Ordering::Release);
                    return;
                }
            }
        }
    }
}

// --- computing a rule -----------------------------------------------------

/// glibc's `struct dl_find_object` (2.35+).
#[repr(C)]
struct DlFindObject {
    flags: u64,
    map_start: *mut c_void,
    map_end: *mut c_void,
    link_map: *mut c_void,
    eh_frame: *mut c_void,
    reserved: [u64; 7],
}

type DlFindObjectFn = unsafe extern "C" fn(*mut c_void, *mut DlFindObject) -> i32;

/// `_dl_find_object`, looked up once at start-up (it does not exist before
/// glibc 2.35; then every capture uses libgcc).
static DL_FIND_OBJECT: AtomicUsize = AtomicUsize::new(0);

/// `LEAKCHECK_VERIFY_STACKS=1`: every walk that joins the previous one is
/// checked against a full walk (`capture::verify`).
static VERIFY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(cfg!(test));

/// Whether the verification mode is on.
#[inline(always)]
pub(crate) fn verifying() -> bool {
    VERIFY.relaxed()
}

/// Resolves what the unwinder needs. Called from `hooks::init`, outside any
/// hook: `dlsym` must not run inside `malloc`.
pub(crate) fn init() {
    // SAFETY: getenv with a NUL-terminated name; the value is only read
    // here, before any thread of the tests runs.
    let verify = unsafe { libc::getenv(c"LEAKCHECK_VERIFY_STACKS".as_ptr()) };
    // SAFETY: a non-null result of getenv is a NUL-terminated string.
    if !verify.is_null() && unsafe { std::ffi::CStr::from_ptr(verify) } == c"1" {
        VERIFY.store(true, Ordering::Relaxed);
    }
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name.
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_dl_find_object".as_ptr()) };
    DL_FIND_OBJECT.store(f as usize, Ordering::Release);
    extern "C" {
        fn _Unwind_Backtrace();
    }
    let unwinder = object_range(_Unwind_Backtrace as *const () as usize);
    let ours = object_range(init as *const () as usize);
    // Only when libgcc is a library of its own: linked statically into the
    // executable it cannot be told apart from the code around it.
    if let (Some(unwinder), Some(ours)) = (unwinder, ours) {
        if unwinder != ours {
            UNWINDER_START.store(unwinder.0, Ordering::Release);
            UNWINDER_END.store(unwinder.1, Ordering::Release);
        }
    }
}

/// The code of libgcc's unwinder (libgcc_s). When an allocation comes from
/// inside it — libgcc registering JIT frames lazily, with its object mutex
/// held — falling back to libgcc to unwind would wait on that same mutex.
static UNWINDER_START: AtomicUsize = AtomicUsize::new(0);
static UNWINDER_END: AtomicUsize = AtomicUsize::new(0);

/// glibc's description of the loaded object holding `address`.
fn find_object(address: usize) -> Option<DlFindObject> {
    let find = DL_FIND_OBJECT.load(Ordering::Acquire);
    if find == 0 {
        return None;
    }
    // SAFETY: a non-zero value is glibc's _dl_find_object.
    let find = unsafe { std::mem::transmute::<usize, DlFindObjectFn>(find) };
    let mut object = std::mem::MaybeUninit::<DlFindObject>::zeroed();
    // SAFETY: _dl_find_object reads the address and fills `object`; it takes
    // no lock and does not allocate.
    if unsafe { find(address as *mut c_void, object.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: filled in by the successful call above.
    Some(unsafe { object.assume_init() })
}

/// The address range of the loaded object holding `address`.
fn object_range(address: usize) -> Option<(usize, usize)> {
    find_object(address).map(|o| (o.map_start as usize, o.map_end as usize))
}

const MAX_RULES: usize = 16;

/// Fixed storage for gimli's CFI interpreter: nothing on the heap.
struct FixedStorage;

impl UnwindContextStorage<usize> for FixedStorage {
    type Rules = [(Register, RegisterRule<usize>); MAX_RULES];
    type Stack = [UnwindTableRow<usize, Self>; 2];
}

type Context = UnwindContext<usize, FixedStorage>;

/// One interpreter, reused under a lock: cache misses are rare, and its
/// storage (a few KiB) is better off the stack of whatever thread missed.
static CONTEXT: SpinLock<Option<Context>> = SpinLock::new(None);

#[cfg(leakcheck_prebuilt_walk)]
extern "C" {
    /// `cfi::rule_at`, built optimised by `build.rs` (`walk_object.rs`).
    fn leakcheck_cfi_rule_v1(hdr: usize, start: usize, end: usize, address: usize) -> u64;
}

/// [`cfi::rule_at`](super::cfi::rule_at): in the optimised object when this
/// crate is built unoptimised. `None`: the reader does not know.
///
/// # Safety
///
/// As `cfi::rule_at`.
unsafe fn read_rule(hdr: usize, start: usize, end: usize, address: usize) -> Option<Entry> {
    #[cfg(leakcheck_prebuilt_walk)]
    {
        // SAFETY: the same function, compiled from the same source; the
        // caller upholds its contract.
        let packed = unsafe { leakcheck_cfi_rule_v1(hdr, start, end, address) };
        Entry::unpack(packed, 0)
    }
    #[cfg(not(leakcheck_prebuilt_walk))]
    {
        use super::cfi::{rule_at, Answer};
        // SAFETY: the caller upholds its contract.
        match unsafe { rule_at(hdr, start, end, address) } {
            Answer::Rule(rule) => Some(Entry::Rule(rule)),
            Answer::Unsupported => Some(Entry::Unsupported),
            Answer::Unknown => None,
        }
    }
}

/// The rule for the instruction at `address` (already `return address - 1`
/// for callers), from the object's `.eh_frame_hdr` and `.eh_frame`: read by
/// `cfi`, or by gimli where `cfi` does not know the encoding.
fn compute(address: usize) -> Entry {
    let Some(object) = find_object(address) else {
        return Entry::Unsupported;
    };
    let (hdr, start, end) = readable(&object);
    if end <= hdr {
        return Entry::Unsupported;
    }
    // SAFETY: `_dl_find_object` describes the loaded object holding
    // `address` (it cannot be unloaded while code of it is on this stack),
    // and `hdr` lies inside its mapping.
    if let Some(entry) = unsafe { read_rule(hdr, start, end, address) } {
        return entry;
    }
    compute_with_gimli(address, hdr, start, end).map_or(Entry::Unsupported, Entry::Rule)
}

/// The object's `.eh_frame_hdr` and the range its unwind data is read in.
/// The range starts at the header when that lies below the mapping's start
/// as `_dl_find_object` reports it: for the main program glibc reports the
/// mapping from its first executable segment, and a linker may put
/// `.eh_frame_hdr` and `.eh_frame` in the read-only segment before it (seen
/// in a fat-LTO test binary). The loader maps every loadable segment, so
/// the header's segment is mapped.
fn readable(object: &DlFindObject) -> (usize, usize, usize) {
    let hdr = object.eh_frame as usize;
    let start = (object.map_start as usize).min(hdr);
    (hdr, start, object.map_end as usize)
}

/// [`compute`] by gimli.
fn compute_with_gimli(address: usize, hdr: usize, start: usize, end: usize) -> Option<Rule> {
    // The object's mapping ends at `end`; gimli reads only what the
    // headers' own lengths and counts describe.
    // SAFETY: [hdr, end) lies inside the loaded object.
    let hdr_bytes = unsafe { std::slice::from_raw_parts(hdr as *const u8, end - hdr) };
    let bases = BaseAddresses::default().set_eh_frame_hdr(hdr as u64);
    let parsed = EhFrameHdr::new(hdr_bytes, LittleEndian)
        .parse(&bases, 8)
        .ok()?;
    let Pointer::Direct(eh_frame) = parsed.eh_frame_ptr() else {
        return None;
    };
    let eh_frame = usize::try_from(eh_frame).ok()?;
    if eh_frame < start || eh_frame >= end {
        return None;
    }
    // SAFETY: as above, inside the loaded object.
    let frame_bytes = unsafe { std::slice::from_raw_parts(eh_frame as *const u8, end - eh_frame) };
    let eh_frame_section = EhFrame::new(frame_bytes, LittleEndian);
    let bases = bases.set_eh_frame(eh_frame as u64);
    let table = parsed.table()?;
    let fde = table
        .fde_for_address(
            &eh_frame_section,
            &bases,
            address as u64,
            EhFrame::cie_from_offset,
        )
        .ok()?;
    if fde.cie().is_signal_trampoline() {
        return None;
    }
    let mut guard = CONTEXT.lock();
    let context = guard.get_or_insert_with(Context::new_in);
    let row = fde
        .unwind_info_for_address(&eh_frame_section, &bases, context, address as u64)
        .ok()?;
    rule_of(row)
}

/// `pthread_atfork` prepare: a child must not inherit the interpreter locked.
pub(crate) fn lock_for_fork() {
    CONTEXT.lock_for_fork();
}

/// `pthread_atfork` parent and child.
///
/// # Safety
///
/// Only after [`lock_for_fork`] on the forking thread.
pub(crate) unsafe fn unlock_after_fork() {
    // SAFETY: the caller guarantees lock_for_fork holds the interpreter.
    unsafe { CONTEXT.force_unlock() };
}

fn rule_of(row: &UnwindTableRow<usize, FixedStorage>) -> Option<Rule> {
    let CfaRule::RegisterAndOffset { register, offset } = *row.cfa() else {
        return None;
    };
    let cfa_from_rbp = match register {
        RSP => false,
        RBP => true,
        _ => return None,
    };
    let cfa_offset = i32::try_from(offset).ok()?;
    // The return address must be at CFA - 8, as every x86_64 call leaves it.
    match row.register(RA) {
        Some(RegisterRule::Offset(-8)) => {}
        _ => return None,
    }
    let rbp_saved_at = match row.register(RBP) {
        None | Some(RegisterRule::SameValue) => None,
        Some(RegisterRule::Offset(at)) => Some(i16::try_from(at).ok()?),
        Some(_) => return None,
    };
    Some(Rule {
        cfa_from_rbp,
        cfa_offset,
        rbp_saved_at,
    })
}

/// The rule for `address` when its home slot does not hold it: probes the
/// cache, computes it on a miss. The walk's [`walk_core::Context::slow`].
unsafe extern "C" fn rule_for_slow(address: usize, generation: u32) -> u64 {
    let entry = match CACHE.get(address, generation) {
        Some(entry) => entry,
        None => {
            let entry = compute(address);
            CACHE.put(address, entry, generation);
            entry
        }
    };
    entry.pack(generation)
}

// --- walking ---------------------------------------------------------------

#[cfg(leakcheck_prebuilt_walk)]
extern "C" {
    /// `walk_core::walk`, built optimised by `build.rs` (`walk_object.rs`).
    fn leakcheck_walk_core_v1(request: *mut Request);
}

/// Runs one walk: in the optimised object when this crate is built
/// unoptimised, in this crate otherwise.
///
/// # Safety
///
/// As [`walk_core::walk`].
#[inline(always)]
unsafe fn run(request: &mut Request) {
    #[cfg(leakcheck_prebuilt_walk)]
    // SAFETY: the same function, compiled from the same source with the
    // same `#[repr(C)]` layouts; the caller upholds its contract.
    unsafe {
        leakcheck_walk_core_v1(request)
    };
    #[cfg(not(leakcheck_prebuilt_walk))]
    // SAFETY: the caller upholds its contract.
    unsafe {
        walk_core::walk(request)
    };
}

fn request(base: usize, stack_low: usize, keep: Keep, traces: *mut walk_core::Traces) -> Request {
    Request {
        context: context(),
        base,
        stack_low,
        start: super::capture_core::hook_registers(keep.hook_frame, super::frame_marker(), base),
        traces,
        key: [0, 0],
        keep,
        walk: Walk::Failed,
        found_same: false,
        same: 0,
    }
}

/// Walks this thread's stack from the hook's frame (when `keep`'s marker
/// is a `stacks::HookFrame`) or the walker's own, visiting each
/// frame, innermost first, with `keep` (see [`walk_core::Keep`]), until it
/// has enough or a frame's stack pointer passes `base`. `stack_low` is the
/// lowest address of this thread's stack (0 if unknown). Returns how the
/// walk ended and what `keep` kept.
///
/// # Safety
///
/// `keep`'s arrays have room for its depth.
pub(crate) unsafe fn walk(base: usize, stack_low: usize, keep: Keep) -> (Walk, Keep) {
    let mut request = request(base, stack_low, keep, std::ptr::null_mut());
    // SAFETY: no traces; the caller vouches for the arrays.
    unsafe { run(&mut request) };
    (request.walk, request.keep)
}

/// What a walk needs from the rest of the unwinder now.
#[inline(always)]
pub(crate) fn context() -> walk_core::Context {
    walk_core::Context {
        table: CACHE.slots.acquire(),
        generation: GENERATION.acquire(),
        unwinder: [UNWINDER_START.relaxed(), UNWINDER_END.relaxed()],
        slow: rule_for_slow,
    }
}

#[cfg(leakcheck_prebuilt_walk)]
extern "C" {
    /// `capture_core::capture`, built optimised (`walk_object.rs`).
    fn leakcheck_capture_core_v1(capture: *mut Capture);
    /// `walk_core::remember`, built optimised.
    fn leakcheck_remember_v1(traces: *mut walk_core::Traces, value: u32);
}

/// One capture's walk (`capture_core::capture`): [`walk`], joining a
/// previous walk of this thread where the stack still is what that walk
/// found, so the frames from the join outward are taken from it instead of
/// unwound again (`walk_core::Trace`); it keeps exactly the frames, and
/// ends exactly as, [`walk`] would. Then the base marker and the hash. In
/// the optimised object when this crate is built unoptimised, in this
/// crate otherwise.
///
/// The capture's hook frame and depth are the walk's key: when it would
/// visit exactly the frames of the previous walk that used the same trace,
/// and that walk had the same key and was remembered ([`remember_in`]),
/// nothing is kept and the remembered stack comes back instead.
///
/// # Safety
///
/// As `capture_core::capture`: `capture` filled from [`context`] and
/// [`traces`], and only under the re-entrancy guard
/// (`sys::reentry::Guard`): nothing else on this thread may walk with the
/// traces meanwhile (a signal handler's allocation is not recorded while
/// the guard is held).
#[inline(always)]
pub(crate) unsafe fn capture_joining(capture: &mut Capture) {
    #[cfg(leakcheck_prebuilt_walk)]
    // SAFETY: the same function, compiled from the same source with the
    // same `#[repr(C)]` layouts; the caller upholds its contract.
    unsafe {
        leakcheck_capture_core_v1(capture)
    };
    #[cfg(not(leakcheck_prebuilt_walk))]
    // SAFETY: the caller upholds its contract.
    unsafe {
        super::capture_core::capture(capture)
    };
}

/// Remembers `value` (an interned stack) for the last
/// [`capture_joining`] of this thread, with its key.
///
/// # Safety
///
/// Right after that walk, on the same thread, under the same guard, with
/// the `traces` it walked with.
#[inline(always)]
pub(crate) unsafe fn remember_in(traces: *mut walk_core::Traces, value: u32) {
    #[cfg(leakcheck_prebuilt_walk)]
    // SAFETY: as in `capture_joining`; the caller's contract.
    unsafe {
        leakcheck_remember_v1(traces, value)
    };
    #[cfg(not(leakcheck_prebuilt_walk))]
    // SAFETY: the thread's own traces, unshared until this returns (the
    // caller holds the guard).
    walk_core::remember(unsafe { &mut *traces }, value);
}

/// (walks that joined a previous one, walks made with a trace, walks that
/// found a remembered one again) on this thread so far.
#[cfg(test)]
pub(crate) fn join_counts() -> (usize, usize, usize) {
    // SAFETY: a read of this thread's counters; tests call it outside any
    // walk.
    let guard = crate::sys::reentry::Guard::enter().expect("no guard held by this test thread");
    // SAFETY: this thread's traces, read outside any walk.
    let t = unsafe { &*guard.traces() };
    (t.joins, t.walks, t.sames)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every FDE start of the loaded object holding `code`, in address
    /// order, with the object's header and mapping.
    fn fde_starts(code: usize) -> (usize, usize, usize, Vec<usize>) {
        let object = find_object(code).expect("_dl_find_object knows the object");
        let (hdr, start, end) = readable(&object);
        // SAFETY: the header of a loaded object: 4 bytes of encodings.
        let encodings = unsafe { std::slice::from_raw_parts(hdr as *const u8, 4) };
        assert_eq!(
            encodings,
            [1, 0x1b, 0x03, 0x3b],
            "the linker's usual header"
        );
        // SAFETY: the header's eh_frame pointer (4 bytes), count (4), table.
        let count = unsafe { ((hdr + 8) as *const u32).read_unaligned() } as usize;
        let starts = (0..count)
            .map(|i| {
                // SAFETY: entry `i < count` of the table after the count.
                let loc = unsafe { ((hdr + 12 + 8 * i) as *const i32).read_unaligned() };
                (hdr as isize + loc as isize) as usize
            })
            .collect();
        (hdr, start, end, starts)
    }

    /// `cfi`'s answers against gimli's at addresses across the functions of
    /// the object holding `code` (every `step`-th FDE): where `cfi` answers,
    /// the same rule, or no rule where gimli has none. Returns (addresses,
    /// answered by `cfi`, left to gimli, rules found where gimli gave up).
    fn compare_with_gimli(code: usize, step: usize) -> (usize, usize, usize, usize) {
        let (hdr, start, end, starts) = fde_starts(code);
        let (mut seen, mut answered, mut unknown, mut more) = (0, 0, 0, 0);
        for i in (0..starts.len()).step_by(step) {
            let from = starts[i];
            let to = starts.get(i + 1).copied().unwrap_or(from + 64);
            let mut offsets = vec![
                0, 1, 2, 3, 4, 5, 6, 8, 11, 16, 23, 32, 64, 100, 128, 256, 1000,
            ];
            offsets.push((to - from) / 2);
            offsets.push((to - from).saturating_sub(1));
            for offset in offsets {
                if offset >= (to - from).max(1) {
                    continue;
                }
                let address = from + offset;
                seen += 1;
                let gimli = compute_with_gimli(address, hdr, start, end);
                // SAFETY: a loaded object's mapping, as `_dl_find_object`
                // describes it; `hdr` inside it.
                let ours = unsafe { read_rule(hdr, start, end, address) };
                match (ours, gimli) {
                    (None, _) => unknown += 1,
                    (Some(Entry::Rule(a)), Some(b)) => {
                        assert_eq!(a, b, "rule at {address:#x} (FDE at {from:#x} + {offset})");
                        answered += 1;
                    }
                    (Some(Entry::Unsupported), None) => answered += 1,
                    (Some(Entry::Rule(_)), None) => {
                        answered += 1;
                        more += 1;
                    }
                    (Some(Entry::Unsupported), Some(b)) => {
                        panic!(
                            "no rule at {address:#x} (FDE at {from:#x} + {offset}), gimli: {b:?}"
                        )
                    }
                }
            }
        }
        (seen, answered, unknown, more)
    }

    #[test]
    fn the_cfi_reader_agrees_with_gimli() {
        extern "C" {
            fn _Unwind_Backtrace();
            fn __libc_malloc(size: usize) -> *mut c_void;
        }
        init();
        for (name, code, step) in [
            ("libc", __libc_malloc as *const () as usize, 1),
            ("libgcc_s", _Unwind_Backtrace as *const () as usize, 1),
            ("the test binary", init as *const () as usize, 1),
        ] {
            let (seen, answered, unknown, more) = compare_with_gimli(code, step);
            eprintln!("{name}: {seen} addresses, {answered} read, {unknown} left to gimli, {more} beyond gimli");
            assert!(seen > 1000, "{name}: {seen} addresses compared");
            assert!(
                unknown * 100 <= seen,
                "{name}: {unknown} of {seen} left to gimli"
            );
        }
    }

    #[test]
    fn entries_round_trip_and_expire_with_their_generation() {
        for entry in [
            Entry::Rule(Rule {
                cfa_from_rbp: false,
                cfa_offset: 8,
                rbp_saved_at: None,
            }),
            Entry::Rule(Rule {
                cfa_from_rbp: true,
                cfa_offset: 16,
                rbp_saved_at: Some(-16),
            }),
            Entry::Rule(Rule {
                cfa_from_rbp: false,
                cfa_offset: 4096,
                rbp_saved_at: Some(-56),
            }),
            Entry::Unsupported,
        ] {
            assert_eq!(Entry::unpack(entry.pack(7), 7), Some(entry));
            assert_eq!(
                Entry::unpack(entry.pack(7), 8),
                None,
                "a stale generation is a miss"
            );
        }
        assert_eq!(Entry::unpack(0, 0), None);
    }
}

/// The optimised object is linked as a native library, outside Rust's
/// view of which symbols are used (link-time optimisation may drop or hide
/// any of `core`'s): it must need nothing but libc's memory functions.
#[cfg(all(test, leakcheck_prebuilt_walk))]
#[test]
fn the_prebuilt_walker_needs_only_libc() {
    let object = concat!(env!("OUT_DIR"), "/leakcheck_walk_core.o");
    let out = std::process::Command::new("nm")
        .args(["-u", object])
        .output()
        .expect("nm (binutils, beside the C compiler) runs");
    assert!(out.status.success(), "nm -u {object}: {out:?}");
    let text = String::from_utf8(out.stdout).expect("nm prints text");
    let needed: Vec<&str> = text
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .collect();
    for symbol in &needed {
        assert!(
            ["memcpy", "memmove", "memset", "memcmp", "bcmp"].contains(symbol),
            "{object} needs {symbol} (all: {needed:?})"
        );
    }
}

#[cfg(test)]
mod agreement {
    //! The cached unwinder must find exactly the frames libgcc finds.

    use std::cell::RefCell;
    use std::ffi::{c_char, c_int, c_uint, c_void};

    /// (ip, sp) of each frame.
    type Frames = Vec<(usize, usize)>;

    /// Every frame between `both`'s caller and `base`, by both unwinders.
    #[inline(never)]
    fn both(base: usize) -> (Frames, Frames) {
        // Frames at or below this are `both`'s own and the unwinders'.
        let here = crate::stacks::frame_marker();
        let mut ips = [0usize; super::MAX_FRAMES];
        let mut sps = [0usize; super::MAX_FRAMES];
        let keep = super::Keep {
            hook_frame: here,
            base: 0,
            depth: super::MAX_FRAMES,
            ips: ips.as_mut_ptr(),
            sps: sps.as_mut_ptr(),
            len: 0,
            reached_base: false,
        };
        // SAFETY: both arrays have room for the depth.
        let (walked, keep) = unsafe { super::walk(base, 0, keep) };
        assert_eq!(super::Walk::Done, walked);
        let fast: Frames = (0..keep.len).map(|i| (ips[i], sps[i])).collect();
        let mut slow = Vec::with_capacity(256);
        // SAFETY: libgcc's unwinder is thread-safe; the callback only pushes
        // into spare capacity.
        unsafe {
            backtrace::trace_unsynchronized(|f| {
                let (ip, sp) = (f.ip() as usize, f.sp() as usize);
                if sp > base {
                    return false;
                }
                if sp > here {
                    slow.push((ip, sp));
                }
                true
            })
        };
        (fast, slow)
    }

    fn assert_agree(fast: &[(usize, usize)], slow: &[(usize, usize)]) {
        // Both from `both`'s caller: the same frames.
        assert!(fast.len() >= 2, "too few frames: {fast:x?}");
        assert_eq!(fast, slow, "fast {fast:x?}\nlibgcc {slow:x?}");
    }

    #[inline(never)]
    fn nested(depth: u32, base: usize) -> (Frames, Frames) {
        let result = if depth == 0 {
            both(base)
        } else {
            nested(depth - 1, base)
        };
        std::hint::black_box(result)
    }

    #[test]
    fn rust_frames() {
        let base = crate::stacks::frame_marker();
        let (fast, slow) = nested(6, base);
        assert_agree(&fast, &slow);
        assert!(fast.len() >= 7);
    }

    thread_local! {
        static SEEN: RefCell<Option<(Frames, Frames)>> = const { RefCell::new(None) };
        static BASE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// zlib's allocation callback: called from inside Debian's libz.so.1,
    /// optimised C without frame pointers.
    extern "C" fn zalloc(_opaque: *mut c_void, items: c_uint, size: c_uint) -> *mut c_void {
        SEEN.with(|seen| {
            let mut seen = seen.borrow_mut();
            if seen.is_none() {
                *seen = Some(both(BASE.with(|b| b.get())));
            }
        });
        // SAFETY: a plain allocation, freed by zfree.
        unsafe { libc::calloc(items as usize, size as usize) }
    }

    extern "C" fn zfree(_opaque: *mut c_void, ptr: *mut c_void) {
        // SAFETY: `ptr` came from zalloc.
        unsafe { libc::free(ptr) }
    }

    #[test]
    fn through_a_system_library_without_frame_pointers() {
        type Init = unsafe extern "C" fn(*mut [usize; 14], c_int, *const c_char, c_int) -> c_int;
        type End = unsafe extern "C" fn(*mut [usize; 14]) -> c_int;
        // SAFETY: loading Debian's zlib and looking up two documented entry
        // points with their C signatures.
        let (init, end) = unsafe {
            let lib = libc::dlopen(c"libz.so.1".as_ptr(), libc::RTLD_NOW);
            assert!(!lib.is_null());
            let init = libc::dlsym(lib, c"deflateInit_".as_ptr());
            let end = libc::dlsym(lib, c"deflateEnd".as_ptr());
            assert!(!init.is_null() && !end.is_null());
            (
                std::mem::transmute::<*mut c_void, Init>(init),
                std::mem::transmute::<*mut c_void, End>(end),
            )
        };
        let base = crate::stacks::frame_marker();
        BASE.with(|b| b.set(base));
        // z_stream: 112 bytes; zalloc at word 8, zfree at word 9.
        let mut stream = [0usize; 14];
        stream[8] = zalloc as *const () as usize;
        stream[9] = zfree as *const () as usize;
        // SAFETY: a zeroed z_stream with our allocator callbacks.
        assert_eq!(unsafe { init(&mut stream, 6, c"1.2.13".as_ptr(), 112) }, 0);
        // SAFETY: initialised above.
        assert_eq!(unsafe { end(&mut stream) }, 0);
        let (fast, slow) = SEEN
            .with(|s| s.borrow_mut().take())
            .expect("zalloc was called");
        assert_agree(&fast, &slow);
        std::hint::black_box(base);
    }

    extern "C" fn compare(a: *const c_void, b: *const c_void) -> c_int {
        SEEN.with(|seen| {
            let mut seen = seen.borrow_mut();
            if seen.is_none() {
                *seen = Some(both(BASE.with(|b| b.get())));
            }
        });
        // SAFETY: qsort passes pointers to two elements of the u32 array.
        let (a, b) = unsafe { (*a.cast::<u32>(), *b.cast::<u32>()) };
        a.cmp(&b) as c_int
    }

    #[test]
    fn through_glibc() {
        let base = crate::stacks::frame_marker();
        BASE.with(|b| b.set(base));
        let mut values: Vec<u32> = (0..64).rev().collect();
        // SAFETY: sorting a live array of u32 with a matching comparator.
        unsafe { libc::qsort(values.as_mut_ptr().cast(), values.len(), 4, Some(compare)) };
        assert!(values.windows(2).all(|w| w[0] <= w[1]));
        let (fast, slow) = SEEN
            .with(|s| s.borrow_mut().take())
            .expect("compare was called");
        assert_agree(&fast, &slow);
        std::hint::black_box(base);
    }

    /// Two libraries whose `f` calls back from the same offset with
    /// different frame sizes: after `dlclose(A)`, `B` usually lands at A's
    /// address, and a rule cached for A must not be applied to B.
    const LIBRARY: &str = "    .text\n    .globl f\n    .type f,@function\nf:\n    .cfi_startproc\n    subq $FRAME, %rsp\n    .cfi_def_cfa_offset CFA\n    call *%rdi\n    addq $FRAME, %rsp\n    .cfi_def_cfa_offset 8\n    ret\n    .cfi_endproc\n    .size f, .-f\n    .section .note.GNU-stack,\"\",@progbits\n";

    fn build_library(dir: &std::path::Path, name: &str, frame: u32) -> std::ffi::CString {
        let source = dir.join(format!("{name}.S"));
        let library = dir.join(format!("lib{name}.so"));
        let text = LIBRARY
            .replace("FRAME", &frame.to_string())
            .replace("CFA", &(frame + 8).to_string());
        std::fs::write(&source, text).unwrap();
        let status = std::process::Command::new("cc")
            .args(["-shared", "-o"])
            .arg(&library)
            .arg(&source)
            .status()
            .expect("the C compiler (cc) the build uses");
        assert!(status.success());
        std::ffi::CString::new(library.to_str().unwrap()).unwrap()
    }

    extern "C" fn record_both() {
        SEEN.with(|seen| *seen.borrow_mut() = Some(both(BASE.with(|b| b.get()))));
    }

    type Through = unsafe extern "C" fn(extern "C" fn());

    #[inline(never)]
    fn call_through(path: &std::ffi::CStr) -> (*mut c_void, usize) {
        // SAFETY: loading a library built above and calling its `f`, which
        // calls the callback and returns.
        unsafe {
            let handle = libc::dlopen(path.as_ptr(), libc::RTLD_NOW);
            assert!(!handle.is_null());
            let f = libc::dlsym(handle, c"f".as_ptr());
            assert!(!f.is_null());
            std::mem::transmute::<*mut c_void, Through>(f)(record_both);
            (handle, f as usize)
        }
    }

    #[test]
    fn rules_of_an_unloaded_library_are_not_reused() {
        let dir = std::env::temp_dir().join(format!("leakcheck-unwind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (build_library(&dir, "a", 24), build_library(&dir, "b", 8));
        let base = crate::stacks::frame_marker();
        BASE.with(|b| b.set(base));

        let (handle, f_in_a) = call_through(&a);
        let (fast, slow) = SEEN.with(|s| s.borrow_mut().take()).unwrap();
        assert_agree(&fast, &slow);
        // SAFETY: the handle came from dlopen above; nothing of A is used again.
        assert_eq!(unsafe { libc::dlclose(handle) }, 0);

        let (_, f_in_b) = call_through(&b);
        let (fast, slow) = SEEN.with(|s| s.borrow_mut().take()).unwrap();
        assert_agree(&fast, &slow);
        if f_in_a != f_in_b {
            eprintln!("note: B was not mapped where A was; the stale-rule case was not exercised");
        }
        std::hint::black_box(base);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod joining {
    //! A walk that joins the previous one must find exactly what a full walk
    //! finds. `capture` checks every walk against a full one in tests
    //! (`VERIFY` is on under `cfg(test)`); these make walks that join, and
    //! walks where joining on `(ip, sp)` alone would be wrong.

    use crate::stacks::capture::{capture, mismatches};
    use crate::stacks::frame_marker;
    use crate::sys::reentry::Guard;
    use std::cell::Cell;
    use std::ffi::{c_int, c_void};
    use std::hint::black_box;

    thread_local! {
        static BASE: Cell<usize> = const { Cell::new(0) };
        static IDS: Cell<usize> = const { Cell::new(0) };
        static EMPTY: Cell<usize> = const { Cell::new(0) };
    }

    /// Captures the current stack as the allocation path would.
    #[inline(never)]
    fn capture_here() -> u32 {
        let hook_frame = frame_marker();
        let guard = Guard::enter().expect("no guard held by this test thread");
        let id = capture(&guard, hook_frame, BASE.with(Cell::get), 0);
        // No assertion here: it runs in C callbacks, which cannot unwind.
        if id == 0 {
            EMPTY.with(|n| n.set(n.get() + 1));
        }
        black_box(id)
    }

    fn frames(id: u32) -> Vec<usize> {
        let mut out = Vec::new();
        crate::stacks::capture::frames(id, &mut out);
        out
    }

    extern "C" fn compare(a: *const c_void, b: *const c_void) -> c_int {
        capture_here();
        IDS.with(|n| n.set(n.get() + 1));
        // SAFETY: qsort passes pointers to two elements of the u32 array.
        let (a, b) = unsafe { (*a.cast::<u32>(), *b.cast::<u32>()) };
        a.cmp(&b) as c_int
    }

    #[test]
    fn through_glibc_qsort_at_every_depth_of_its_recursion() {
        let base = frame_marker();
        BASE.with(|b| b.set(base));
        let before = super::join_counts();
        // glibc's merge sort recurses: the comparator is called at many
        // depths, from frames popped and pushed again at the same
        // addresses, in optimised C without frame pointers.
        let mut values: Vec<u32> = (0..3000u32)
            .map(|i| i.wrapping_mul(2_654_435_761) % 1000)
            .collect();
        // SAFETY: sorting a live array of u32 with a matching comparator.
        unsafe { libc::qsort(values.as_mut_ptr().cast(), values.len(), 4, Some(compare)) };
        assert!(values.windows(2).all(|w| w[0] <= w[1]));
        let after = super::join_counts();
        let calls = IDS.with(Cell::get);
        assert!(calls > 10_000, "{calls}");
        assert_eq!(mismatches(), 0);
        assert_eq!(EMPTY.with(Cell::get), 0, "captures that found no frame");
        black_box(base);
        assert!(
            after.0 - before.0 > calls * 9 / 10,
            "joins {before:?} -> {after:?} of {calls} calls"
        );
        assert!(after.2 > before.2, "some walks were a remembered one again");
    }

    #[inline(never)]
    fn middle() -> u32 {
        black_box(capture_here())
    }

    /// Two callers of `middle` with the same frame: `middle`'s frame, and
    /// its return address into `capture_here`'s caller, are at the same
    /// address both times; only the word above says which caller it is.
    #[inline(never)]
    fn caller_a() -> u32 {
        black_box(middle())
    }

    #[inline(never)]
    fn caller_b() -> u32 {
        black_box(middle())
    }

    /// Both callers, one after the other, from the same call sites each time.
    #[inline(never)]
    fn both_callers() -> (u32, u32) {
        black_box((caller_a(), caller_b()))
    }

    #[test]
    fn a_frame_pushed_again_by_another_caller_is_not_joined_past() {
        let base = frame_marker();
        BASE.with(|b| b.set(base));
        let mut runs = Vec::new();
        for _ in 0..black_box(100) {
            runs.push(both_callers());
        }
        let (a, b) = runs[0];
        assert_ne!(frames(a), frames(b));
        assert!(runs.iter().all(|&run| run == (a, b)), "{runs:?}");
        assert_eq!(mismatches(), 0);
        assert_eq!(EMPTY.with(Cell::get), 0, "captures that found no frame");
        black_box(base);
    }

    /// Captures on the way down and back up a recursion deeper than the
    /// default depth: walks that stop at the depth, joined by walks that
    /// need frames beyond it.
    #[inline(never)]
    fn recurse(n: u32, seen: &mut Vec<u32>) {
        seen.push(capture_here());
        if n > 0 {
            recurse(n - 1, seen);
        }
        seen.push(capture_here());
        black_box(n);
    }

    #[test]
    fn recursion_deeper_than_the_depth() {
        let base = frame_marker();
        BASE.with(|b| b.set(base));
        let mut runs = Vec::new();
        // Not unrolled: one call site, so the same stacks each time.
        for _ in 0..black_box(3) {
            let mut seen = Vec::new();
            recurse(45, &mut seen);
            runs.push(seen);
        }
        assert!(runs.iter().all(|run| *run == runs[0]), "{runs:?}");
        let first = &runs[0];
        assert_eq!(mismatches(), 0);
        assert_eq!(EMPTY.with(Cell::get), 0, "captures that found no frame");
        black_box(base);
        let depth = crate::stacks::DEFAULT_DEPTH;
        assert!(
            first.iter().any(|&id| frames(id).len() >= depth),
            "some stacks were cut at the depth"
        );
    }

    type Init =
        unsafe extern "C" fn(*mut [usize; 14], c_int, *const std::ffi::c_char, c_int) -> c_int;
    type Deflate = unsafe extern "C" fn(*mut [usize; 14], c_int) -> c_int;
    type End = unsafe extern "C" fn(*mut [usize; 14]) -> c_int;

    extern "C" fn zalloc(_opaque: *mut c_void, items: u32, size: u32) -> *mut c_void {
        capture_here();
        IDS.with(|n| n.set(n.get() + 1));
        // SAFETY: a plain allocation, freed by zfree.
        unsafe { libc::calloc(items as usize, size as usize) }
    }

    extern "C" fn zfree(_opaque: *mut c_void, ptr: *mut c_void) {
        capture_here();
        // SAFETY: `ptr` came from zalloc.
        unsafe { libc::free(ptr) }
    }

    #[test]
    fn through_a_system_library_without_frame_pointers() {
        // SAFETY: Debian's zlib, three documented entry points with their C
        // signatures.
        let (init, deflate, end) = unsafe {
            let lib = libc::dlopen(c"libz.so.1".as_ptr(), libc::RTLD_NOW);
            assert!(!lib.is_null());
            let init = libc::dlsym(lib, c"deflateInit_".as_ptr());
            let deflate = libc::dlsym(lib, c"deflate".as_ptr());
            let end = libc::dlsym(lib, c"deflateEnd".as_ptr());
            assert!(!init.is_null() && !deflate.is_null() && !end.is_null());
            (
                std::mem::transmute::<*mut c_void, Init>(init),
                std::mem::transmute::<*mut c_void, Deflate>(deflate),
                std::mem::transmute::<*mut c_void, End>(end),
            )
        };
        let base = frame_marker();
        BASE.with(|b| b.set(base));
        for level in 0..10 {
            let mut stream = [0usize; 14];
            stream[8] = zalloc as *const () as usize;
            stream[9] = zfree as *const () as usize;
            let input = vec![7u8; 10_000];
            let mut output = vec![0u8; 20_000];
            // z_stream: next_in, avail_in (word 1), next_out (3), avail_out (4).
            stream[0] = input.as_ptr() as usize;
            stream[1] = input.len();
            stream[3] = output.as_mut_ptr() as usize;
            stream[4] = output.len();
            // SAFETY: a zeroed z_stream with our allocator callbacks and
            // live buffers.
            unsafe {
                assert_eq!(init(&mut stream, level, c"1.2.13".as_ptr(), 112), 0);
                assert_eq!(deflate(&mut stream, 4), 1, "Z_STREAM_END");
                assert_eq!(end(&mut stream), 0);
            }
        }
        assert!(IDS.with(Cell::get) >= 40);
        assert_eq!(mismatches(), 0);
        assert_eq!(EMPTY.with(Cell::get), 0, "captures that found no frame");
        black_box(base);
    }
}
