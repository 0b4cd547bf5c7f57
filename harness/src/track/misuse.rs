//! Heap misuse: frees of what is no live block (double and invalid frees),
//! frees through the other allocator family, Rust deallocations with
//! another layout than the allocation's, writes past a block's end (guard
//! bytes) and writes to a freed block (the quarantine's fill).
//!
//! A misuse is recorded as an [`Event`] on the allocation path (no heap,
//! one spin lock, the stacks interned as for allocations) and charged to a
//! check: the one running on the misusing thread, else the one that owned
//! the block. The check's verdict takes its events ([`take`]); one that
//! belongs to no running check is reported on stderr at once
//! ([`report_now`]) and the program goes on. What the hooks do with the
//! bad call: a free of what is no live block never reaches glibc (which
//! would abort, or corrupt its heap); a mismatched or mis-sized free still
//! frees, as the default allocators would.
//!
//! A pointer that is neither a live block nor held by the quarantine is
//! called invalid only where no block of glibc's can be: not 16-byte
//! aligned, on a registered thread's stack, inside a loaded object, or
//! inside a live block of the check running on the thread. Anything else
//! (a block allocated while the hooks were bypassed, or before they saw
//! it) passes to glibc as before: a false report would fail a correct test.

use crate::stacks;
use crate::sys::reentry::Guard;
use crate::sys::sync::{pages, SpinLock};
use crate::track::quarantine::{self, Freed};
use crate::track::scope;
use crate::track::table::{self, Allocator, Block};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Guard bytes after each block allocated inside a check.
pub(crate) const GUARD: usize = 16;
/// What guard bytes hold until something overruns the block.
pub(crate) const GUARD_FILL: u8 = 0xfa;
/// glibc's chunk alignment on x86_64 and aarch64: no block starts elsewhere.
const CHUNK_ALIGN: usize = 16;

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub(crate) enum Kind {
    #[default]
    DoubleFree,
    InvalidFree,
    MismatchedFree,
    LayoutMismatch,
    Overrun,
    WriteAfterFree,
}

impl Kind {
    /// The JSON `kind`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::DoubleFree => "double_free",
            Kind::InvalidFree => "invalid_free",
            Kind::MismatchedFree => "mismatched_free",
            Kind::LayoutMismatch => "layout_mismatch",
            Kind::Overrun => "overrun",
            Kind::WriteAfterFree => "write_after_free",
        }
    }
}

/// The call that met the misuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub(crate) enum Call {
    #[default]
    Free,
    Realloc,
    RustDealloc,
    RustRealloc,
    /// Found by the check's verdict (guard bytes, the quarantine's fill).
    Verdict,
    /// Found when the block left the quarantine.
    QuarantineExit,
}

impl Call {
    #[inline(always)]
    pub(crate) fn is_rust(self) -> bool {
        matches!(self, Call::RustDealloc | Call::RustRealloc)
    }

    /// The function valgrind would show as the call's first frame (Rust's
    /// deallocation reaches glibc as `free`).
    pub(crate) fn valgrind_name(self) -> &'static str {
        match self {
            Call::Realloc | Call::RustRealloc => "realloc",
            _ => "free",
        }
    }

    /// The function called.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Call::Free | Call::Verdict | Call::QuarantineExit => "free",
            Call::Realloc => "realloc",
            Call::RustDealloc => "dealloc",
            Call::RustRealloc => "realloc",
        }
    }
}

/// Where a pointer that is no live block points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub(crate) enum Place {
    /// At a block freed before (held by the quarantine).
    #[default]
    Freed,
    /// Inside a live block.
    Interior,
    /// On a thread's stack.
    Stack,
    /// Inside a loaded object (a global, a string literal).
    Static,
    /// Nowhere known, but not where glibc puts a block (misaligned).
    Nowhere,
}

