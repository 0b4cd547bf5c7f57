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
//! Safety by construction: every stack read is bounds-checked against the
//! range between the capturing frame and the scope's base frame, which is this
//! thread's live stack, so a wrong or unexpected rule can at worst end the
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

/// Resolves what the unwinder needs. Called from `hooks::init`, outside any
/// hook: `dlsym` must not run inside `malloc`.
pub(crate) fn init() {
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

fn rule_for(address: usize) -> Option<Rule> {
    let generation = GENERATION.load(Ordering::Acquire);
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

// --- walking --------------------------------------------------------------

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
    let done = walk_frames(base, stack_low, visit, &mut inside_unwinder);
    match (done, inside_unwinder) {
        (true, _) => Walk::Done,
        (false, false) => Walk::Failed,
        (false, true) => Walk::FailedInsideUnwinder,
    }
}

#[inline(always)]
fn walk_frames(
    base: usize,
    stack_low: usize,
    mut visit: impl FnMut(usize, usize) -> bool,
    inside_unwinder: &mut bool,
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
    // The first frame is this function's own; its rule is looked up at the
    // current instruction, every caller's at its return address - 1.
    let mut lookup = ip;
    for _ in 0..MAX_FRAMES {
        let Some(rule) = rule_for(lookup) else {
            return false;
        };
        let cfa = if rule.cfa_from_rbp { rbp } else { sp };
        let Some(cfa) = cfa.checked_add_signed(rule.cfa_offset as isize) else {
            return false;
        };
        if cfa <= sp {
            return false;
        }
        if cfa > base {
            // The caller's frame begins above the base: the walk is done.
            return true;
        }
        let Some(return_address) = read(cfa - 8) else {
            return false;
        };
        if let Some(at) = rule.rbp_saved_at {
            let Some(saved) = cfa.checked_add_signed(isize::from(at)).and_then(read) else {
                return false;
            };
            rbp = saved;
        }
        ip = return_address;
        sp = cfa;
        if ip == 0 {
            return true;
        }
        *inside_unwinder |= in_unwinder(ip);
        if !visit(ip, sp) {
            return true;
        }
        lookup = ip - 1;
    }
    // Deeper than any capture keeps: something is off, let libgcc decide.
    false
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
