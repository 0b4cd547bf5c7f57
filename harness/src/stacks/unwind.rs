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
//! there outward, takes that walk's remaining frames ([`walk_joining`];
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

use crate::sys::sync::{pages, SpinLock};
use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, LittleEndian, Pointer, Register, RegisterRule,
    UnwindContext, UnwindContextStorage, UnwindSection, UnwindTableRow,
};
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const RBP: Register = Register(6);
const RSP: Register = Register(7);
const RA: Register = Register(16);

/// How to unwind one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rule {
    cfa_from_rbp: bool,
    cfa_offset: i32,
    rbp_saved_at: Option<i16>,
}

/// A cache entry, packed into a `u64` for the lock-free table: bit 63 valid,
/// bit 62 CFA from `rbp` (else `rsp`), bit 61 `rbp` saved, bit 60 "no usable
/// rule" (fall back without parsing again), bits 48..60 the generation of
/// loaded objects it was computed in, bits 32..48 the offset of the saved
/// `rbp` from the CFA (signed), bits 0..32 the CFA offset (signed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    Rule(Rule),
    Unsupported,
}

const GENERATION_BITS: u32 = 12;

impl Entry {
    fn pack(self, generation: u32) -> u64 {
        let mut v = 1u64 << 63;
        v |= u64::from(generation & ((1 << GENERATION_BITS) - 1)) << 48;
        match self {
            Entry::Unsupported => v | 1 << 60,
            Entry::Rule(rule) => {
                if rule.cfa_from_rbp {
                    v |= 1 << 62;
                }
                if let Some(at) = rule.rbp_saved_at {
                    v |= 1 << 61;
                    v |= u64::from(at as u16) << 32;
                }
                v | u64::from(rule.cfa_offset as u32)
            }
        }
    }

    /// The entry, unless it is empty or from another generation.
    fn unpack(v: u64, generation: u32) -> Option<Entry> {
        if v >> 63 == 0
            || (v >> 48) as u32 & ((1 << GENERATION_BITS) - 1)
                != generation & ((1 << GENERATION_BITS) - 1)
        {
            return None;
        }
        if v & (1 << 60) != 0 {
            return Some(Entry::Unsupported);
        }
        Some(Entry::Rule(Rule {
            cfa_from_rbp: v & (1 << 62) != 0,
            cfa_offset: v as u32 as i32,
            rbp_saved_at: (v & (1 << 61) != 0).then_some((v >> 32) as u16 as i16),
        }))
    }
}

/// Bumped whenever code may have been unmapped (`dlclose`): an address can
/// then hold another object's code, so older entries no longer apply.
static GENERATION: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Called after `dlclose`: forget every cached rule.
pub(crate) fn code_unmapped() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

// --- the cache ------------------------------------------------------------