/// One misuse.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Event {
    pub(crate) kind: Kind,
    pub(crate) call: Call,
    pub(crate) place: Place,
    /// The check charged with it (0: none).
    pub(crate) scope: u32,
    /// The pointer passed, or the first byte found changed.
    pub(crate) addr: usize,
    /// The block it concerns, 0 where none is known.
    pub(crate) block: usize,
    /// That block's size.
    pub(crate) size: usize,
    /// That block's allocator (`None`: unknown).
    pub(crate) allocator: Option<Allocator>,
    /// log2 of that block's alignment (Rust blocks).
    pub(crate) align_log2: u8,
    /// The layout the Rust call gave (`layout_mismatch`).
    pub(crate) given_size: usize,
    pub(crate) given_align: usize,
    /// Interned stacks: the bad call, the block's allocation, its free.
    pub(crate) stack: u32,
    pub(crate) alloc_stack: u32,
    pub(crate) free_stack: u32,
}

impl Event {
    /// valgrind's first line for it.
    pub(crate) fn headline(&self) -> String {
        match self.kind {
            Kind::DoubleFree | Kind::InvalidFree => {
                "Invalid free() / delete / delete[] / realloc()".to_owned()
            }
            Kind::MismatchedFree => {
                let (allocated, freed) = if self.call.is_rust() {
                    ("C malloc", "Rust dealloc")
                } else {
                    ("Rust's allocator", "C free")
                };
                format!(
                    "Mismatched free() / delete / delete []: a block from {allocated} released \
                     by {freed} ({})",
                    self.call.name()
                )
            }
            Kind::LayoutMismatch => format!(
                "Mismatched dealloc layout: size {} align {} for a block allocated with size {} \
                 align {}",
                self.given_size,
                self.given_align,
                self.size,
                1usize << self.align_log2
            ),
            Kind::Overrun => format!(
                "Invalid write after the end of a heap block: its guard bytes were overwritten \
                 (found at {})",
                self.found_at()
            ),
            Kind::WriteAfterFree => format!(
                "Invalid write to a freed heap block: its contents changed after free (found at \
                 {})",
                self.found_at()
            ),
        }
    }

    fn found_at(&self) -> &'static str {
        match self.call {
            Call::Verdict => "the verdict",
            Call::QuarantineExit => "its release from the quarantine",
            Call::Free | Call::RustDealloc => "its free",
            Call::Realloc | Call::RustRealloc => "its realloc",
        }
    }

    /// valgrind's "Address 0x… is …" line.
    pub(crate) fn address_line(&self) -> String {
        let addr = self.addr;
        let offset = addr.wrapping_sub(self.block);
        match (self.kind, self.place) {
            (Kind::Overrun, _) => format!(
                "Address {addr:#x} is {} bytes after a block of size {} alloc'd",
                addr.wrapping_sub(self.block + self.size),
                self.size
            ),
            (Kind::WriteAfterFree, _) | (Kind::DoubleFree, _) => format!(
                "Address {addr:#x} is {offset} bytes inside a block of size {} free'd",
                self.size
            ),
            (_, Place::Interior) => format!(
                "Address {addr:#x} is {offset} bytes inside a block of size {} alloc'd",
                self.size
            ),
            (_, Place::Stack) => format!("Address {addr:#x} is on a thread's stack"),
            (_, Place::Static) => {
                format!("Address {addr:#x} is in a loaded object (a global or a constant)")
            }
            (Kind::InvalidFree, _) => {
                format!("Address {addr:#x} is not stack'd, malloc'd or (recently) free'd")
            }
            _ => format!(
                "Address {addr:#x} is 0 bytes inside a block of size {} alloc'd",
                self.size
            ),
        }
    }

    /// The one-line `message` of the JSON entry.
    pub(crate) fn message(&self) -> String {
        format!("{}; {}", self.headline(), self.address_line())
    }

    /// Whether a block size is known for it.
    pub(crate) fn size_known(&self) -> bool {
        self.block != 0
    }
}

/// Events waiting for their check's verdict, in mapped pages.
struct Store {
    slots: *mut Event,
    len: usize,
    failed: bool,
}

// SAFETY: the pages are owned by the store and only touched under its lock.
unsafe impl Send for Store {}

/// Events held at most for running checks.
const CAPACITY: usize = 4096;

