//! Leak classification, memcheck's way: which of a scope's surviving blocks
//! are still reachable, possibly lost, definitely lost or indirectly lost.
//!
//! Roots:
//! - the writable data and bss of every loaded object;
//! - of the threads that can hold what the test gave them (threads the test
//!   or an ended check created, and threads created outside any check, such
//!   as a C library's workers): the static TLS blocks, the
//!   `pthread_setspecific` values in the thread descriptor, and the live
//!   stack (from the stack pointer up for a thread blocked in a system call,
//!   with its argument registers; the resident stack otherwise);
//! - for [`crate::check`], the blocks its caller allocated on the checking
//!   thread since that thread's previous check (a context the closure
//!   stores into).
//!
//! Live blocks that are not the scope's are followed from the roots like
//! any memory (by any pointer into them, as LeakSanitizer does), not taken
//! as roots themselves: garbage such as an earlier test's leaks, the
//! runtime's moved-out values, or an `Arc` whose value was dropped keeps
//! stale addresses, and glibc hands those addresses out again. Stacks and
//! TLS of the harness's threads (the main thread, libtest's test threads,
//! other checks' body threads) are not roots for the same reason: the
//! test's code never runs there, and their frames and libtest's state
//! reachable from them keep stale slots. The checking thread's stack is never a root:
//! below the test's return it is dead, and the body ran on a thread that
//! has exited and wiped its dead stack (`threads::wipe_dead_stack`).
//!
//! From the roots, as memcheck does (`mc_leakcheck.c`): a pointer to a scope
//! block's start from a root, a reached block or a reachable scope block
//! makes it reachable; a pointer into its interior, or any pointer from a
//! possibly-lost block, makes it possibly lost (until a start pointer
//! upgrades it). Blocks left unreached are then grouped into cliques: each
//! one (or one of each cycle) not reached from another unreached block
//! outside its cycle is definitely lost, and what it reaches is indirectly
//! lost, wherever the blocks are ([`Marker::cliques`]).
//!
//! A pointer to a block's start with a tag in the bits below the block's
//! alignment (crossbeam-epoch's, rayon's) counts as a start pointer
//! ([`tagged_start`]); memcheck calls it interior. Two more interior
//! pointers count as start pointers for Rust blocks, so that
//! common Rust values held in globals are reachable rather than possibly
//! lost: hashbrown's pointer to its control bytes (every `HashMap` and
//! `HashSet`; the bytes are checked), and `Arc::into_raw`/`Rc::into_raw`'s
//! pointer past the two counts (user data handed to C). And one pointer
//! never counts: glibc's own pointer to the chunk that follows a block (the
//! arena's top chunk, a free list), which lands on the last word of a block
//! that fills its chunk.
//!
//! Every read goes through [`Reader`], so memory unmapped under the scan
//! (a block another thread frees, a thread that exits) is skipped, never a
//! crash. Working memory is mapped pages ([`MapVec`]), never heap blocks.

use crate::sys::mapvec::MapVec;
use crate::track::table::{self, Block};
use crate::verdict::memscan::Reader;
use crate::verdict::{sort, Kind};

const UNREACHED: u8 = 0;
const POSSIBLE: u8 = 1;
const REACHABLE: u8 = 2;
const INDIRECT: u8 = 3;
/// Unreached, and visited by the clique search (`Marker::cliques`).
const SEEN: u8 = 4;

