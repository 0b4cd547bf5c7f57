//! The unwinding rule for one instruction, read straight from its loaded
//! object's `.eh_frame_hdr` and `.eh_frame`: the cached unwinder's miss
//! path (`unwind::compute`).
//!
//! A narrow reader of call frame information, for what x86_64 compilers
//! emit: the sorted search table of `.eh_frame_hdr`, version 1 and 3 CIEs
//! with `z` augmentations, and the CFA instructions that move the CFA or
//! save `rbp` and the return address. Anything else — another table
//! encoding, 64-bit lengths, an augmentation it does not know, an
//! instruction it does not know — is [`Answer::Unknown`], and the caller
//! asks gimli instead; what it answers is what gimli answers (a test
//! compares them on every function of the test binary and of libc).
//!
//! Why not gimli for everything: a miss happens a few thousand times a
//! run (once per return address), and gimli's generic code, built at
//! `opt-level = 0` in a user's dev profile, took 49,000 instructions a miss
//! (callgrind, rusqlite's suite: 16% of all the checker did). This file
//! needs only `core`, so, like `walk_core.rs`, it is also built into the
//! optimised object of unoptimised builds (`walk_object.rs`).
//!
//! Every read is bounds-checked against the object's mapping, and nothing
//! here can panic: the object it is built into links no `core` panics.

use super::walk_core::Rule;

/// What the reader found for an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// How to unwind the frame.
    Rule(Rule),
    /// The object describes no usable rule (no FDE covers the address, a
    /// signal frame, a CFA or register computed by an expression): the walk
    /// falls back to libgcc there.
    Unsupported,
    /// Something this reader does not handle: ask gimli.
    Unknown,
}

/// DWARF register numbers on x86_64.
const RBP: u64 = 6;
const RSP: u64 = 7;
const RA: u64 = 16;

/// Remembered states (`DW_CFA_remember_state`) one FDE may nest.
const STATES: usize = 4;

/// A cursor over `[at, end)` of a loaded object.
#[derive(Clone, Copy)]
struct Reader {
    at: usize,
    end: usize,
}

impl Reader {
    fn bytes(&mut self, n: usize) -> Option<usize> {
        if self.end.checked_sub(self.at)? < n {
            return None;
        }
        let at = self.at;
        self.at += n;
        Some(at)
    }

    /// A plain value of `T` (an unsigned integer), unaligned.
    fn read<T: Copy>(&mut self) -> Option<T> {
        let at = self.bytes(core::mem::size_of::<T>())?;
        // SAFETY: `[at, at + size_of::<T>())` lies in `[at, end)`, which
        // the creator of the `Reader` vouches is mapped, readable memory of
        // the object; `T` is an integer, valid for any bytes.
        Some(unsafe { (at as *const T).read_unaligned() })
    }

    fn u8(&mut self) -> Option<u8> {
        self.read()
    }

    fn u16(&mut self) -> Option<u16> {
        self.read()
    }

    fn u32(&mut self) -> Option<u32> {
        self.read()
    }

    fn u64(&mut self) -> Option<u64> {
        self.read()
    }

    fn uleb(&mut self) -> Option<u64> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let byte = self.u8()?;
            if shift >= 64 {
                return None;
            }
            value |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
    }

    fn sleb(&mut self) -> Option<i64> {
        let mut value = 0i64;
        let mut shift = 0u32;
        loop {
            let byte = self.u8()?;
            if shift >= 64 {
                return None;
            }
            value |= i64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Some(value);
            }
        }
    }

    /// A pointer of encoding `encoding` (`DW_EH_PE_*`): its value as
    /// stored (`format` only), or `None` for a format this reader does not
    /// know.
    fn raw_pointer(&mut self, encoding: u8) -> Option<u64> {
        Some(match encoding & 0x0f {
            0x00 | 0x04 | 0x0c => self.u64()?,
            0x01 => self.uleb()?,
            0x09 => self.sleb()? as u64,
            0x02 => u64::from(self.u16()?),
            0x0a => self.u16()? as i16 as u64,
            0x03 => u64::from(self.u32()?),
            0x0b => self.u32()? as i32 as u64,
            _ => return None,
        })
    }

    /// A pointer of encoding `encoding`, applied: relative to its own
    /// address (`pcrel`) or to `data` (`datarel`), or absolute. Indirect
    /// and other applications are not read.
    fn pointer(&mut self, encoding: u8, data: usize) -> Option<u64> {
        let field = self.at as u64;
        let raw = self.raw_pointer(encoding)?;
        match encoding & 0xf0 {
            0x00 => Some(raw),
            0x10 => Some(field.wrapping_add(raw)),
            0x30 => Some((data as u64).wrapping_add(raw)),
            _ => None,
        }
    }
}