static STORE: SpinLock<Store> = SpinLock::new(Store {
    slots: std::ptr::null_mut(),
    len: 0,
    failed: false,
});

/// Per scope slot (as `scope`'s, by the id's low bits): events that found
/// the store full, packed with the scope id like `scope`'s counters.
static DROPPED: [AtomicU64; 256] = [const { AtomicU64::new(0) }; 256];

impl Store {
    fn ready(&mut self) -> bool {
        if self.slots.is_null() && !self.failed {
            self.slots = pages::map(CAPACITY * std::mem::size_of::<Event>(), true).cast();
            self.failed = self.slots.is_null();
        }
        !self.slots.is_null()
    }

    fn slot(&mut self, i: usize) -> &mut Event {
        debug_assert!(i < CAPACITY);
        // SAFETY: `slots` maps CAPACITY events, `i < CAPACITY`, and the
        // lock (held for `&mut self`) makes this the only access.
        unsafe { &mut *self.slots.add(i) }
    }

    fn push(&mut self, event: Event) -> bool {
        if !self.ready() {
            return false;
        }
        if self.len == CAPACITY {
            // Entries of checks that have ended are nobody's any more.
            let stale = (0..self.len).find(|&i| !scope::is_active(self.slot(i).scope));
            match stale {
                Some(i) => *self.slot(i) = event,
                None => return false,
            }
            return true;
        }
        let at = self.len;
        *self.slot(at) = event;
        self.len += 1;
        true
    }
}

fn count_dropped(scope: u32) {
    let slot = &DROPPED[scope as usize & 255];
    let mut cur = slot.load(Relaxed);
    loop {
        let next = if (cur >> 32) as u32 == scope {
            cur + 1
        } else {
            u64::from(scope) << 32 | 1
        };
        match slot.compare_exchange_weak(cur, next, Relaxed, Relaxed) {
            Ok(_) => return,
            Err(now) => cur = now,
        }
    }
}

/// `pthread_atfork` prepare: the child must not inherit the store locked.
pub(crate) fn lock_for_fork() {
    STORE.lock_for_fork();
}

/// `pthread_atfork` parent and child.
///
/// # Safety
///
/// Only after [`lock_for_fork`] on the forking thread.
pub(crate) unsafe fn unlock_after_fork() {
    // SAFETY: the caller guarantees lock_for_fork holds the store.
    unsafe { STORE.force_unlock() };
}

/// Files `event` for its check, or reports it now if it has none running.
/// Call under the re-entrancy guard.
fn record(event: Event) {
    if event.scope != 0 && scope::is_active(event.scope) {
        let stored = STORE.lock().push(event);
        if !stored {
            count_dropped(event.scope);
        }
        return;
    }
    report_now(&event);
}

/// The check to charge: the one running on this thread, else the block's.
fn charge(guard: &Guard, block_scope: u32) -> u32 {
    match guard.current().scope {
        0 => block_scope,
        running => running,
    }
}

/// The stack of the bad call, as an allocation's would be captured.
fn capture(guard: &Guard, hook_frame: usize) -> u32 {
    let current = guard.current();
    stacks::capture(guard, hook_frame, current.base, current.stack_low)
}

/// What a check's verdict gets: its events, and how many found no room.
pub(crate) struct Taken {
    pub(crate) events: crate::sys::mapvec::MapVec<Event>,
    pub(crate) dropped: usize,
}