const CACHE_SLOTS: usize = 1 << 16;

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
            let mapped = pages::map(CACHE_SLOTS * 16, true) as usize;
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
        // AtomicU64 has the layout of u64.
        Some(unsafe { std::slice::from_raw_parts(p as *const AtomicU64, CACHE_SLOTS * 2) })
    }

    fn get(&self, ip: usize, generation: u32) -> Option<Entry> {
        let table = self.table()?;
        let mut i = slot_of(ip);
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
        let mut i = slot_of(ip);
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

fn slot_of(ip: usize) -> usize {
    let h = (ip as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 40) as usize & (CACHE_SLOTS - 1)
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
    VERIFY.load(Ordering::Relaxed)
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

fn in_unwinder(ip: usize) -> bool {
    ip >= UNWINDER_START.load(Ordering::Relaxed) && ip < UNWINDER_END.load(Ordering::Relaxed)
}

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

/// The rule for the instruction at `address` (already `return address - 1`
/// for callers), from the object's `.eh_frame_hdr` and `.eh_frame`.
fn compute(address: usize) -> Option<Rule> {
    let object = find_object(address)?;
    let hdr = object.eh_frame as usize;
    let start = object.map_start as usize;
    let end = object.map_end as usize;
    if hdr < start || end <= hdr {
        return None;
    }
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

/// The rule for `address`: a direct look-up of its home slot (a load, a
/// compare and the unpacking) for the frames a test walks over and over,
/// the probing and computing path otherwise.
#[inline(always)]
fn rule_for(address: usize) -> Option<Rule> {
    let generation = GENERATION.load(Ordering::Acquire);
    let table = CACHE.slots.load(Ordering::Acquire) as *const AtomicU64;
    if !table.is_null() {
        let i = slot_of(address);
        // SAFETY: a non-null table maps 2 * CACHE_SLOTS words, never
        // unmapped, and `i < CACHE_SLOTS`.
        let (key, value) = unsafe { (&*table.add(2 * i), &*table.add(2 * i + 1)) };
        if key.load(Ordering::Acquire) == address as u64 {
            if let Some(Entry::Rule(rule)) =
                Entry::unpack(value.load(Ordering::Acquire), generation)
            {
                return Some(rule);
            }
        }
    }
    rule_for_slow(address, generation)
}

#[inline(never)]
fn rule_for_slow(address: usize, generation: u32) -> Option<Rule> {
    let entry = match CACHE.get(address, generation) {
        Some(entry) => entry,
        None => {
            let entry = compute(address).map_or(Entry::Unsupported, Entry::Rule);
            CACHE.put(address, entry, generation);
            entry
        }
    };
    match entry {
        Entry::Rule(rule) => Some(rule),
        Entry::Unsupported => None,
    }
}

// --- walking ---------------------------------------------------------------

/// Frames one walk visits at most: more than any capture keeps
/// (`capture::MAX_DEPTH`), so a corrupt or cyclic stack ends the walk.
pub(crate) const MAX_FRAMES: usize = 272;

/// How a walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    /// Every frame up to the base (or as many as `visit` wanted) was visited.
    Done,
    /// A frame could not be unwound: start over with libgcc.
    Failed,
    /// A frame could not be unwound, and the stack passes through libgcc's
    /// unwinder, which may hold its lock: keep what was visited, do not call
    /// libgcc.
    FailedInsideUnwinder,
}

/// Walks this thread's stack from the caller of this function, calling
/// `visit(return address, frame's stack pointer)` for each frame, innermost
/// first, until `visit` returns false or a frame's stack pointer passes
/// `base`. `stack_low` is the lowest address of this thread's stack (0 if
/// unknown).
#[inline(never)]
pub(crate) fn walk(base: usize, stack_low: usize, visit: impl FnMut(usize, usize) -> bool) -> Walk {
    let mut inside_unwinder = false;
    let done = walk_frames(base, stack_low, visit, &mut inside_unwinder, None);
    match (done, inside_unwinder) {
        (true, _) => Walk::Done,
        (false, false) => Walk::Failed,
        (false, true) => Walk::FailedInsideUnwinder,
    }
}

/// [`walk`], joining a previous walk of this thread where the stack still
/// is what that walk found: the frames from the join outward are taken from
/// it instead of unwound again (see [`Trace`]). `visit` sees exactly the
/// frames, and the walk ends exactly as, [`walk`] would.
///
/// `key` is what, besides the frames, decides what `visit` keeps (the
/// capture's hook frame and depth). When this walk would visit exactly the
/// frames of the previous walk that used the same trace, and that walk had
/// the same key and was [`remember`]ed, `visit` is not called at all and
/// the remembered value comes back instead.
///
/// # Safety
///
/// Only under the re-entrancy guard (`sys::reentry::Guard`): nothing else on
/// this thread may walk with the traces meanwhile (a signal handler's
/// allocation is not recorded while the guard is held).
#[inline(never)]
pub(crate) unsafe fn walk_joining(
    base: usize,
    stack_low: usize,
    key: (usize, usize),
    visit: impl FnMut(usize, usize) -> bool,
) -> (Walk, Option<u32>) {
    let mut inside_unwinder = false;
    let traces = TRACES.with(|t| t.get());
    // SAFETY: the thread's own traces, and the caller guarantees no other
    // walk on this thread uses them until this one returns.
    let traces = unsafe { &mut *traces };
    traces.key = key;
    let done = walk_frames(base, stack_low, visit, &mut inside_unwinder, Some(traces));
    if let Some(value) = traces.same.take() {
        return (Walk::Done, Some(value));
    }
    let walk = match (done, inside_unwinder) {
        (true, _) => Walk::Done,
        (false, false) => Walk::Failed,
        (false, true) => Walk::FailedInsideUnwinder,
    };
    (walk, None)
}

/// Remembers `value` (an interned stack) for the last [`walk_joining`] of
/// this thread, with its key.
///
/// # Safety
///
/// As [`walk_joining`], right after it on the same thread.
pub(crate) unsafe fn remember(value: u32) {
    let traces = TRACES.with(|t| t.get());
    // SAFETY: as in `walk_joining`.
    let traces = unsafe { &mut *traces };
    if let Some(slot) = traces.last.take() {
        traces.slots[slot].remembered = Some((traces.key, value));
    }
}

// --- joining the previous walk --------------------------------------------
//
// A walk is a deterministic function of the registers it starts a frame
// with (`ip`, `sp`, and `rbp` where a rule uses it) and of the stack words
// it reads (each return address at CFA - 8, each saved `rbp`), given the
// rules, which depend only on `ip` and the generation of loaded objects. So
// when this walk reaches a frame at the same `sp` with the same return
// address (and the same `rbp` where what follows depends on it) as the
// previous walk of this thread did, and every stack word the previous walk
// read from there outward still holds what it read, the rest of this walk
// is the rest of that one: those frames are taken from the trace, not
// unwound again. The words are read again each time (a load and a compare a
// frame, instead of a cache look-up and a rule): a frame popped and pushed
// again by another call path, a `longjmp`, an unwinding panic or a signal
// handler that ran on the stack meanwhile all change some word the join
// depends on, or leave the stack as it was. Nothing is assumed from
// matching `(ip, sp)` alone: the frames above a matching one may belong to
// a different caller that happens to put its callee at the same address.

/// Frames a trace holds; a longer walk is not kept (the next walk then
/// unwinds everything, as without a trace).
const TRACE_STEPS: usize = 64;

/// One frame of a walk, as a trace keeps it.
#[derive(Clone, Copy, Debug, Default)]
struct Step {
    /// The frame's return address and stack pointer, as visited.
    ip: usize,
    sp: usize,
    /// `rbp` as the walk had it at this frame.
    rbp: usize,
    /// Where the step to this frame read the saved `rbp`, from `sp`.
    rbp_at: i16,
    /// [`CFA_FROM_RBP`], [`RBP_SAVED`], [`NEEDS_RBP`].
    flags: u8,
}

/// The step to this frame computed its CFA from `rbp`.
const CFA_FROM_RBP: u8 = 1;
/// The step to this frame read `rbp` from `sp + rbp_at`.
const RBP_SAVED: u8 = 2;
/// What the walk does after this frame depends on its `rbp`.
const NEEDS_RBP: u8 = 4;

/// How a traced walk ended after its outermost frame.
#[derive(Clone, Copy, Debug)]
enum End {
    /// `visit` asked to stop (the capture's depth).
    Stopped,
    /// The next CFA lies above the base.
    Base { from_rbp: bool },
    /// The next return address, at `cfa - 8`, is 0.
    Zero {
        cfa: usize,
        from_rbp: bool,
        rbp_at: Option<i16>,
    },
}

impl End {
    /// Whether the end depends on the outermost frame's `rbp`. A stop does:
    /// a later walk may have to go on from that frame.
    fn needs_rbp(self) -> bool {
        match self {
            End::Stopped => true,
            End::Base { from_rbp } | End::Zero { from_rbp, .. } => from_rbp,
        }
    }
}

/// This thread's previous walk: its frames, outermost first, and how it
/// ended. Touched only by [`walk_joining`], under the re-entrancy guard.
pub(crate) struct Trace {
    /// Frames held; 0: none (the next walk unwinds everything).
    len: usize,
    base: usize,
    generation: u32,
    end: End,
    steps: [Step; TRACE_STEPS],
    /// What [`remember`] stored for the walk that left these frames, and
    /// its key; cleared whenever they change.
    remembered: Option<((usize, usize), u32)>,
}

/// Traces kept per thread: a test's allocations and frees come from
/// different call sites, each joining its own trace at its first frame.
const TRACES_KEPT: usize = 2;

/// This thread's traces.
pub(crate) struct Traces {
    slots: [Trace; TRACES_KEPT],
    /// The slot used most recently.
    mru: usize,
    /// The slot the last walk left its frames in, for [`remember`].
    last: Option<usize>,
    /// The key of the current walk.
    key: (usize, usize),
    /// Set by a walk that found the remembered walk again: its value.
    same: Option<u32>,
    /// Walks that joined a trace, walks made with a trace to join, and
    /// walks that found a remembered walk again.
    joins: usize,
    walks: usize,
    sames: usize,
}

const NO_STEP: Step = Step {
    ip: 0,
    sp: 0,
    rbp: 0,
    rbp_at: 0,
    flags: 0,
};

const NO_TRACE: Trace = Trace {
    len: 0,
    base: 0,
    generation: 0,
    end: End::Stopped,
    steps: [NO_STEP; TRACE_STEPS],
    remembered: None,
};

thread_local! {
    static TRACES: std::cell::UnsafeCell<Traces> = const {
        std::cell::UnsafeCell::new(Traces {
            slots: [NO_TRACE; TRACES_KEPT],
            mru: 0,
            last: None,
            key: (0, 0),
            same: None,
            joins: 0,
            walks: 0,
            sames: 0,
        })
    };
}

/// (walks that joined a previous one, walks made with a trace, walks that
/// found a remembered one again) on this thread so far.
#[cfg(test)]
pub(crate) fn join_counts() -> (usize, usize, usize) {
    // SAFETY: a read of this thread's counters; tests call it outside any
    // walk.
    TRACES.with(|t| unsafe {
        let t = &*t.get();
        (t.joins, t.walks, t.sames)
    })
}

/// What the current walk knows of the previous one's validity.
struct Join {
    /// Candidate frames are at positions below this (outermost first), so
    /// it moves down as the walk moves up the stack.
    cursor: usize,
    /// Positions below this were read again and hold what they held.
    valid_below: usize,
    /// No join above this position: the word there changed.
    blocked_above: usize,
    /// The end was checked, and whether it still holds.
    end_checked: bool,
    end_ok: bool,
}

impl Trace {
    /// Whether the stack still is what this trace found from its frame at
    /// `p` outward: every word read there reads the same now.
    fn holds_above(
        &self,
        p: usize,
        join: &mut Join,
        read: &impl Fn(usize) -> Option<usize>,
    ) -> bool {
        if !join.end_checked {
            join.end_checked = true;
            join.end_ok = match self.end {
                End::Zero { cfa, rbp_at, .. } => {
                    read(cfa - 8) == Some(0)
                        && rbp_at.is_none_or(|at| {
                            cfa.checked_add_signed(isize::from(at))
                                .and_then(read)
                                .is_some()
                        })
                }
                End::Stopped | End::Base { .. } => true,
            };
        }
        if !join.end_ok || p > join.blocked_above {
            return false;
        }
        while join.valid_below < p {
            let step = self.steps[join.valid_below];
            // The return address: above the join's `sp` (so above this
            // walk's lowest), and where the previous walk, with the same
            // base, read it: in bounds and aligned.
            // SAFETY: `step.sp - 8` lies in [the join frame's sp, base),
            // this thread's live stack between the walking frame and the
            // base, as `read` would have checked.
            let ra = unsafe { ((step.sp - 8) as *const usize).read() };
            let same_rbp = step.flags & RBP_SAVED == 0
                || match step
                    .sp
                    .checked_add_signed(isize::from(step.rbp_at))
                    .and_then(read)
                {
                    Some(saved) => step.flags & NEEDS_RBP == 0 || saved == step.rbp,
                    None => false,
                };
            if ra != step.ip || !same_rbp {
                join.blocked_above = join.valid_below;
                return p <= join.blocked_above;
            }
            join.valid_below += 1;
        }
        true
    }

    /// Forgets the frames.
    fn clear(&mut self) {
        self.len = 0;
        self.remembered = None;
    }

    /// Records a walk that ended with `end` and did not join: its frames are
    /// `new`, innermost first.
    fn record(&mut self, new: &[Step], end: End, base: usize, generation: u32) {
        self.len = 0;
        self.remembered = None;
        if new.is_empty() {
            return;
        }
        self.end = end;
        self.base = base;
        self.generation = generation;
        self.put(0, new, end.needs_rbp());
    }

    /// Writes `new` (innermost first) at positions `from..`, outermost
    /// first; the outermost of them depends on its `rbp` if `needs_rbp`.
    fn put(&mut self, from: usize, new: &[Step], mut needs_rbp: bool) {
        self.remembered = None;
        if from + new.len() > TRACE_STEPS {
            self.clear();
            return;
        }
        let mut at = from;
        for i in (0..new.len()).rev() {
            let mut step = new[i];
            step.flags = (step.flags & !NEEDS_RBP) | if needs_rbp { NEEDS_RBP } else { 0 };
            self.steps[at] = step;
            at += 1;
            // What the frame inside it depends on: the rbp this step used
            // (its CFA), unless this step replaced it by a saved one.
            needs_rbp =
                step.flags & CFA_FROM_RBP != 0 || (step.flags & RBP_SAVED == 0 && needs_rbp);
        }
        self.len = at;
    }
}

#[inline(always)]
fn walk_frames(
    base: usize,
    stack_low: usize,
    mut visit: impl FnMut(usize, usize) -> bool,
    inside_unwinder: &mut bool,
    mut traces: Option<&mut Traces>,
) -> bool {
    let (mut ip, mut sp, mut rbp): (usize, usize, usize);
    // SAFETY: reads three registers; no memory access, no stack change.
    unsafe {
        std::arch::asm!(
            "lea {ip}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            ip = out(reg) ip,
            sp = out(reg) sp,
            bp = out(reg) rbp,
            options(nomem, nostack, preserves_flags),
        );
    }
    let low = sp;
    let generation = GENERATION.load(Ordering::Acquire);
    // A trace is joinable only if made for this base, with the rules in
    // force now.
    let mut joinable = [false; TRACES_KEPT];
    let mut join = [const {
        Join {
            cursor: 0,
            valid_below: 0,
            blocked_above: usize::MAX,
            end_checked: false,
            end_ok: false,
        }
    }; TRACES_KEPT];
    if let Some(traces) = traces.as_deref_mut() {
        traces.last = None;
        traces.same = None;
        for (i, trace) in traces.slots.iter_mut().enumerate() {
            if trace.base != base || trace.generation != generation {
                trace.clear();
            }
            joinable[i] = trace.len != 0;
            join[i].cursor = trace.len;
        }
        traces.walks += usize::from(joinable.contains(&true));
    }
    // On another stack than the scope's (a signal handler on sigaltstack,
    // a coroutine), [low, base] is not one mapping: leave it to libgcc.
    if base == 0 || base <= low || low < stack_low {
        return false;
    }
    // Stack reads stay within [low, base]: this thread's live stack.
    let read = |at: usize| -> Option<usize> {
        if at < low || at.checked_add(8)? > base || at % 8 != 0 {
            return None;
        }
        // SAFETY: `at` is an aligned word inside the live stack between this
        // frame and the scope's base frame, both on this thread.
        Some(unsafe { (at as *const usize).read() })
    };
    // This walk's own frames (not taken from a trace), innermost first;
    // not zeroed (2 KiB of stores a walk).
    let mut new = [const { std::mem::MaybeUninit::<Step>::uninit() }; TRACE_STEPS];
    let mut new_len = 0;
    // Whether this walk's frames can become a trace.
    let mut keep = traces.is_some();
    // The trace and position joined, and whether its frame depends on its
    // rbp.
    let mut joined: Option<(usize, usize, bool)> = None;
    // The first frame is this function's own; its rule is looked up at the
    // current instruction, every caller's at its return address - 1.
    let mut lookup = ip;
    let mut steps = 0;
    let end: Option<End> = 'walk: loop {
        if steps == MAX_FRAMES {
            // Deeper than any capture keeps: something is off, let libgcc
            // decide.
            break None;
        }
        steps += 1;
        let Some(rule) = rule_for(lookup) else {
            break None;
        };
        let cfa = if rule.cfa_from_rbp { rbp } else { sp };
        let Some(cfa) = cfa.checked_add_signed(rule.cfa_offset as isize) else {
            break None;
        };
        if cfa <= sp {
            break None;
        }
        if cfa > base {
            // The caller's frame begins above the base: the walk is done.
            break Some(End::Base {
                from_rbp: rule.cfa_from_rbp,
            });
        }
        let Some(return_address) = read(cfa - 8) else {
            break None;
        };
        if let Some(at) = rule.rbp_saved_at {
            let Some(saved) = cfa.checked_add_signed(isize::from(at)).and_then(read) else {
                break None;
            };
            rbp = saved;
        }
        ip = return_address;
        sp = cfa;
        if ip == 0 {
            break Some(End::Zero {
                cfa,
                from_rbp: rule.cfa_from_rbp,
                rbp_at: rule.rbp_saved_at,
            });
        }
        *inside_unwinder |= in_unwinder(ip);
        if keep {
            if new_len < TRACE_STEPS {
                new[new_len].write(Step {
                    ip,
                    sp,
                    rbp,
                    rbp_at: rule.rbp_saved_at.unwrap_or(0),
                    flags: if rule.cfa_from_rbp { CFA_FROM_RBP } else { 0 }
                        | if rule.rbp_saved_at.is_some() {
                            RBP_SAVED
                        } else {
                            0
                        },
                });
                new_len += 1;
            } else {
                keep = false;
            }
        }
        lookup = ip - 1;
        let Some(all) = traces.as_deref_mut() else {
            if !visit(ip, sp) {
                break Some(End::Stopped);
            }
            continue;
        };
        let mut found = None;
        for (i, trace) in all.slots.iter().enumerate() {
            if !joinable[i] {
                continue;
            }
            let join = &mut join[i];
            while join.cursor > 0 && trace.steps[join.cursor - 1].sp < sp {
                join.cursor -= 1;
            }
            if join.cursor == 0 {
                continue;
            }
            let p = join.cursor - 1;
            let at = trace.steps[p];
            let needs_rbp = at.flags & NEEDS_RBP != 0;
            if at.sp == sp
                && at.ip == ip
                && (!needs_rbp || at.rbp == rbp)
                && trace.holds_above(p, join, &read)
            {
                found = Some((i, p, needs_rbp));
                break;
            }
        }
        let Some((i, p, needs_rbp)) = found else {
            if !visit(ip, sp) {
                break Some(End::Stopped);
            }
            continue;
        };
        // Joined: the frames from `p` on are the trace's, exactly as
        // unwinding them would find them.
        all.joins += 1;
        joinable = [false; TRACES_KEPT];
        joined = Some((i, p, needs_rbp));
        let trace = &all.slots[i];
        if p + 1 == trace.len && new_len == 1 {
            // This walk is the trace's own walk again, frame for frame.
            if let Some((key, value)) = trace.remembered {
                if key == all.key {
                    all.sames += 1;
                    all.same = Some(value);
                    all.last = None;
                    all.mru = i;
                    return true;
                }
            }
        }
        if !visit(ip, sp) {
            break Some(End::Stopped);
        }
        for q in (0..p).rev() {
            if steps == MAX_FRAMES {
                break 'walk None;
            }
            steps += 1;
            let step = trace.steps[q];
            *inside_unwinder |= in_unwinder(step.ip);
            if !visit(step.ip, step.sp) {
                break 'walk Some(End::Stopped);
            }
        }
        match trace.end {
            End::Base { .. } | End::Zero { .. } => {
                if steps == MAX_FRAMES {
                    break None;
                }
                break Some(trace.end);
            }
            End::Stopped => {
                // The previous walk stopped at its depth and this one wants
                // more: unwinding goes on from its outermost frame, whose
                // rbp is right (`NEEDS_RBP`, compared above). The trace
                // would need the new frames before its own: not kept.
                let outermost = trace.steps[0];
                ip = outermost.ip;
                sp = outermost.sp;
                rbp = outermost.rbp;
                lookup = ip - 1;
                keep = false;
            }
        }
    };
    let Some(all) = traces else {
        return end.is_some();
    };
    // SAFETY: `write` initialised the first `new_len` elements, and
    // MaybeUninit<Step> has Step's layout.
    let new = unsafe { std::slice::from_raw_parts(new.as_ptr().cast::<Step>(), new_len) };
    let Some(end) = end else {
        // The traces stay: a failed walk read nothing they depend on.
        return false;
    };
    let lru = (all.mru + 1) % TRACES_KEPT;
    let slot = match joined {
        // The frames above the join and the end are the trace's: this walk
        // read every word they depend on again.
        Some((i, p, needs_rbp)) if keep && p + 1 == all.slots[i].len && new_len == 1 => {
            // The same frames: what was remembered still holds.
            let remembered = all.slots[i].remembered;
            all.slots[i].put(p, new, needs_rbp);
            all.slots[i].remembered = remembered;
            i
        }
        Some((i, p, needs_rbp)) if keep => {
            // Another call path into the same frames: its own trace (the
            // least recent one), so that each path finds its own at its
            // first frame next time.
            if i != lru {
                let (from, to) = if i < lru {
                    let (left, right) = all.slots.split_at_mut(lru);
                    (&left[i], &mut right[0])
                } else {
                    let (left, right) = all.slots.split_at_mut(i);
                    (&right[0], &mut left[lru])
                };
                to.steps[..p].copy_from_slice(&from.steps[..p]);
                to.end = from.end;
                to.base = from.base;
                to.generation = from.generation;
            }
            all.slots[lru].put(p, new, needs_rbp);
            lru
        }
        // Frames beyond the trace (it stopped at its depth, this walk went
        // on) or too many to keep: a later walk could not check them.
        Some((i, ..)) => {
            all.slots[i].clear();
            i
        }
        None => {
            if keep {
                all.slots[lru].record(new, end, base, generation);
            } else {
                all.slots[lru].clear();
            }
            lru
        }
    };
    all.mru = slot;
    all.last = (all.slots[slot].len != 0).then_some(slot);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

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

#[cfg(test)]
mod agreement {
    //! The cached unwinder must find exactly the frames libgcc finds.

    use std::cell::RefCell;
    use std::ffi::{c_char, c_int, c_uint, c_void};

    /// (ip, sp) of each frame.
    type Frames = Vec<(usize, usize)>;

    /// Every frame between here and `base`, by both unwinders.
    fn both(base: usize) -> (Frames, Frames) {
        let mut fast = Vec::with_capacity(256);
        assert_eq!(
            super::Walk::Done,
            super::walk(base, 0, |ip, sp| {
                fast.push((ip, sp));
                true
            })
        );
        let mut slow = Vec::with_capacity(256);
        // SAFETY: libgcc's unwinder is thread-safe; the callback only pushes
        // into spare capacity.
        unsafe {
            backtrace::trace_unsynchronized(|f| {
                let (ip, sp) = (f.ip() as usize, f.sp() as usize);
                if sp > base {
                    return false;
                }
                slow.push((ip, sp));
                true
            })
        };
        (fast, slow)
    }

    fn assert_agree(fast: &[(usize, usize)], slow: &[(usize, usize)]) {
        // Both start in `both`, at different calls (so its ip differs) and
        // libgcc a few frames deeper; from there on they must be identical.
        assert!(fast.len() >= 3, "too few frames: {fast:x?}");
        assert!(
            slow.ends_with(&fast[1..]),
            "fast {fast:x?}\nlibgcc {slow:x?}"
        );
        assert_eq!(
            slow[slow.len() - fast.len()].1,
            fast[0].1,
            "fast {fast:x?}\nlibgcc {slow:x?}"
        );
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
        let _guard = Guard::enter().expect("no guard held by this test thread");
        let id = capture(hook_frame, BASE.with(Cell::get), 0);
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