/// How a register is recovered in the caller, as far as a [`Rule`] cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Register {
    /// No rule: the register keeps its value (the default on x86_64).
    Unset,
    SameValue,
    /// Saved at `CFA + offset`.
    Offset(i64),
    /// Anything else (undefined, another register, an expression).
    Other,
}

/// One row of the CFA table, as far as a [`Rule`] cares.
#[derive(Clone, Copy)]
struct Row {
    /// The CFA is `register + offset`; `None`: an expression.
    cfa: Option<(u64, i64)>,
    rbp: Register,
    ra: Register,
}

const EMPTY_ROW: Row = Row {
    cfa: None,
    rbp: Register::Unset,
    ra: Register::Unset,
};

impl Row {
    fn set(&mut self, register: u64, rule: Register) {
        match register {
            RBP => self.rbp = rule,
            RA => self.ra = rule,
            _ => {}
        }
    }

    fn answer(&self) -> Answer {
        let Some((register, offset)) = self.cfa else {
            return Answer::Unsupported;
        };
        let cfa_from_rbp = match register {
            RSP => false,
            RBP => true,
            _ => return Answer::Unsupported,
        };
        let Ok(cfa_offset) = i32::try_from(offset) else {
            return Answer::Unsupported;
        };
        // The return address must be at CFA - 8, as every x86_64 call
        // leaves it.
        if self.ra != Register::Offset(-8) {
            return Answer::Unsupported;
        }
        let rbp_saved_at = match self.rbp {
            Register::Unset | Register::SameValue => None,
            Register::Offset(at) => match i16::try_from(at) {
                Ok(at) => Some(at),
                Err(_) => return Answer::Unsupported,
            },
            Register::Other => return Answer::Unsupported,
        };
        Answer::Rule(Rule {
            cfa_from_rbp,
            cfa_offset,
            rbp_saved_at,
        })
    }
}

/// What an FDE's instructions need from its CIE.
struct Cie {
    code_align: u64,
    data_align: i64,
    /// `DW_EH_PE_*` of the FDE's addresses.
    fde_encoding: u8,
    /// The augmentation has `z`: FDEs have augmentation data to skip.
    augmented: bool,
    signal_frame: bool,
    /// The initial instructions.
    instructions: Reader,
}

/// The rule for the instruction at `address` (a return address - 1 for
/// callers) of the object mapped at `[start, end)`, whose `.eh_frame_hdr`
/// is at `hdr`.
///
/// # Safety
///
/// `[start, end)` is a loaded object's mapping, readable (what glibc's
/// `_dl_find_object` describes while the object stays loaded), and `hdr`
/// lies inside it.
pub(crate) unsafe fn rule_at(hdr: usize, start: usize, end: usize, address: usize) -> Answer {
    if hdr < start || hdr >= end {
        return Answer::Unknown;
    }
    match find(hdr, start, end, address) {
        Some(answer) => answer,
        None => Answer::Unknown,
    }
}