/// Takes the events of `scope` (which has ended), then checks the guard
/// bytes of its live `blocks` and the fill of its blocks the quarantine
/// holds (those held since `since`, the quarantine's position before the
/// check began), adding what they show.
pub(crate) fn take(scope: u32, since: u64, blocks: impl Iterator<Item = Block>) -> Taken {
    let mut events = crate::sys::mapvec::MapVec::<Event>::new();
    let mut dropped = 0;
    {
        let _bypass = crate::sys::reentry::Bypass::enter();
        let mut store = STORE.lock();
        let mut i = 0;
        while i < store.len {
            let event = *store.slot(i);
            if event.scope == scope {
                if !events.push(event) {
                    dropped += 1;
                }
                let last = store.len - 1;
                let moved = *store.slot(last);
                *store.slot(i) = moved;
                store.len = last;
            } else {
                i += 1;
            }
        }
    }
    let packed = DROPPED[scope as usize & 255].swap(0, Relaxed);
    if (packed >> 32) as u32 == scope {
        dropped += packed as u32 as usize;
    }
    for block in blocks.filter(|b| b.guarded != 0) {
        let found = table::with_block(block.addr, |live| {
            if live.guarded == 0 || live.size != block.size {
                return None;
            }
            // SAFETY: the shard lock keeps the block live; it was
            // allocated with GUARD bytes after it.
            unsafe { guard_changed(live) }
        });
        if let Some(Some(offset)) = found {
            let _ = events.push(Event {
                kind: Kind::Overrun,
                call: Call::Verdict,
                scope,
                addr: block.addr + block.size + offset,
                block: block.addr,
                size: block.size,
                allocator: Some(block.allocator()),
                alloc_stack: block.stack,
                ..Event::default()
            });
        }
    }
    quarantine::check_scope(scope, since, |freed, offset| {
        let _ = events.push(write_after_free_event(freed, offset, scope, Call::Verdict));
    });
    Taken { events, dropped }
}

/// The offset past the end of the first guard byte that changed.
///
/// # Safety
///
/// `block` is live and was allocated with [`GUARD`] bytes after it.
#[inline(always)]
unsafe fn guard_changed(block: &Block) -> Option<usize> {
    // SAFETY: the caller's guarantee.
    unsafe { guard_changed_at(block.addr + block.size) }
}

/// [`guard_changed`] for the block that ends at `end`.
///
/// # Safety
///
/// As [`guard_changed`].
#[inline(always)]
unsafe fn guard_changed_at(end: usize) -> Option<usize> {
    // SAFETY: the caller guarantees the guard bytes are the block's.
    unsafe { crate::sys::first_not_at(end as *const u8, GUARD, GUARD_FILL) }
}

/// Writes the guard bytes of a block just allocated with [`GUARD`] more
/// bytes than `size`.
#[inline(always)]
pub(crate) fn write_guard(ptr: *mut std::ffi::c_void, size: usize) {
    // SAFETY: the allocator returned at least `size + GUARD` bytes at `ptr`.
    // libc's `memset`, not `write_bytes`: unoptimised, that one runs a
    // precondition check of some 65 instructions first.
    unsafe {
        libc::memset(
            ptr.cast::<u8>().add(size).cast(),
            i32::from(GUARD_FILL),
            GUARD,
        )
    };
}

/// The extra bytes to ask for a block of `size` about to be allocated on
/// this thread: [`GUARD`] inside a check, else 0.
#[inline(always)]
pub(crate) fn guard_for_new(size: usize) -> usize {
    if scope::in_check_fast() && size.checked_add(GUARD).is_some() {
        GUARD
    } else {
        0
    }
}

/// How a block is being released.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Release {
    pub(crate) call: Call,
    /// The layout a Rust call gave: (size, align).
    pub(crate) layout: Option<(usize, usize)>,
    pub(crate) hook_frame: usize,
}

/// Checks a live block being released (already out of the table): the
/// family, a Rust call's layout, the guard bytes. Returns the free's stack
/// when one was captured (`keep_stack`, for a check's block the quarantine
/// may hold). Call under the guard.
#[inline(always)]
pub(crate) fn on_release(guard: &Guard, block: &Block, how: Release, keep_stack: bool) -> u32 {
    if guard.in_harness() {
        // leakcheck's own frees, with the layouts Rust gave them. A record
        // that disagrees is stale (its block was freed while the hooks were
        // bypassed, and the address handed out again unrecorded): no
        // misuse, and no guard bytes to trust.
        return 0;
    }
    let rust_block = block.allocator().is_rust();
    let mismatched = rust_block != how.call.is_rust();
    let layout_wrong = match how.layout {
        Some((size, align)) if rust_block => {
            size != block.size || align.trailing_zeros() != u32::from(block.align_log2)
        }
        _ => false,
    };
    // SAFETY: the block was just retired by the caller, who has not freed
    // it yet; its guard bytes are still its own.
    let overrun =
        block.guarded != 0 && unsafe { guard_changed_at(block.addr + block.size) }.is_some();
    let stack = if (block.scope != 0 && keep_stack) || mismatched || layout_wrong || overrun {
        capture(guard, how.hook_frame)
    } else {
        0
    };
    if mismatched || layout_wrong || overrun {
        // By value: a reference would keep the caller's block in memory,
        // and reading it back whole right after the table wrote it field by
        // field stalls store forwarding on every free.
        released_badly(guard, *block, how, stack, mismatched, layout_wrong);
    }
    stack
}