/// Why a classification could not be done.
#[derive(Debug)]
pub(crate) struct Failed(pub(crate) &'static str);

pub(crate) use crate::verdict::survivors::NO_ROOT;

/// Classifies `blocks` (the scope's, in any order; sorted by address on
/// return) and returns one kind per block, in that order, and for each
/// indirectly lost block the index of the definitely lost block whose flood
/// took it (what it hangs off, for the report), [`NO_ROOT`] for the others;
/// the second array is empty when no block is indirectly lost.
pub(crate) fn classify(
    scope: u32,
    blocks: &mut [Block],
    caller_epoch: u32,
) -> Result<(MapVec<Kind>, MapVec<u32>), Failed> {
    sort::by_address(blocks, |b| b.addr);
    let mut reader = Reader::new().ok_or(Failed("no memory for the scan buffer"))?;
    // The Reader serialises classifications, so the pooled buffers are
    // this one's until it puts them back.
    let pooled = POOL.lock().unwrap_or_else(|e| e.into_inner()).take();
    let mut marker = Marker::new(blocks, pooled.unwrap_or_default())?;
    let result = run_classification(scope, &mut reader, &mut marker, caller_epoch);
    let buffers = marker.into_buffers();
    *POOL.lock().unwrap_or_else(|e| e.into_inner()) = Some(buffers);
    result
}

/// Working memory kept from one classification to the next: mapping and
/// faulting in megabytes of fresh pages each time costs more than using
/// them.
#[derive(Default)]
struct Buffers {
    others: MapVec<Span>,
    scratch: MapVec<Span>,
    other_reached: MapVec<u8>,
    keys: MapVec<usize>,
    values: MapVec<u32>,
    block_keys: MapVec<usize>,
    block_values: MapVec<u32>,
}

static POOL: std::sync::Mutex<Option<Buffers>> = std::sync::Mutex::new(None);

fn run_classification(
    scope: u32,
    reader: &mut Reader,
    marker: &mut Marker<'_>,
    caller_epoch: u32,
) -> Result<(MapVec<Kind>, MapVec<u32>), Failed> {
    let blocks = marker.blocks;
    let callers = |b: &Block| b.scope == 0 && b.epoch == caller_epoch && caller_epoch != 0;
    // First without following other blocks: the direct roots, the caller's
    // blocks, and one pass over every other block for a pointer into the
    // scope's. If none holds one, following them cannot change anything,
    // and the index they would need is not built. That is the common case
    // of a leak in a big process.
    roots::data_segments(reader, marker);
    marker.drain(reader);
    if !marker.settled() {
        roots::threads(reader, marker, scope);
        marker.drain(reader);
    }
    // Other blocks that point into the scope's ("holders"), up to a limit.
    const MAX_HOLDERS: usize = 4096;
    let mut too_many = false;
    if !marker.settled() {
        table::for_each_other(scope, |other| {
            if too_many {
                return;
            }
            let root = callers(other);
            let mut holds = false;
            reader.scan(other.addr, other.addr + other.size, &mut |words| {
                for &w in words {
                    if root {
                        marker.reach(w as usize, true);
                    } else if marker.lookup(w as usize).is_some() {
                        holds = true;
                    }
                }
            });
            if holds {
                too_many |= marker.others.len() >= MAX_HOLDERS
                    || !marker.others.push(Span {
                        addr: other.addr,
                        end: other.addr + other.size,
                        callers: false,
                    });
            }
        });
        marker.drain(reader);
    }
    if !marker.others.is_empty() && !marker.settled() {
        // Second pass: are the holders pointed to from the roots directly
        // (a global vector's buffer, a library's state)? If every one is,
        // what they point to is settled exactly.
        marker.restart();
        let resolved = !too_many && index_others(marker) && {
            follow_from_roots(scope, reader, marker, &callers, true);
            marker.other_reached.iter().all(|&r| r != 0)
        };
        if !resolved {
            // A holder further from the roots: index and follow every
            // other block.
            marker.restart();
            marker.others.clear();
            follow_other_blocks(scope, reader, marker, &callers)?;
        }
    }
    marker.cliques(reader);
    if marker.out_of_memory {
        return Err(Failed("no memory for the mark stack"));
    }
    let mut kinds = MapVec::new();
    if !kinds.reserve(blocks.len()) {
        return Err(Failed("no memory for the result"));
    }
    for &state in marker.state.iter() {
        kinds.push(match state {
            REACHABLE => Kind::StillReachable,
            POSSIBLE => Kind::PossiblyLost,
            INDIRECT => Kind::IndirectlyLost,
            _ => Kind::DefinitelyLost,
        });
    }
    // Filled by the clique floods, and only when one took a block: each
    // entry is NO_ROOT but for the indirectly lost blocks.
    let roots = std::mem::take(&mut marker.root);
    Ok((kinds, roots))
}

/// The full flood: every other live block indexed by address and followed
/// from the roots.
fn follow_other_blocks(
    scope: u32,
    reader: &mut Reader,
    marker: &mut Marker<'_>,
    callers: &impl Fn(&Block) -> bool,
) -> Result<(), Failed> {
    // Room for every block the table holds, plus some that may come while
    // it is walked.
    let mut others_ok = marker.others.reserve(table::len() + 1024);
    table::for_each_other(scope, |other| {
        others_ok &= marker.others.push(Span {
            addr: other.addr,
            end: other.addr + other.size,
            callers: callers(other),
        });
    });
    if !others_ok || !index_others(marker) {
        return Err(Failed("no memory for the index of live blocks"));
    }
    follow_from_roots(scope, reader, marker, callers, false);
    Ok(())
}

/// Sorts and indexes `marker.others`. False if out of memory.
fn index_others(marker: &mut Marker<'_>) -> bool {
    marker.other_reached.clear();
    if !radix_sort(&mut marker.others, &mut marker.scratch)
        || !marker.other_reached.resize(marker.others.len(), 0)
    {
        return false;
    }
    for i in 0..marker.others.len() {
        let o = marker.others[i];
        marker.regions.add(o.addr, o.end);
    }
    marker.others_low = marker.others.first().map_or(0, |o| o.addr);
    marker.others_high = marker.others.last().map_or(0, |o| o.end.max(o.addr + 1));
    marker.pages.build(&marker.others)
}

/// Marks from the roots, following the indexed other blocks.
fn follow_from_roots(
    scope: u32,
    reader: &mut Reader,
    marker: &mut Marker<'_>,
    callers: &impl Fn(&Block) -> bool,
    only_holders: bool,
) {
    // What the check's caller allocated before calling it (a context, a
    // vector it hands the check) is the caller's live data: a root.
    for k in 0..marker.others.len() {
        if marker.others[k].callers {
            marker.other_reached[k] = 1;
            marker.push_other(k);
        }
    }
    if only_holders {
        // Only holders are indexed: the caller's blocks that are not
        // holders are roots too, and may point at one.
        table::for_each_other(scope, |other| {
            if callers(other) {
                reader.scan(other.addr, other.addr + other.size, &mut |words| {
                    for &w in words {
                        marker.reach(w as usize, true);
                    }
                });
            }
        });
    }
    roots::data_segments(reader, marker);
    marker.drain(reader);
    if !marker.settled() {
        roots::threads(reader, marker, scope);
        marker.drain(reader);
    }
}

/// Sorts spans by address: LSD radix on the address's bits above the
/// 16-byte alignment, 11 bits a pass. Several times faster than a
/// comparison sort on the 100k blocks a big test process holds. False if out
/// of memory.
fn radix_sort(spans: &mut MapVec<Span>, scratch: &mut MapVec<Span>) -> bool {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    let n = spans.len();
    if n < 256 {
        spans.sort_unstable_by_key(|s| s.addr);
        return true;
    }
    scratch.clear();
    if !scratch.resize(n, Span::default()) {
        return false;
    }
    let (mut from, mut to): (&mut [Span], &mut [Span]) = (&mut spans[..], &mut scratch[..]);
    let mut passes = 0;
    for shift in (4..52).step_by(BITS as usize) {
        let digit = |s: &Span| (s.addr >> shift) & (BUCKETS - 1);
        let mut counts = [0usize; BUCKETS];
        for s in from.iter() {
            counts[digit(s)] += 1;
        }
        if counts.contains(&n) {
            // Every address has the same digit here: nothing to do.
            continue;
        }
        let mut at = 0;
        for c in counts.iter_mut() {
            let here = *c;
            *c = at;
            at += here;
        }
        for s in from.iter() {
            let d = digit(s);
            to[counts[d]] = *s;
            counts[d] += 1;
        }
        std::mem::swap(&mut from, &mut to);
        passes += 1;
    }
    if passes % 2 == 1 {
        // The sorted data is in the scratch buffer.
        to.copy_from_slice(from);
    }
    true
}

/// A 64 Ki-bit filter of the 2 MiB regions that hold blocks: most words a
/// scan reads (small numbers, code and stack addresses) fail it in a few
/// instructions, before any look-up.
struct Regions([u64; 1024]);

impl Regions {
    const SHIFT: u32 = 21;

    fn bit(region: usize) -> (usize, u64) {
        let h = region.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 48;
        (h >> 6 & 1023, 1 << (h & 63))
    }

    fn add(&mut self, start: usize, end: usize) {
        for region in (start >> Self::SHIFT)..=(end.max(start + 1) - 1) >> Self::SHIFT {
            let (word, bit) = Self::bit(region);
            self.0[word] |= bit;
        }
    }

    #[inline]
    fn may_hold(&self, w: usize) -> bool {
        let (word, bit) = Self::bit(w >> Self::SHIFT);
        self.0[word] & bit != 0
    }
}

/// A live block that is not the scope's.
#[derive(Clone, Copy, Default)]
struct Span {
    addr: usize,
    end: usize,
    /// Allocated by the checking thread since its previous check.
    callers: bool,
}

const PAGE_SHIFT: u32 = 12;

/// Page number → index of the first block (in address order) that overlaps
/// the page: open addressing in mapped pages. Turns the look-up of a word
/// among 100k blocks into a hash probe and a search within one page.
struct PageIndex {
    /// Page number + 1; 0 marks an empty slot.
    keys: MapVec<usize>,
    values: MapVec<u32>,
    mask: usize,
    /// log2 of the bytes a key covers.
    shift: u32,
}

impl PageIndex {
    fn slot(&self, page: usize) -> usize {
        (page.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) & self.mask
    }

    /// Indexes `spans` (sorted by address). False if out of memory.
    fn build(&mut self, spans: &[Span]) -> bool {
        self.build_over(spans, PAGE_SHIFT, |s| (s.addr, s.end))
    }

    /// Indexes `items` (sorted by address), each covering `span(item)`:
    /// `[start, end)`, by "pages" of `1 << shift` bytes. False if out of
    /// memory.
    fn build_over<T>(
        &mut self,
        items: &[T],
        shift: u32,
        span: impl Fn(&T) -> (usize, usize),
    ) -> bool {
        self.shift = shift;
        let pages = granules(items, shift, &span);
        let capacity = (pages * 2).next_power_of_two().max(64);
        self.keys.clear();
        self.values.clear();
        if !self.keys.resize(capacity, 0) || !self.values.resize(capacity, 0) {
            return false;
        }
        self.mask = capacity - 1;
        for (i, item) in items.iter().enumerate() {
            let (addr, end) = span(item);
            let last = (end.max(addr + 1) - 1) >> shift;
            for page in (addr >> shift)..=last {
                let mut at = self.slot(page);
                loop {
                    match self.keys[at] {
                        0 => {
                            self.keys[at] = page + 1;
                            self.values[at] = i as u32;
                            break;
                        }
                        // Already indexed by an earlier (lower) block.
                        key if key == page + 1 => break,
                        _ => at = (at + 1) & self.mask,
                    }
                }
            }
        }
        true
    }

    /// The last of `items` (the ones indexed, sorted by address) that
    /// starts at or below `w`, if one overlaps `w`'s page: the first block
    /// on the page, then a galloping search among those that follow (blocks
    /// on one page are few, however small they are).
    #[inline]
    fn find<T>(&self, items: &[T], w: usize, addr: impl Fn(&T) -> usize) -> Option<usize> {
        let first = self.first_on(w >> self.shift)?;
        let mut bound = 1;
        while first + bound < items.len() && addr(&items[first + bound]) <= w {
            bound *= 2;
        }
        let window = &items[first..(first + bound + 1).min(items.len())];
        Some(
            first
                + window
                    .partition_point(|item| addr(item) <= w)
                    .checked_sub(1)?,
        )
    }

    #[inline]
    fn first_on(&self, page: usize) -> Option<usize> {
        if self.keys.is_empty() {
            return None;
        }
        let mut at = self.slot(page);
        loop {
            match self.keys[at] {
                0 => return None,
                key if key == page + 1 => return Some(self.values[at] as usize),
                _ => at = (at + 1) & self.mask,
            }
        }
    }
}

/// The distinct granules of `1 << shift` bytes that `items` (sorted by
/// address) cover: a granule shared by neighbours (every page, for small
/// blocks) counts once.
fn granules<T>(items: &[T], shift: u32, span: impl Fn(&T) -> (usize, usize)) -> usize {
    let (mut count, mut next_uncounted) = (0, 0);
    for item in items {
        let (addr, end) = span(item);
        let first = (addr >> shift).max(next_uncounted);
        let last = (end.max(addr + 1) - 1) >> shift;
        if last >= first {
            count += last - first + 1;
            next_uncounted = last + 1;
        }
    }
    count
}

/// The index granule for `count` blocks spread over `[low, high)`: a page,
/// or less where blocks are dense (small blocks in one arena), so that a
/// look-up searches about eight blocks, not the hundred on a page.
fn dense_shift(low: usize, high: usize, count: usize) -> u32 {
    let spacing = (high - low) / count.max(1);
    let granule = spacing.saturating_mul(8).max(16);
    (usize::BITS - 1 - granule.leading_zeros()).clamp(4, PAGE_SHIFT)
}

/// Entries of the mark stack with this bit are indexes into `others`.
const OTHER: u32 = 1 << 31;

struct Marker<'b> {
    blocks: &'b [Block],
    /// `[low, high)` covers every block: most words fail this test alone.
    low: usize,
    high: usize,
    state: MapVec<u8>,
    /// Every other live block, by address, and whether it was reached.
    others: MapVec<Span>,
    scratch: MapVec<Span>,
    other_reached: MapVec<u8>,
    regions: Box<Regions>,
    others_low: usize,
    others_high: usize,
    pages: PageIndex,
    /// The same index over `blocks`.
    block_pages: PageIndex,
    stack: MapVec<u32>,
    /// For each indirectly lost block, the clique leader whose flood took
    /// it (filled by [`Marker::cliques`]; empty until a flood takes one).
    root: MapVec<u32>,
    reachable: usize,
    out_of_memory: bool,
    peek: crate::verdict::memscan::Peek,
}