fn find(hdr: usize, start: usize, end: usize, address: usize) -> Option<Answer> {
    let mut r = Reader { at: hdr, end };
    if r.u8()? != 1 {
        return None;
    }
    let frame_encoding = r.u8()?;
    let count_encoding = r.u8()?;
    let table_encoding = r.u8()?;
    // The table must be what every linker writes: (start, FDE) pairs of
    // 4-byte offsets from the header, sorted by start.
    if table_encoding != 0x3b || count_encoding == 0xff || frame_encoding == 0xff {
        return None;
    }
    let eh_frame = usize::try_from(r.pointer(frame_encoding, hdr)?).ok()?;
    if eh_frame < start || eh_frame >= end {
        return None;
    }
    let count = usize::try_from(r.pointer(count_encoding, hdr)?).ok()?;
    let table = r.at;
    if count.checked_mul(8)? > end - table {
        return None;
    }
    let entry = |i: usize| -> (i64, i64) {
        let mut r = Reader {
            at: table + 8 * i,
            end,
        };
        // In bounds: `i < count`, checked against the mapping above.
        let loc = r.u32().map_or(0, |v| i64::from(v as i32));
        let fde = r.u32().map_or(0, |v| i64::from(v as i32));
        (loc, fde)
    };
    // The last entry starting at or before the address.
    let target = (address as i64).wrapping_sub(hdr as i64);
    let (mut low, mut high) = (0usize, count);
    while low < high {
        let mid = low + (high - low) / 2;
        if entry(mid).0 <= target {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    if low == 0 {
        return Some(Answer::Unsupported);
    }
    let fde = (hdr as i64).wrapping_add(entry(low - 1).1) as usize;
    if fde < start || fde >= end {
        return None;
    }
    from_fde(fde, start, end, hdr, address)
}

fn from_fde(fde: usize, start: usize, end: usize, hdr: usize, address: usize) -> Option<Answer> {
    let mut r = Reader { at: fde, end };
    let length = r.u32()?;
    if length == 0xffff_ffff {
        return None;
    }
    if length == 0 {
        return Some(Answer::Unsupported);
    }
    let fde_end = r.at.checked_add(length as usize)?;
    if fde_end > end {
        return None;
    }
    r.end = fde_end;
    let id_at = r.at;
    let cie_pointer = r.u32()? as usize;
    if cie_pointer == 0 {
        // A CIE, not an FDE: the table is off.
        return None;
    }
    let cie_at = id_at.checked_sub(cie_pointer)?;
    if cie_at < start {
        return None;
    }
    let cie = parse_cie(cie_at, end, hdr)?;
    let pc_begin = r.pointer(cie.fde_encoding, hdr)?;
    let pc_range = r.raw_pointer(cie.fde_encoding & 0x0f)?;
    let address = address as u64;
    if address < pc_begin || address - pc_begin >= pc_range {
        return Some(Answer::Unsupported);
    }
    if cie.signal_frame {
        return Some(Answer::Unsupported);
    }
    if cie.augmented {
        let skip = usize::try_from(r.uleb()?).ok()?;
        r.bytes(skip)?;
    }
    // The CIE's initial instructions, then the FDE's up to the address.
    let mut initial = EMPTY_ROW;
    let mut instructions = cie.instructions;
    let mut states = [EMPTY_ROW; STATES];
    let mut depth = 0;
    let mut location = pc_begin;
    if !run(
        &mut instructions,
        &cie,
        None,
        &mut initial,
        &mut states,
        &mut depth,
        &mut location,
        u64::MAX,
        hdr,
    )? {
        return None;
    }
    let mut row = initial;
    depth = 0;
    location = pc_begin;
    if !run(
        &mut r,
        &cie,
        Some(&initial),
        &mut row,
        &mut states,
        &mut depth,
        &mut location,
        address,
        hdr,
    )? {
        return None;
    }
    Some(row.answer())
}

fn parse_cie(at: usize, end: usize, hdr: usize) -> Option<Cie> {
    let mut r = Reader { at, end };
    let length = r.u32()?;
    if length == 0xffff_ffff || length == 0 {
        return None;
    }
    let cie_end = r.at.checked_add(length as usize)?;
    if cie_end > end {
        return None;
    }
    r.end = cie_end;
    if r.u32()? != 0 {
        return None;
    }
    let version = r.u8()?;
    if version != 1 && version != 3 {
        return None;
    }
    // The augmentation string, at most a few letters.
    let mut augmentation = [0u8; 8];
    let mut len = 0;
    loop {
        let c = r.u8()?;
        if c == 0 {
            break;
        }
        if len == augmentation.len() {
            return None;
        }
        augmentation[len] = c;
        len += 1;
    }
    let augmented = len > 0 && augmentation[0] == b'z';
    if len > 0 && !augmented {
        return None;
    }
    let code_align = r.uleb()?;
    let data_align = r.sleb()?;
    let ra = if version == 1 {
        u64::from(r.u8()?)
    } else {
        r.uleb()?
    };
    if ra != RA {
        return None;
    }
    let mut fde_encoding = 0;
    let mut signal_frame = false;
    if augmented {
        let data_len = usize::try_from(r.uleb()?).ok()?;
        let data_end = r.at.checked_add(data_len)?;
        if data_end > r.end {
            return None;
        }
        let mut data = Reader {
            at: r.at,
            end: data_end,
        };
        let mut i = 1;
        while i < len {
            match augmentation[i] {
                b'R' => fde_encoding = data.u8()?,
                b'L' => {
                    data.u8()?;
                }
                b'P' => {
                    let encoding = data.u8()?;
                    data.pointer(encoding & 0x7f, hdr)?;
                }
                b'S' => signal_frame = true,
                _ => return None,
            }
            i += 1;
        }
        r.at = data_end;
    }
    Some(Cie {
        code_align,
        data_align,
        fde_encoding,
        augmented,
        signal_frame,
        instructions: r,
    })
}

/// Runs the instructions of `r` on `row` until the location passes
/// `address`. `initial`: the CIE's row, for `DW_CFA_restore` (`None` while
/// running the CIE's own). Returns false for an instruction that has no
/// place there, `None` for one this reader does not know.
#[allow(clippy::too_many_arguments)]
fn run(
    r: &mut Reader,
    cie: &Cie,
    initial: Option<&Row>,
    row: &mut Row,
    states: &mut [Row; STATES],
    depth: &mut usize,
    location: &mut u64,
    address: u64,
    hdr: usize,
) -> Option<bool> {
    let factored = |offset: u64| (offset as i64).wrapping_mul(cie.data_align);
    let restored = |register: u64| match (initial, register) {
        (Some(initial), RBP) => Some(initial.rbp),
        (Some(initial), RA) => Some(initial.ra),
        (Some(_), _) => Some(Register::Unset),
        (None, _) => None,
    };
    while r.at < r.end {
        let op = r.u8()?;
        let advance = match op >> 6 {
            1 => Some(u64::from(op & 0x3f)),
            2 => {
                let offset = r.uleb()?;
                row.set(u64::from(op & 0x3f), Register::Offset(factored(offset)));
                None
            }
            3 => {
                let register = u64::from(op & 0x3f);
                let Some(rule) = restored(register) else {
                    return Some(false);
                };
                row.set(register, rule);
                None
            }
            _ => match op {
                0x00 => None,
                0x01 => {
                    let to = r.pointer(cie.fde_encoding, hdr)?;
                    if to > address {
                        return Some(true);
                    }
                    *location = to;
                    None
                }
                0x02 => Some(u64::from(r.u8()?)),
                0x03 => Some(u64::from(r.u16()?)),
                0x04 => Some(u64::from(r.u32()?)),
                0x05 => {
                    let register = r.uleb()?;
                    let offset = r.uleb()?;
                    row.set(register, Register::Offset(factored(offset)));
                    None
                }
                0x06 => {
                    let register = r.uleb()?;
                    let Some(rule) = restored(register) else {
                        return Some(false);
                    };
                    row.set(register, rule);
                    None
                }
                0x07 | 0x08 => {
                    let register = r.uleb()?;
                    let rule = if op == 0x08 {
                        Register::SameValue
                    } else {
                        Register::Other
                    };
                    row.set(register, rule);
                    None
                }
                0x09 => {
                    let register = r.uleb()?;
                    r.uleb()?;
                    row.set(register, Register::Other);
                    None
                }
                0x0a => {
                    if *depth == STATES {
                        return None;
                    }
                    states[*depth & (STATES - 1)] = *row;
                    *depth += 1;
                    None
                }
                0x0b => {
                    if *depth == 0 {
                        return Some(false);
                    }
                    *depth -= 1;
                    *row = states[*depth & (STATES - 1)];
                    None
                }
                0x0c => {
                    let register = r.uleb()?;
                    let offset = r.uleb()?;
                    row.cfa = Some((register, offset as i64));
                    None
                }
                0x0d => {
                    let register = r.uleb()?;
                    let (_, offset) = row.cfa?;
                    row.cfa = Some((register, offset));
                    None
                }
                0x0e => {
                    let offset = r.uleb()?;
                    let (register, _) = row.cfa?;
                    row.cfa = Some((register, offset as i64));
                    None
                }
                0x0f => {
                    let len = usize::try_from(r.uleb()?).ok()?;
                    r.bytes(len)?;
                    row.cfa = None;
                    None
                }
                0x10 | 0x16 => {
                    let register = r.uleb()?;
                    let len = usize::try_from(r.uleb()?).ok()?;
                    r.bytes(len)?;
                    row.set(register, Register::Other);
                    None
                }
                0x11 => {
                    let register = r.uleb()?;
                    let offset = r.sleb()?;
                    row.set(
                        register,
                        Register::Offset(offset.wrapping_mul(cie.data_align)),
                    );
                    None
                }
                0x12 => {
                    let register = r.uleb()?;
                    let offset = r.sleb()?;
                    row.cfa = Some((register, offset.wrapping_mul(cie.data_align)));
                    None
                }
                0x13 => {
                    let offset = r.sleb()?;
                    let (register, _) = row.cfa?;
                    row.cfa = Some((register, offset.wrapping_mul(cie.data_align)));
                    None
                }
                0x14 => {
                    let register = r.uleb()?;
                    r.uleb()?;
                    row.set(register, Register::Other);
                    None
                }
                0x15 => {
                    let register = r.uleb()?;
                    r.sleb()?;
                    row.set(register, Register::Other);
                    None
                }
                0x2e => {
                    r.uleb()?;
                    None
                }
                0x2f => {
                    let register = r.uleb()?;
                    let offset = r.uleb()?;
                    row.set(register, Register::Offset(factored(offset).wrapping_neg()));
                    None
                }
                _ => return None,
            },
        };
        if let Some(delta) = advance {
            let to = location.wrapping_add(delta.wrapping_mul(cie.code_align));
            if to > address {
                return Some(true);
            }
            *location = to;
        }
    }
    Some(true)
}