#[cold]
#[inline(never)]
fn released_badly(
    guard: &Guard,
    block: Block,
    how: Release,
    stack: u32,
    mismatched: bool,
    layout_wrong: bool,
) {
    let base = Event {
        call: how.call,
        scope: charge(guard, block.scope),
        addr: block.addr,
        block: block.addr,
        size: block.size,
        allocator: Some(block.allocator()),
        align_log2: block.align_log2,
        stack,
        alloc_stack: block.stack,
        ..Event::default()
    };
    if mismatched {
        record(Event {
            kind: Kind::MismatchedFree,
            place: Place::Interior,
            ..base
        });
    }
    if layout_wrong {
        let (given_size, given_align) = how.layout.unwrap_or_default();
        record(Event {
            kind: Kind::LayoutMismatch,
            place: Place::Interior,
            given_size,
            given_align,
            ..base
        });
    }
    if block.guarded != 0 {
        // SAFETY: as in `on_release`.
        if let Some(offset) = unsafe { guard_changed(&block) } {
            record(Event {
                kind: Kind::Overrun,
                addr: block.addr + block.size + offset,
                // The block's owner wrote past it; whoever frees it only
                // found out.
                scope: if block.scope != 0 {
                    block.scope
                } else {
                    base.scope
                },
                ..base
            });
        }
    }
}

/// A Rust `realloc` of `ptr`, which is no live block: whether it is a
/// misuse that was reported (then the block must not reach the allocator).
pub(crate) fn rust_realloc_of_unknown(ptr: *mut u8, how: Release) -> bool {
    let Some(guard) = Guard::enter() else {
        return false;
    };
    !ptr.is_null() && unknown_pointer(&guard, ptr as usize, how)
}

/// [`on_release`] for a block a wrapped allocator (`Tracked<A>`) releases:
/// returns whether it is a malloc block, which C's `free` must release
/// rather than the wrapped allocator.
pub(crate) fn wrapped_release(block: &Block, how: Release) -> bool {
    let Some(guard) = Guard::enter() else {
        return false;
    };
    on_release(&guard, block, how, false);
    !block.allocator().is_rust()
}

/// A free (or realloc) of `addr`, which is no live block. Returns whether
/// it is a misuse that was reported: then the call must not reach glibc.
/// Call under the guard, only for pointers the table does not know.
#[cold]
#[inline(never)]
pub(crate) fn unknown_pointer(guard: &Guard, addr: usize, how: Release) -> bool {
    if let Some(freed) = quarantine::held_at(addr) {
        record(Event {
            kind: Kind::DoubleFree,
            call: how.call,
            place: Place::Freed,
            scope: charge(guard, freed.scope),
            addr,
            block: addr,
            size: freed.size,
            stack: capture(guard, how.hook_frame),
            alloc_stack: freed.alloc_stack,
            free_stack: freed.free_stack,
            ..Event::default()
        });
        return true;
    }
    if guard.in_harness() {
        // leakcheck's own code: what it frees came from Rust's or glibc's
        // allocator, with no record when the hooks were bypassed. Not a
        // misuse to look for; glibc gets it.
        return false;
    }
    let current = guard.current().scope;
    let mut event = Event {
        kind: Kind::InvalidFree,
        call: how.call,
        scope: current,
        addr,
        ..Event::default()
    };
    let misaligned = addr % CHUNK_ALIGN != 0;
    // Only where the answer is certain, or the block is the running
    // check's own (a stale record of a block freed while the hooks were
    // bypassed could otherwise hold an untracked block's address).
    let inside = if misaligned || current != 0 {
        table::containing(addr).filter(|b| misaligned || b.scope == current)
    } else {
        None
    };
    if let Some(block) = inside {
        event.place = Place::Interior;
        event.block = block.addr;
        event.size = block.size;
        event.allocator = Some(block.allocator());
        event.alloc_stack = block.stack;
        event.scope = charge(guard, block.scope);
    } else if crate::track::threads::on_a_stack(addr) {
        event.place = Place::Stack;
    } else if !guard.in_signal_handler() && in_loaded_object(addr) {
        event.place = Place::Static;
    } else if misaligned {
        event.place = Place::Nowhere;
    } else {
        return false;
    }
    event.stack = capture(guard, how.hook_frame);
    record(event);
    true
}

