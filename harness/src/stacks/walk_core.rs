//! The stack walker's hot loop: applying cached rules frame by frame, and
//! joining the thread's previous walks (the proof is under "joining the
//! previous walk" below). Everything that parses DWARF or touches
//! the process (gimli, `_dl_find_object`, thread-locals) stays in
//! `unwind.rs`, which hands this code a [`Request`].
//!
//! This file is compiled twice from the same source. As a module of
//! leakcheck it is used in optimised builds. When cargo builds leakcheck at
//! `opt-level = 0` — the dev profile of a user who did not copy the
//! README's profile overrides — this loop would run unoptimised, several
//! times slower (every atomic load, slice access and `Option` method
//! becomes a call), and it is most of what a check costs. So `build.rs`
//! then also compiles it, through `walk_object.rs`, as a freestanding
//! object at `opt-level = 3`, and leakcheck calls that object's
//! [`Request`] entry point instead. Hence the constraints here: only
//! `core`, no path into the rest of the crate, and `#[repr(C)]` on
//! everything the two builds share (the request and the thread's traces),
//! so that both agree on their layout by rule, not by chance.

use core::sync::atomic::{AtomicU64, Ordering};

// --- rules and their cache entries ----------------------------------------

/// How to unwind one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) cfa_from_rbp: bool,
    pub(crate) cfa_offset: i32,
    pub(crate) rbp_saved_at: Option<i16>,
}

/// A cache entry, packed into a `u64` for the lock-free table: bit 63 valid,
/// bit 62 CFA from `rbp` (else `rsp`), bit 61 `rbp` saved, bit 60 "no usable
/// rule" (fall back without parsing again), bits 48..60 the generation of
/// loaded objects it was computed in, bits 32..48 the offset of the saved
/// `rbp` from the CFA (signed), bits 0..32 the CFA offset (signed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    Rule(Rule),
    Unsupported,
}

const GENERATION_BITS: u32 = 12;