impl<'b> Marker<'b> {
    fn new(blocks: &'b [Block], buffers: Buffers) -> Result<Marker<'b>, Failed> {
        let mut state = MapVec::new();
        if !state.reserve(blocks.len()) {
            return Err(Failed("no memory for the block states"));
        }
        for _ in blocks {
            state.push(UNREACHED);
        }
        let low = blocks.first().map_or(0, |b| b.addr);
        let high = blocks.last().map_or(0, |b| b.addr + b.size.max(1));
        let Buffers {
            mut others,
            mut scratch,
            mut other_reached,
            mut keys,
            mut values,
            block_keys,
            block_values,
        } = buffers;
        others.clear();
        scratch.clear();
        other_reached.clear();
        keys.clear();
        values.clear();
        let mut regions = Box::new(Regions([0; 1024]));
        for b in blocks {
            regions.add(b.addr, b.addr + b.size);
        }
        let mut block_pages = PageIndex {
            keys: block_keys,
            values: block_values,
            mask: 0,
            shift: PAGE_SHIFT,
        };
        // Indexed only while the index stays the size of the blocks: a huge
        // block (a reserved calloc of gigabytes) would need an entry a
        // granule. Without it, look-ups search the sorted blocks.
        block_pages.keys.clear();
        let shift = dense_shift(low, high, blocks.len());
        let span = |b: &Block| (b.addr, b.addr + b.size);
        if granules(blocks, shift, span) <= 2 * blocks.len() + 4096
            && !block_pages.build_over(blocks, shift, span)
        {
            return Err(Failed("no memory for the index of the blocks"));
        }
        Ok(Marker {
            blocks,
            low,
            high,
            state,
            others,
            scratch,
            other_reached,
            regions,
            others_low: 0,
            others_high: 0,
            pages: PageIndex {
                keys,
                values,
                mask: 0,
                shift: PAGE_SHIFT,
            },
            block_pages,
            stack: MapVec::new(),
            root: MapVec::new(),
            reachable: 0,
            out_of_memory: false,
            peek: crate::verdict::memscan::Peek::new(),
        })
    }

    /// Forgets every mark, for a second pass.
    fn restart(&mut self) {
        for state in self.state.iter_mut() {
            *state = UNREACHED;
        }
        self.reachable = 0;
        self.stack.clear();
    }

    fn into_buffers(self) -> Buffers {
        Buffers {
            others: self.others,
            scratch: self.scratch,
            other_reached: self.other_reached,
            keys: self.pages.keys,
            values: self.pages.values,
            block_keys: self.block_pages.keys,
            block_values: self.block_pages.values,
        }
    }

    /// Every block is reachable: nothing further can change.
    fn settled(&self) -> bool {
        self.reachable == self.blocks.len()
    }

    /// The other live block `w` points into (start or interior).
    #[inline]
    fn lookup_other(&self, w: usize) -> Option<usize> {
        if w < self.others_low || w >= self.others_high {
            return None;
        }
        let i = self.pages.find(&self.others, w, |o| o.addr)?;
        let o = self.others[i];
        (w < o.end || w == o.addr).then_some(i)
    }

    /// The block `w` points into, and whether at its start.
    #[inline]
    fn lookup(&self, w: usize) -> Option<(usize, bool)> {
        if w < self.low || w >= self.high {
            return None;
        }
        let i = if self.block_pages.keys.is_empty() {
            self.blocks
                .partition_point(|b| b.addr <= w)
                .checked_sub(1)?
        } else {
            self.block_pages.find(self.blocks, w, |b| b.addr)?
        };
        let b = &self.blocks[i];
        if w == b.addr {
            Some((i, true))
        } else if w < b.addr + b.size {
            Some((i, false))
        } else {
            None
        }
    }

    /// A pointer `w` found in a root (`definite`) or in a block whose state
    /// is reachable (`definite`) or possibly lost.
    #[inline]
    fn reach(&mut self, w: usize, definite: bool) {
        if !self.regions.may_hold(w) {
            return;
        }
        let Some((j, mut start)) = self.lookup(w) else {
            // Another live block: reached by any pointer into it, as
            // LeakSanitizer does; its contents count as roots from then on.
            if let Some(k) = self.lookup_other(w) {
                if self.other_reached[k] == 0 {
                    let o = self.others[k];
                    if self.next_chunk_of(o.addr, o.end - o.addr, w) {
                        return;
                    }
                    self.other_reached[k] = 1;
                    self.push_other(k);
                }
            }
            return;
        };
        let state = self.state[j];
        if state == REACHABLE {
            return;
        }
        if !start {
            let block = self.blocks[j];
            if self.next_chunk_of(block.addr, block.size, w) {
                return;
            }
            start = tagged_start(&block, w) || self.counts_as_start(&block, w);
        }
        if start && definite {
            self.state[j] = REACHABLE;
            self.reachable += 1;
            self.push(j);
        } else if state == UNREACHED {
            self.state[j] = POSSIBLE;
            self.push(j);
        }
    }

    fn push_other(&mut self, k: usize) {
        if !self.stack.push(k as u32 | OTHER) {
            self.out_of_memory = true;
        }
    }

    fn push(&mut self, j: usize) {
        if !self.stack.push(j as u32) {
            self.out_of_memory = true;
        }
    }

    /// glibc's pointer to the chunk after `block`: the chunk header sits on
    /// the block's last word when the block fills its chunk.
    fn next_chunk_of(&self, addr: usize, size: usize, w: usize) -> bool {
        if w + 8 < addr + size || w % 8 != 0 || w < addr + 8 {
            return false;
        }
        let Some(header) = self.peek.word(addr - 8) else {
            return false;
        };
        const IS_MMAPPED: u64 = 2;
        header & IS_MMAPPED == 0 && addr - 16 + (header & !7) as usize == w
    }

    /// The interior pointers Rust keeps as its handle to a block, other than
    /// tagged ones ([`tagged_start`]).
    fn counts_as_start(&mut self, block: &Block, w: usize) -> bool {
        if !block.allocator().is_rust() {
            return false;
        }
        let offset = w - block.addr;
        // hashbrown: [buckets × T, padded to 16][buckets + 16 control bytes],
        // pointed to at the control bytes.
        const GROUP: usize = 16;
        let tail = block.size - offset;
        if offset % GROUP == 0 && tail > GROUP {
            let buckets = tail - GROUP;
            if buckets.is_power_of_two() && buckets >= 2 && offset >= buckets {
                return self.looks_like_control_bytes(w, buckets);
            }
        }
        // Arc/Rc::into_raw: the value after the strong and weak counts.
        if offset == 16 {
            let count = |c: Option<u64>| c.is_some_and(|c| (1..1 << 40).contains(&c));
            return count(self.peek.word(block.addr)) && count(self.peek.word(block.addr + 8));
        }
        false
    }

    /// hashbrown's control bytes at `ctrl` for `buckets` buckets: each byte
    /// FULL (top bit clear), EMPTY (0xFF) or DELETED (0x80), and the group
    /// after the buckets mirrors the first (for tables smaller than a group,
    /// bytes `[16, 16 + buckets)` mirror `[0, buckets)`). Checks the first
    /// and the trailing group, not the whole table.
    fn looks_like_control_bytes(&self, ctrl: usize, buckets: usize) -> bool {
        const GROUP: usize = 16;
        let read = |at: usize| -> Option<[u8; GROUP]> {
            let lo = self.peek.word(at)?;
            let hi = self.peek.word(at + 8)?;
            let mut bytes = [0u8; GROUP];
            bytes[..8].copy_from_slice(&lo.to_le_bytes());
            bytes[8..].copy_from_slice(&hi.to_le_bytes());
            Some(bytes)
        };
        let (Some(first), Some(trailing)) = (read(ctrl), read(ctrl + buckets.max(GROUP))) else {
            return false;
        };
        // FULL (top bit clear), DELETED (0x80) or EMPTY (0xFF).
        let valid = |b: &u8| *b <= 0x80 || *b == 0xFF;
        if buckets >= GROUP {
            return first.iter().chain(trailing.iter()).all(valid)
                && first == trailing
                && self.has_empty_bucket(ctrl, buckets);
        }
        // A small table has `buckets + 16` control bytes (the trailing read
        // runs past the block; only its first `buckets` bytes are the
        // table's): the mirror of the buckets, every byte after them in the
        // first group EMPTY, and at least one EMPTY bucket (hashbrown keeps
        // one free).
        first.iter().all(valid)
            && first[..buckets] == trailing[..buckets]
            && first[..buckets].contains(&0xFF)
            && first[buckets..].iter().all(|&b| b == 0xFF)
    }

    /// Whether one of the `buckets` control bytes at `ctrl` is EMPTY:
    /// hashbrown never fills a table (it grows at 7/8), so a run of FULL
    /// bytes (zeroed memory, say) is not one. Reads at most 64 KiB; a
    /// larger table is taken on its other checks.
    fn has_empty_bucket(&self, ctrl: usize, buckets: usize) -> bool {
        let words = (buckets / 8).min(8 * 1024);
        (0..words).any(|i| {
            self.peek
                .word(ctrl + 8 * i)
                .is_some_and(|w| w.to_le_bytes().contains(&0xFF))
        }) || buckets / 8 > words
    }

    /// Scans what the marked blocks point to, until nothing changes.
    fn drain(&mut self, reader: &mut Reader) {
        while let Some(j) = self.stack.pop() {
            if j & OTHER != 0 {
                let o = self.others[(j & !OTHER) as usize];
                reader.scan(o.addr, o.end, &mut |words| {
                    for &w in words {
                        self.reach(w as usize, true);
                    }
                });
                if self.settled() {
                    self.stack = MapVec::new();
                    return;
                }
                continue;
            }
            let block = self.blocks[j as usize];
            let definite = self.state[j as usize] == REACHABLE;
            reader.scan(block.addr, block.addr + block.size, &mut |words| {
                for &w in words {
                    self.reach(w as usize, definite);
                }
            });
            if self.settled() {
                self.stack = MapVec::new();
                return;
            }
        }
    }

    /// memcheck's cliques: each unreached block not reached from another is
    /// definitely lost; what it reaches is indirectly lost.
    ///
    /// Precisely: the unreached blocks and the pointers between them form a
    /// graph; a block is definitely lost when no unreached block outside
    /// its cycle (strongly connected component) reaches it, and one block
    /// of such a cycle (the lowest) is the definitely lost one, the rest
    /// indirectly lost. That does not depend on where the blocks are.
    /// memcheck floods from each unreached block in address order, and a
    /// flood stops at blocks an earlier flood took: for A → B ⇄ C with C
    /// lowest, C's flood takes B, A's stops at B, and C, reachable from A,
    /// stays definitely lost. So the leaders are taken in reverse
    /// post-order of a depth-first search instead: a block that reaches
    /// another's cycle finishes after it, so every flood starts in a cycle
    /// nothing else reaches (Kosaraju's lemma), and takes all below it.
    fn cliques(&mut self, reader: &mut Reader) {
        let n = self.blocks.len();
        // The pointers between unreached blocks, once: block i's targets
        // are `targets[first[i]..first[i + 1]]`.
        let mut first = MapVec::<u32>::new();
        let mut targets = MapVec::<u32>::new();
        if !first.reserve(n + 1) {
            self.out_of_memory = true;
            return;
        }
        for i in 0..n {
            first.push(targets.len() as u32);
            if self.state[i] != UNREACHED {
                continue;
            }
            let block = self.blocks[i];
            let mut ok = true;
            reader.scan(block.addr, block.addr + block.size, &mut |words| {
                for &w in words {
                    if let Some((j, _)) = self.lookup(w as usize) {
                        if j != i && self.state[j] == UNREACHED {
                            ok &= targets.push(j as u32);
                        }
                    }
                }
            });
            if !ok || targets.len() > u32::MAX as usize {
                self.out_of_memory = true;
                return;
            }
        }
        first.push(targets.len() as u32);
        let targets_of = |k: usize| &targets[first[k] as usize..first[k + 1] as usize];

        // Depth-first, roots in address order: the unreached blocks in the
        // order they finish.
        let mut finished = MapVec::<u32>::new();
        let mut path = MapVec::<(u32, u32)>::new();
        for root in 0..n {
            if self.state[root] != UNREACHED {
                continue;
            }
            self.state[root] = SEEN;
            let mut ok = path.push((root as u32, 0));
            while let Some(&(k, next)) = path.last() {
                let out = targets_of(k as usize);
                match out[next as usize..]
                    .iter()
                    .position(|&j| self.state[j as usize] == UNREACHED)
                {
                    Some(at) => {
                        let j = out[next as usize + at];
                        let top = path.len() - 1;
                        path[top].1 = next + at as u32 + 1;
                        self.state[j as usize] = SEEN;
                        ok &= path.push((j, 0));
                    }
                    None => {
                        path.pop();
                        ok &= finished.push(k);
                    }
                }
                if !ok {
                    self.out_of_memory = true;
                    return;
                }
            }
        }

        // Floods from the last finished down: a block still unclaimed
        // starts a clique (definitely lost), what it reaches is indirect.
        // Which leader took each block is for the report only: without
        // memory for it the kinds stand, and the report folds nothing.
        let mut record_roots = true;
        for &leader in finished.iter().rev() {
            if self.state[leader as usize] != SEEN {
                continue;
            }
            self.state[leader as usize] = UNREACHED;
            self.push(leader as usize);
            while let Some(k) = self.stack.pop() {
                for &j in targets_of(k as usize) {
                    if self.state[j as usize] == SEEN {
                        self.state[j as usize] = INDIRECT;
                        if record_roots && self.root.is_empty() {
                            record_roots = self.root.resize(n, NO_ROOT);
                        }
                        if let Some(root) = self.root.get_mut(j as usize) {
                            *root = leader;
                        }
                        self.push(j as usize);
                    }
                }
            }
            if self.out_of_memory {
                return;
            }
        }
    }
}

/// Whether `w`, inside `block`, is a pointer to its start with a tag in its
/// low bits (crossbeam-epoch marks a list entry by setting bit 0 of the
/// pointer to it; rayon, crossbeam-deque and most lock-free code do the
/// like). A pointer to a value is a multiple of the value's alignment, so
/// the bits below it are free for a tag: `block.addr | tag` with `tag`
/// below the alignment is the start. The alignment is the one the block's
/// user can count on for what it keeps there: for a Rust block its
/// layout's (the type's: crossbeam's tag bits are those below
/// `align_of::<T>()`), for a C block the one requested from the aligned
/// family, and at least a word, the alignment of anything that holds a
/// pointer (C says nothing of the type; `malloc`'s 16 bytes would take a
/// pointer to the second word for the block's start, which is an interior
/// pointer to memcheck and here).
fn tagged_start(block: &Block, w: usize) -> bool {
    let mut align = 1usize << block.align_log2;
    if !block.allocator().is_rust() {
        align = align.max(std::mem::size_of::<usize>());
    }
    w - block.addr < align
}

mod roots {
    use super::Marker;
    use crate::sys::mapvec::MapVec;
    use crate::verdict::memscan::Reader;
    use std::ffi::{c_int, c_void};