/// Whether `addr` lies in a loaded object's segments (`dladdr` allocates
/// nothing and takes only the loader's recursive lock).
fn in_loaded_object(addr: usize) -> bool {
    // SAFETY: dladdr only writes the Dl_info it is given.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: any address may be asked about; `info` is writable.
    unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) != 0 }
}

fn write_after_free_event(freed: &Freed, offset: usize, scope: u32, call: Call) -> Event {
    Event {
        kind: Kind::WriteAfterFree,
        call,
        place: Place::Freed,
        scope,
        addr: freed.addr + offset,
        block: freed.addr,
        size: freed.size,
        alloc_stack: freed.alloc_stack,
        free_stack: freed.free_stack,
        ..Event::default()
    }
}

/// A held block whose fill changed, found as it leaves the quarantine.
/// Called by the quarantine under the re-entrancy guard.
#[cold]
pub(crate) fn write_after_free(freed: &Freed, offset: usize) {
    record(write_after_free_event(
        freed,
        offset,
        freed.scope,
        Call::QuarantineExit,
    ));
}

/// Frames of each stack printed for a misuse outside any check.
const PRINTED_FRAMES: usize = 12;

/// Reports a misuse that no running check can take, on stderr, with its
/// stacks symbolised, and lets the program go on. Runs under the
/// re-entrancy guard, so what symbolising allocates goes to glibc
/// unrecorded; in a signal handler only addresses are printed (the
/// symboliser takes locks).
#[cold]
#[inline(never)]
fn report_now(event: &Event) {
    let in_handler = scope::in_signal_handler_now();
    let mut text = format!(
        "leakcheck: heap misuse outside any check ({}): {}\n    {}",
        event.kind.name(),
        event.headline(),
        event.address_line()
    );
    let mut ips = Vec::new();
    for (title, stack) in [
        ("", event.stack),
        ("  freed at:", event.free_stack),
        ("  allocated at:", event.alloc_stack),
    ] {
        if stack == 0 {
            continue;
        }
        stacks::frames(stack, &mut ips);
        if !title.is_empty() {
            text.push('\n');
            text.push_str(title);
        }
        for &ip in ips.iter().take(PRINTED_FRAMES) {
            if in_handler {
                text.push_str(&format!("\n    at {ip:#x}"));
                continue;
            }
            for symbol in &stacks::symbols::resolve_uncached(ip) {
                let function = symbol.function.as_deref().unwrap_or("???");
                text.push_str(&format!("\n    at {function}"));
                if let (Some(file), Some(line)) = (&symbol.file, symbol.line) {
                    text.push_str(&format!(" ({file}:{line})"));
                }
            }
        }
    }
    text.push_str(match event.kind {
        Kind::DoubleFree | Kind::InvalidFree => "\n(not passed to glibc; the program goes on)\n",
        _ => "\n(the program goes on)\n",
    });
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        // SAFETY: writes bytes of a live buffer to stderr.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            break;
        }
        rest = &rest[n as usize..];
    }
}