impl Entry {
    pub(crate) fn pack(self, generation: u32) -> u64 {
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
    pub(crate) fn unpack(v: u64, generation: u32) -> Option<Entry> {
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

/// Slots of the rule cache: pairs of (return address, packed entry).
pub(crate) const CACHE_SLOTS: usize = 1 << 16;

/// The home slot of `ip` in the rule cache.
pub(crate) fn slot_of(ip: usize) -> usize {
    let h = (ip as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 40) as usize & (CACHE_SLOTS - 1)
}

/// What a walk needs from the rest of the unwinder, read once per walk.
#[repr(C)]
pub(crate) struct Context {
    /// The rule cache (`2 * CACHE_SLOTS` words), 0 until mapped.
    pub(crate) table: usize,
    /// The generation of loaded objects now.
    pub(crate) generation: u32,
    /// The code of libgcc's unwinder, `[start, end)`; empty if unknown.
    pub(crate) unwinder: [usize; 2],
    /// The rule for an address whose home slot does not hold it: probes
    /// the cache and computes the rule on a miss. Returns the packed entry
    /// ([`Entry::pack`]) or 0 for "no rule".
    pub(crate) slow: unsafe extern "C" fn(address: usize, generation: u32) -> u64,
}

impl Context {
    /// The rule for `address`: a direct look-up of its home slot (a load, a
    /// compare and the unpacking) for the frames a test walks over and over,
    /// the probing and computing path otherwise.
    #[inline(always)]
    fn rule_for(&self, address: usize) -> Option<Rule> {
        let table = self.table as *const AtomicU64;
        if !table.is_null() {
            let i = slot_of(address);
            // SAFETY: a non-null table maps 2 * CACHE_SLOTS words, never
            // unmapped, and `i < CACHE_SLOTS`.
            let (key, value) = unsafe { (&*table.add(2 * i), &*table.add(2 * i + 1)) };
            if key.load(Ordering::Acquire) == address as u64 {
                if let Some(Entry::Rule(rule)) =
                    Entry::unpack(value.load(Ordering::Acquire), self.generation)
                {
                    return Some(rule);
                }
            }
        }
        self.rule_for_slow(address)
    }

    #[cold]
    #[inline(never)]
    fn rule_for_slow(&self, address: usize) -> Option<Rule> {
        // SAFETY: `slow` is the unwinder's own look-up, callable from any
        // walk (it takes no lock a walk can hold, and does not allocate).
        let packed = unsafe { (self.slow)(address, self.generation) };
        match Entry::unpack(packed, self.generation) {
            Some(Entry::Rule(rule)) => Some(rule),
            _ => None,
        }
    }

    fn in_unwinder(&self, ip: usize) -> bool {
        ip >= self.unwinder[0] && ip < self.unwinder[1]
    }
}

/// `[ip, sp, rbp]` where this expands: a macro, so that they are the
/// registers of the function it is written in, whatever is inlined.
macro_rules! registers_here {
    () => {{
        let (ip, sp, rbp): (usize, usize, usize);
        // SAFETY: reads three registers; no memory access, no stack change.
        unsafe {
            core::arch::asm!(
                "lea {ip}, [rip]",
                "mov {sp}, rsp",
                "mov {bp}, rbp",
                ip = out(reg) ip,
                sp = out(reg) sp,
                bp = out(reg) rbp,
                options(nomem, nostack, preserves_flags),
            );
        }
        [ip, sp, rbp]
    }};
}
pub(crate) use registers_here;

// --- what a walk keeps -----------------------------------------------------

/// The frames one walk keeps: those above the hook's frame and not above
/// the base, up to `depth`.
#[repr(C)]
pub(crate) struct Keep {
    /// Frames whose stack pointer is at or below this are the hook's and
    /// the tracker's own: skipped.
    pub(crate) hook_frame: usize,
    /// Frames whose stack pointer is above this (0: none) end the walk.
    pub(crate) base: usize,
    /// Frames to keep at most; `ips` (and `sps`, if not null) have room for
    /// this many.
    pub(crate) depth: usize,
    pub(crate) ips: *mut usize,
    /// Each kept frame's stack pointer, or null.
    pub(crate) sps: *mut usize,
    /// Frames kept so far.
    pub(crate) len: usize,
    /// The walk went past the base frame, so the last frame kept is it.
    pub(crate) reached_base: bool,
}

impl Keep {
    /// Takes the frame at `ip` whose stack pointer is `sp`, unless it is
    /// the tracker's own; returns whether to go on.
    #[inline(always)]
    fn visit(&mut self, ip: usize, sp: usize) -> bool {
        if sp <= self.hook_frame {
            return true;
        }
        if self.base != 0 && sp > self.base {
            self.reached_base = self.len < self.depth;
            return false;
        }
        if self.len >= self.depth {
            return false;
        }
        // SAFETY: `len < depth`, and the arrays have room for `depth`.
        unsafe {
            self.ips.add(self.len).write(ip);
            if !self.sps.is_null() {
                self.sps.add(self.len).write(sp);
            }
        }
        self.len += 1;
        self.len < self.depth
    }
}

/// How a walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
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

/// One walk: what it starts from, and what it found.
#[repr(C)]
pub(crate) struct Request {
    pub(crate) context: Context,
    /// The scope's base frame: reads stay in `[the walking frame, base]`.
    pub(crate) base: usize,
    /// The lowest address of this thread's stack (0 if unknown).
    pub(crate) stack_low: usize,
    /// `ip`, `sp` and `rbp` of a frame of this thread's stack between the
    /// walker's and the base, as they were at `ip` in it (the hook's, read
    /// by `stacks::hook_frame_here!`): the walk starts there. `ip` 0: from
    /// the walker's own frame.
    pub(crate) start: [usize; 3],
    /// This thread's traces, to join and to leave this walk's frames in;
    /// null: a walk of its own.
    pub(crate) traces: *mut Traces,
    /// What, besides the frames, decides what `keep` keeps (the hook frame
    /// and the depth): see [`Traces`]'s remembered walks.
    pub(crate) key: [usize; 2],
    pub(crate) keep: Keep,
    /// Out: how the walk ended.
    pub(crate) walk: Walk,
    /// Out: the walk found the remembered walk of its trace again, with the
    /// same key: `keep` kept nothing, and the stack is `same`.
    pub(crate) found_same: bool,
    pub(crate) same: u32,
}

/// Frames one walk visits at most: more than any capture keeps
/// (`capture::MAX_DEPTH`), so a corrupt or cyclic stack ends the walk.
pub(crate) const MAX_FRAMES: usize = 272;

/// Walks this thread's stack from this function's frame as `request`
/// says, visiting each frame, innermost first, until `keep` has enough or
/// a frame's stack pointer passes `base`.
///
/// With `traces`, the walk joins a previous walk of this thread where the
/// stack still is what that walk found: the frames from the join outward
/// are taken from it instead of unwound again (see [`Trace`]). `keep` sees
/// exactly the frames, and the walk ends exactly as, a walk without traces
/// would. When this walk would visit exactly the frames of the previous
/// walk that used the same trace, and that walk had the same key and was
/// [`remember`]ed, `keep` is not called at all and `same` is set instead.
///
/// # Safety
///
/// `request.keep`'s arrays have room for its depth; `traces`, if not null,
/// is this thread's, and nothing else uses it until this returns (the
/// caller holds the re-entrancy guard); `context.table` is 0 or the mapped
/// rule cache.
#[inline(never)]
pub(crate) unsafe fn walk(request: &mut Request) {
    request.found_same = false;
    // SAFETY: the caller guarantees `traces` is this thread's, unshared.
    let traces = unsafe { request.traces.as_mut() };
    let mut inside_unwinder = false;
    let done = walk_frames(request, traces, &mut inside_unwinder);
    request.walk = match (done, inside_unwinder) {
        (true, _) => Walk::Done,
        (false, false) => Walk::Failed,
        (false, true) => Walk::FailedInsideUnwinder,
    };
}

/// Remembers `value` (an interned stack) for the last [`walk`] with
/// `traces`, with its key.
pub(crate) fn remember(traces: &mut Traces, value: u32) {
    if traces.last != NO_SLOT {
        let key = traces.key;
        let slot = &mut traces.slots[at_slot(traces.last - 1)];
        slot.remembered = Remembered {
            set: true,
            key,
            value,
        };
        traces.last = NO_SLOT;
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
#[derive(Clone, Copy, Debug)]
#[repr(C)]
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
#[repr(C)]
enum End {
    /// `visit` asked to stop (the capture's depth).
    Stopped,
    /// The next CFA lies above the base.
    Base { from_rbp: bool },
    /// The next return address, at `cfa - 8`, is 0; `rbp` was read from
    /// `cfa + rbp_at` if `rbp_saved`.
    Zero {
        cfa: usize,
        from_rbp: bool,
        rbp_saved: bool,
        rbp_at: i16,
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

/// What [`remember`] stored for the walk that left a trace's frames.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
struct Remembered {
    set: bool,
    key: [usize; 2],
    value: u32,
}

const NOT_REMEMBERED: Remembered = Remembered {
    set: false,
    key: [0, 0],
    value: 0,
};

/// This thread's previous walk: its frames, outermost first, and how it
/// ended. Touched only by [`walk`], under the re-entrancy guard.
#[repr(C)]
pub(crate) struct Trace {
    /// Frames held; 0: none (the next walk unwinds everything).
    len: usize,
    base: usize,
    generation: u32,
    end: End,
    steps: [Step; TRACE_STEPS],
    /// Cleared whenever the frames change.
    remembered: Remembered,
}

/// Traces kept per thread: a test's allocations and frees come from
/// different call sites, each joining its own trace at its first frame.
const TRACES_KEPT: usize = 2;

// Indices are masked to these powers of two where the optimiser cannot see
// they are in bounds: the object must not call into `core`'s panics (it is
// linked as a native object, outside Rust's view of which symbols are
// used), and the masks change nothing where the invariants hold.
const _: () = assert!(TRACE_STEPS.is_power_of_two() && TRACES_KEPT.is_power_of_two());

/// `i`, a position in a trace (`< TRACE_STEPS` by the trace's invariant).
#[inline(always)]
fn at_step(i: usize) -> usize {
    i & (TRACE_STEPS - 1)
}

/// `i`, a trace slot (`< TRACES_KEPT`).
#[inline(always)]
fn at_slot(i: usize) -> usize {
    i & (TRACES_KEPT - 1)
}

/// `Traces::last` when no slot is (it holds a slot plus one: a thread's
/// traces start all zero, so they cost new threads no copy of an image).
const NO_SLOT: usize = 0;

/// A thread's traces.
#[repr(C)]
pub(crate) struct Traces {
    slots: [Trace; TRACES_KEPT],
    /// The slot used most recently.
    mru: usize,
    /// One more than the slot the last walk left its frames in, for
    /// [`remember`], or [`NO_SLOT`].
    last: usize,
    /// The key of the current walk.
    key: [usize; 2],
    /// Walks that joined a trace, walks made with a trace to join, and
    /// walks that found a remembered walk again.
    pub(crate) joins: usize,
    pub(crate) walks: usize,
    pub(crate) sames: usize,
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
    remembered: NOT_REMEMBERED,
};

/// A thread's traces before its first walk.
pub(crate) const NO_TRACES: Traces = Traces {
    slots: [NO_TRACE; TRACES_KEPT],
    mru: 0,
    last: NO_SLOT,
    key: [0, 0],
    joins: 0,
    walks: 0,
    sames: 0,
};

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
                End::Zero {
                    cfa,
                    rbp_saved,
                    rbp_at,
                    ..
                } => {
                    read(cfa - 8) == Some(0)
                        && (!rbp_saved
                            || cfa
                                .checked_add_signed(isize::from(rbp_at))
                                .and_then(read)
                                .is_some())
                }
                End::Stopped | End::Base { .. } => true,
            };
        }
        if !join.end_ok || p > join.blocked_above {
            return false;
        }
        while join.valid_below < p {
            let step = self.steps[at_step(join.valid_below)];
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
        self.remembered = NOT_REMEMBERED;
    }

    /// Records a walk that ended with `end` and did not join: its frames are
    /// `new`, innermost first.
    fn record(&mut self, new: &[Step], end: End, base: usize, generation: u32) {
        self.len = 0;
        self.remembered = NOT_REMEMBERED;
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
        self.remembered = NOT_REMEMBERED;
        if from + new.len() > TRACE_STEPS {
            self.clear();
            return;
        }
        let mut at = from;
        for i in (0..new.len()).rev() {
            let mut step = new[i];
            step.flags = (step.flags & !NEEDS_RBP) | if needs_rbp { NEEDS_RBP } else { 0 };
            self.steps[at_step(at)] = step;
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
    request: &mut Request,
    mut traces: Option<&mut Traces>,
    inside_unwinder: &mut bool,
) -> bool {
    let [mut ip, mut sp, mut rbp] = registers_here!();
    if request.start[0] != 0 && request.start[1] >= sp {
        // A frame further out than this one, still live (it called the
        // walker): its registers are as good as this frame's, and the
        // frames in between are the tracker's own, skipped anyway.
        [ip, sp, rbp] = request.start;
    }
    let context = &request.context;
    let keep = &mut request.keep;
    let base = request.base;
    let low = sp;
    let generation = context.generation;
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
        traces.key = request.key;
        traces.last = NO_SLOT;
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
    if base == 0 || base <= low || low < request.stack_low {
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
    let mut new = [const { core::mem::MaybeUninit::<Step>::uninit() }; TRACE_STEPS];
    let mut new_len = 0;
    // Whether this walk's frames can become a trace.
    let mut keeping = traces.is_some();
    // The trace and position joined, and whether its frame depends on its
    // rbp.
    let mut joined: Option<(usize, usize, bool)> = None;
    // The first frame is this function's own (or the start's); its rule
    // is looked up at that instruction, every caller's at its return
    // address - 1.
    let mut lookup = ip;
    let mut steps = 0;
    let end: Option<End> = 'walk: loop {
        if steps == MAX_FRAMES {
            // Deeper than any capture keeps: something is off, let libgcc
            // decide.
            break None;
        }
        steps += 1;
        let Some(rule) = context.rule_for(lookup) else {
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
                rbp_saved: rule.rbp_saved_at.is_some(),
                rbp_at: rule.rbp_saved_at.unwrap_or(0),
            });
        }
        *inside_unwinder |= context.in_unwinder(ip);
        if keeping {
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
                keeping = false;
            }
        }
        lookup = ip - 1;
        let Some(all) = traces.as_deref_mut() else {
            if !keep.visit(ip, sp) {
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
            while join.cursor > 0 && trace.steps[at_step(join.cursor - 1)].sp < sp {
                join.cursor -= 1;
            }
            if join.cursor == 0 {
                continue;
            }
            let p = join.cursor - 1;
            let at = trace.steps[at_step(p)];
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
            if !keep.visit(ip, sp) {
                break Some(End::Stopped);
            }
            continue;
        };
        // Joined: the frames from `p` on are the trace's, exactly as
        // unwinding them would find them.
        all.joins += 1;
        joinable = [false; TRACES_KEPT];
        joined = Some((i, p, needs_rbp));
        let trace = &all.slots[at_slot(i)];
        if p + 1 == trace.len && new_len == 1 {
            // This walk is the trace's own walk again, frame for frame.
            let remembered = trace.remembered;
            if remembered.set && remembered.key == all.key {
                all.sames += 1;
                request.found_same = true;
                request.same = remembered.value;
                all.last = NO_SLOT;
                all.mru = i;
                return true;
            }
        }
        if !keep.visit(ip, sp) {
            break Some(End::Stopped);
        }
        for q in (0..p).rev() {
            if steps == MAX_FRAMES {
                break 'walk None;
            }
            steps += 1;
            let step = trace.steps[at_step(q)];
            *inside_unwinder |= context.in_unwinder(step.ip);
            if !keep.visit(step.ip, step.sp) {
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
                keeping = false;
            }
        }
    };
    let Some(all) = traces else {
        return end.is_some();
    };
    // SAFETY: `write` initialised the first `new_len` elements, and
    // MaybeUninit<Step> has Step's layout.
    let new = unsafe { core::slice::from_raw_parts(new.as_ptr().cast::<Step>(), new_len) };
    let Some(end) = end else {
        // The traces stay: a failed walk read nothing they depend on.
        return false;
    };
    let lru = (all.mru + 1) % TRACES_KEPT;
    let slot = match joined {
        // The frames above the join and the end are the trace's: this walk
        // read every word they depend on again.
        Some((i, p, needs_rbp))
            if keeping && p + 1 == all.slots[at_slot(i)].len && new_len == 1 =>
        {
            // The same frames: what was remembered still holds.
            let trace = &mut all.slots[at_slot(i)];
            let remembered = trace.remembered;
            trace.put(p, new, needs_rbp);
            trace.remembered = remembered;
            i
        }
        Some((i, p, needs_rbp)) if keeping => {
            // Another call path into the same frames: its own trace (the
            // least recent one), so that each path finds its own at its
            // first frame next time.
            if i != lru {
                let slots = all.slots.as_mut_ptr();
                // SAFETY: `i != lru`, both below TRACES_KEPT: two distinct
                // elements of the array.
                let (from, to) =
                    unsafe { (&*slots.add(at_slot(i)), &mut *slots.add(at_slot(lru))) };
                let p = at_step(p);
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
            all.slots[at_slot(i)].clear();
            i
        }
        None => {
            if keeping {
                all.slots[lru].record(new, end, base, generation);
            } else {
                all.slots[lru].clear();
            }
            lru
        }
    };
    all.mru = slot;
    all.last = if all.slots[at_slot(slot)].len != 0 {
        slot + 1
    } else {
        NO_SLOT
    };
    true
}