    /// The writable `PT_LOAD` segments (data, bss) of every loaded object.
    pub(super) fn data_segments(reader: &mut Reader, marker: &mut Marker<'_>) {
        let mut segments = MapVec::<(usize, usize)>::new();
        unsafe extern "C" fn each(
            info: *mut libc::dl_phdr_info,
            _size: usize,
            data: *mut c_void,
        ) -> c_int {
            // SAFETY: dl_iterate_phdr passes a valid info for the duration
            // of the call, and `data` is the MapVec passed below.
            let (info, segments) = unsafe { (&*info, &mut *data.cast::<MapVec<(usize, usize)>>()) };
            for i in 0..info.dlpi_phnum as usize {
                // SAFETY: dlpi_phdr has dlpi_phnum entries.
                let ph = unsafe { &*info.dlpi_phdr.add(i) };
                if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_W != 0 {
                    let start = info.dlpi_addr as usize + ph.p_vaddr as usize;
                    segments.push((start, start + ph.p_memsz as usize));
                }
            }
            0
        }
        // SAFETY: `each` matches the callback signature and only touches
        // `segments` through `data`.
        unsafe { libc::dl_iterate_phdr(Some(each), (&mut segments as *mut MapVec<_>).cast()) };
        for &(start, end) in segments.iter() {
            reader.scan_resident(start, end, &mut |words| {
                for &w in words {
                    marker.reach(w as usize, true);
                }
            });
        }
    }

    /// The static TLS blocks of the loaded objects, as (distance below the
    /// thread pointer, size), the same for every thread; and where glibc's
    /// thread descriptor keeps `pthread_setspecific` values: (offset above
    /// the thread pointer, entries) of its `specific` array. Only what is in
    /// use: the rest of the static TLS area (glibc's surplus) is never
    /// written by TLS, and the rest of the descriptor holds stale values
    /// such as the start routine's argument.
    fn tls_layout(blocks: &mut MapVec<(usize, usize)>) -> Option<(usize, usize)> {
        struct Walk<'a> {
            tp: usize,
            blocks: &'a mut MapVec<(usize, usize)>,
        }
        unsafe extern "C" fn each(
            info: *mut libc::dl_phdr_info,
            _size: usize,
            data: *mut c_void,
        ) -> c_int {
            // SAFETY: dl_iterate_phdr passes a valid info for the duration
            // of the call, and `data` is the Walk passed below.
            let (info, walk) = unsafe { (&*info, &mut *data.cast::<Walk<'_>>()) };
            let tls = info.dlpi_tls_data as usize;
            if tls == 0 || tls > walk.tp {
                // No TLS, not allocated for this thread, or dynamic TLS
                // (a heap block, found as one).
                return 0;
            }
            for i in 0..info.dlpi_phnum as usize {
                // SAFETY: dlpi_phdr has dlpi_phnum entries.
                let ph = unsafe { &*info.dlpi_phdr.add(i) };
                if ph.p_type == libc::PT_TLS && walk.tp - tls <= 1 << 20 {
                    walk.blocks.push((walk.tp - tls, ph.p_memsz as usize));
                }
            }
            0
        }
        // SAFETY: pthread_self has no preconditions.
        let tp = unsafe { libc::pthread_self() } as usize;
        let mut walk = Walk { tp, blocks };
        // SAFETY: `each` matches the callback signature and only touches
        // `walk` through `data`.
        unsafe { libc::dl_iterate_phdr(Some(each), (&mut walk as *mut Walk<'_>).cast()) };
        // (offset, entries), (0, 0) for none: a static `Option` of it
        // would keep, for `None`, whatever the stack held in the payload's
        // bytes, and the data segments are every verdict's roots.
        static SPECIFIC: std::sync::OnceLock<(usize, usize)> = std::sync::OnceLock::new();
        let (offset, entries) = *SPECIFIC.get_or_init(|| {
            let _harness = crate::track::scope::Untracked::harness();
            // libthread_db's description of `struct pthread`'s `specific`
            // field: {element bits, count, offset}.
            // SAFETY: dlsym with a NUL-terminated name; a missing symbol is
            // null.
            let desc =
                unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_thread_db_pthread_specific".as_ptr()) };
            if desc.is_null() {
                return (0, 0);
            }
            // SAFETY: glibc's `const uint32_t _thread_db_pthread_specific[3]`.
            let [bits, count, offset] = unsafe { desc.cast::<[u32; 3]>().read() };
            if bits == 64 && count <= 1024 && offset < 1 << 16 {
                (offset as usize, count as usize)
            } else {
                (0, 0)
            }
        });
        (entries != 0).then_some((offset, entries))
    }

    /// How far below the thread pointer a glibc-made stack ends: the static
    /// TLS area (`_dl_get_tls_static_info`, which counts the thread
    /// descriptor above the thread pointer too) sits between the stack and
    /// the descriptor. What lies there is TLS (scanned per module) and
    /// unused surplus (not scanned).
    fn stack_gap_below_tp() -> usize {
        static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *SIZE.get_or_init(|| {
            let _harness = crate::track::scope::Untracked::harness();
            // SAFETY: dlsym with a NUL-terminated name; a missing symbol is
            // null.
            let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_dl_get_tls_static_info".as_ptr()) };
            if f.is_null() {
                return 0;
            }
            // SAFETY: glibc's `void _dl_get_tls_static_info(size_t *size,
            // size_t *align)`.
            let f: unsafe extern "C" fn(*mut usize, *mut usize) = unsafe { std::mem::transmute(f) };
            let (mut size, mut align) = (0usize, 0usize);
            // SAFETY: both pointers are to our locals.
            unsafe { f(&mut size, &mut align) };
            // SAFETY: dlsym as above.
            let sizeof =
                unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_thread_db_sizeof_pthread".as_ptr()) };
            let descriptor = if sizeof.is_null() {
                // glibc 2.34–2.40 on x86_64.
                2304
            } else {
                // SAFETY: glibc's `const uint32_t _thread_db_sizeof_pthread`.
                unsafe { *sizeof.cast::<u32>() as usize }
            };
            size.next_multiple_of(align.max(1))
                .saturating_sub(descriptor)
        })
    }

    /// Where `t`'s stack proper ends: below its static TLS when glibc put
    /// that at the top of the stack mapping.
    fn stack_end(t: &crate::track::threads::Thread) -> usize {
        if (t.stack_low..t.stack_high).contains(&t.tp) {
            t.tp.saturating_sub(stack_gap_below_tp()).max(t.stack_low)
        } else {
            t.stack_high
        }
    }

    /// Whether `t`'s stack can hold pointers the code under test gave it.
    /// Not the harness's threads (the main thread, libtest's test threads,
    /// other checks' body threads) nor threads other running checks
    /// created: their stacks hold only their own frames, and the stale
    /// slots in those (locals of a call still running, from before the
    /// address was reused) would make a verdict depend on what ran in
    /// parallel. Threads this scope or an ended one created, and threads
    /// created outside any check (a C library's workers), are scanned.
    fn holds_test_data(t: &crate::track::threads::Thread, scope: u32) -> bool {
        !t.harness && (t.scope == 0 || t.scope == scope || !crate::track::scope::is_active(t.scope))
    }

    /// Stacks of the other threads, and static TLS and descriptors of all.
    pub(super) fn threads(reader: &mut Reader, marker: &mut Marker<'_>, scope: u32) {
        let mut tls = MapVec::new();
        let specific = tls_layout(&mut tls);
        let me = crate::sys::thread::current_tid();
        let scan = |reader: &mut Reader, marker: &mut Marker<'_>, start: usize, end: usize| {
            reader.scan_resident(start, end, &mut |words| {
                for &w in words {
                    marker.reach(w as usize, true);
                }
            });
        };
        let scan_tls = |reader: &mut Reader, marker: &mut Marker<'_>, tp: usize| {
            for &(below, size) in tls.iter() {
                let start = tp.saturating_sub(below);
                scan(reader, marker, start, start + size);
            }
            // `specific` points at second-level arrays (heap blocks, roots
            // already) and, first, at the descriptor's own first block of
            // 32 {sequence, value} pairs.
            if let Some((offset, count)) = specific {
                let array = tp + offset;
                scan(reader, marker, array, array + count * 8);
                if let Some(first) = crate::verdict::memscan::Peek::new().word(array) {
                    let first = first as usize;
                    if first > tp && first < tp + (1 << 16) {
                        scan(reader, marker, first, first + 32 * 16);
                    }
                }
            }
        };
        // Neither the stacks nor the TLS of the harness's threads: the
        // test's code never runs there (its body runs on a thread of its
        // own), and what they keep (libtest's state, moved-out values)
        // holds stale addresses.
        // The threads that started the checking thread (a test's own thread,
        // when it runs its check on a thread it spawned) hold the test's
        // data, although libtest made them.
        let mut ancestors = [0i32; 16];
        let found = crate::track::threads::ancestors(me, &mut ancestors);
        let ancestors = &ancestors[..found];
        crate::track::threads::for_each_live(|t| {
            if t.tid == me || !(holds_test_data(t, scope) || ancestors.contains(&t.tid)) {
                return;
            }
            if t.tp != 0 {
                scan_tls(reader, marker, t.tp);
            }
            if t.stack_low >= t.stack_high {
                return;
            }
            match blocked_in_syscall(t.tid) {
                // Only the live part: below the stack pointer (and its red
                // zone) lie stale values from the thread's past, which
                // would make the scan depend on what ran there before.
                Some(blocked) if (t.stack_low..stack_end(t)).contains(&blocked.sp) => {
                    for &arg in &blocked.args {
                        marker.reach(arg, true);
                    }
                    scan(reader, marker, blocked.sp.saturating_sub(128), stack_end(t));
                }
                // Running: its stack pointer is not known without stopping
                // it, so the whole resident stack counts.
                _ => scan(reader, marker, t.stack_low, stack_end(t)),
            }
        });
    }

    /// A thread blocked in a system call: its user stack pointer and the
    /// argument registers, from `/proc/self/task/<tid>/syscall`.
    struct Blocked {
        sp: usize,
        args: [usize; 6],
    }

    /// Reads the thread's syscall state without allocating. `None` while it
    /// runs (the file says `running`) or if the file cannot be read.
    fn blocked_in_syscall(tid: i32) -> Option<Blocked> {
        let mut path = [0u8; 64];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            for &b in bytes {
                if at < path.len() - 1 {
                    path[at] = b;
                    at += 1;
                }
            }
        };
        put(b"/proc/self/task/");
        let mut digits = [0u8; 12];
        let mut n = tid.unsigned_abs();
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        digits[..len].reverse();
        put(&digits[..len]);
        put(b"/syscall");
        // SAFETY: `path` is NUL-terminated (zeroed, and `put` keeps the last
        // byte free).
        let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        let mut text = [0u8; 256];
        // SAFETY: reads into our buffer, then closes the descriptor we opened.
        let read = unsafe {
            let read = libc::read(fd, text.as_mut_ptr().cast(), text.len());
            libc::close(fd);
            read
        };
        let text = std::str::from_utf8(text.get(..usize::try_from(read).ok()?)?).ok()?;
        parse_syscall(text)
    }

    /// `nr arg1 … arg6 sp pc` (blocked in a syscall) or `-1 sp pc`
    /// (blocked otherwise); `running` gives `None`.
    fn parse_syscall(text: &str) -> Option<Blocked> {
        let mut fields = text.split_ascii_whitespace();
        let nr = fields.next()?;
        if nr == "running" {
            return None;
        }
        let hex = |f: Option<&str>| -> Option<usize> {
            usize::from_str_radix(f?.trim_start_matches("0x"), 16).ok()
        };
        let mut args = [0usize; 6];
        if nr != "-1" {
            for arg in &mut args {
                *arg = hex(fields.next())?;
            }
        }
        let sp = hex(fields.next())?;
        Some(Blocked { sp, args })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn syscall_states() {
            let blocked =
                parse_syscall("202 0x7f1 0x80 0x1 0x0 0x0 0x0 0x7ffc10 0x7f5678\n").unwrap();
            assert_eq!(blocked.sp, 0x7ffc10);
            assert_eq!(blocked.args[0], 0x7f1);
            assert_eq!(parse_syscall("-1 0x7ffc20 0x7f56\n").unwrap().sp, 0x7ffc20);
            assert!(parse_syscall("running\n").is_none());
            assert!(parse_syscall("").is_none());
            // A thread of this process that is surely blocked: it waits on
            // a channel.
            let (tx, rx) = std::sync::mpsc::channel::<i32>();
            let (tid_tx, tid_rx) = std::sync::mpsc::channel();
            let waiter = std::thread::spawn(move || {
                tid_tx.send(crate::sys::thread::current_tid()).unwrap();
                rx.recv().unwrap()
            });
            let tid = tid_rx.recv().unwrap();
            let mut found = None;
            for _ in 0..200 {
                found = blocked_in_syscall(tid);
                if found.is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            tx.send(1).unwrap();
            waiter.join().unwrap();
            assert!(
                found.is_some_and(|b| b.sp != 0),
                "a waiting thread's stack pointer"
            );
        }
    }
}
