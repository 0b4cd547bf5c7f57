//! Relaxed loads and stores of the allocation path's atomics that cost one
//! instruction in every profile.
//!
//! At `opt-level = 0` (a user's dev profile) `AtomicU32::load(Relaxed)` is
//! two calls and a run-time match over the ordering, about 28 instructions,
//! and a hook makes a dozen such accesses to its thread's state and its
//! check's counters. On x86_64 an aligned `mov` *is* the relaxed atomic
//! access, and inline assembly may do anything the program itself could
//! do: here exactly that access, on memory the atomic owns. The assembly
//! is not `nomem`, so the compiler neither merges nor moves it across other
//! memory accesses (why the thread's state is atomics in the first place).
//! In optimised builds, and on other targets, the atomics' own methods are
//! used: optimised they are that instruction already, and the assembly's
//! barrier would only keep the compiler from scheduling around it.

#[cfg(not(all(target_arch = "x86_64", leakcheck_unoptimized)))]
use std::sync::atomic::Ordering;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize};

/// `load(Relaxed)` and `store(_, Relaxed)`, as the instruction.
pub(crate) trait Relaxed {
    type Value;
    /// `self.load(Relaxed)`.
    fn relaxed(&self) -> Self::Value;
    /// `self.store(value, Relaxed)`.
    fn set_relaxed(&self, value: Self::Value);
    /// `self.load(Acquire)`. On x86_64 every load is an acquire load, and
    /// the assembly (neither `nomem` nor `readonly`) keeps the compiler
    /// from moving any access across it: [`Relaxed::relaxed`] itself.
    // The cached unwinder's, which the portable build has not.
    #[cfg_attr(
        not(all(leakcheck_interpose, target_arch = "x86_64")),
        allow(dead_code)
    )]
    fn acquire(&self) -> Self::Value;
    /// `self.store(value, Release)`. On x86_64 every store is a release
    /// store, and the assembly keeps the compiler from moving any access
    /// across it: [`Relaxed::set_relaxed`] itself.
    fn set_release(&self, value: Self::Value);
}

macro_rules! relaxed {
    (generic $generic:ident, $atomic:ty, $value:ty, $width:literal, $reg:literal) => {
        relaxed!(@impl [$generic] $atomic, $value, $width, $reg);
    };
    ($atomic:ty, $value:ty, $width:literal, $reg:literal) => {
        relaxed!(@impl [] $atomic, $value, $width, $reg);
    };
    (@impl [$($generic:ident)?] $atomic:ty, $value:ty, $width:literal, $reg:literal) => {
        impl $(<$generic>)? Relaxed for $atomic {
            type Value = $value;

            #[inline(always)]
            fn relaxed(&self) -> $value {
                #[cfg(all(target_arch = "x86_64", leakcheck_unoptimized))]
                {
                    let value: $value;
                    // SAFETY: an aligned load of the atomic's own memory (an
                    // atomic has its value's size and representation, and at
                    // least its alignment; a cast, not `as_ptr`, which is a
                    // call unoptimised), the relaxed atomic load on x86_64;
                    // no stack use, flags untouched.
                    unsafe {
                        core::arch::asm!(
                            concat!("mov {v", $reg, "}, ", $width, " ptr [{p}]"),
                            p = in(reg) self as *const $atomic as *const $value,
                            v = lateout(reg) value,
                            options(nostack, preserves_flags),
                        );
                    }
                    value
                }
                #[cfg(not(all(target_arch = "x86_64", leakcheck_unoptimized)))]
                {
                    self.load(Ordering::Relaxed)
                }
            }

            #[inline(always)]
            fn acquire(&self) -> $value {
                #[cfg(all(target_arch = "x86_64", leakcheck_unoptimized))]
                {
                    self.relaxed()
                }
                #[cfg(not(all(target_arch = "x86_64", leakcheck_unoptimized)))]
                {
                    self.load(Ordering::Acquire)
                }
            }

            #[inline(always)]
            fn set_relaxed(&self, value: $value) {
                #[cfg(all(target_arch = "x86_64", leakcheck_unoptimized))]
                // SAFETY: an aligned store to the atomic's own memory, the
                // relaxed atomic store on x86_64; no stack use, flags
                // untouched.
                unsafe {
                    core::arch::asm!(
                        concat!("mov ", $width, " ptr [{p}], {v", $reg, "}"),
                        p = in(reg) self as *const $atomic as *const $value,
                        v = in(reg) value,
                        options(nostack, preserves_flags),
                    );
                }
                #[cfg(not(all(target_arch = "x86_64", leakcheck_unoptimized)))]
                self.store(value, Ordering::Relaxed);
            }

            #[inline(always)]
            fn set_release(&self, value: $value) {
                #[cfg(all(target_arch = "x86_64", leakcheck_unoptimized))]
                self.set_relaxed(value);
                #[cfg(not(all(target_arch = "x86_64", leakcheck_unoptimized)))]
                self.store(value, Ordering::Release);
            }
        }
    };
}

impl Relaxed for AtomicBool {
    type Value = bool;

    #[inline(always)]
    fn relaxed(&self) -> bool {
        #[cfg(all(target_arch = "x86_64", leakcheck_unoptimized))]
        {
            let value: u8;
            // SAFETY: an aligned load of the atomic's own byte (an
            // `AtomicBool` has `bool`'s size and representation: 0 or 1).
            unsafe {
                core::arch::asm!(
                    "mov {v}, byte ptr [{p}]",
                    p = in(reg) self as *const AtomicBool as *const u8,
                    v = lateout(reg_byte) value,
                    options(nostack, preserves_flags),
                );
            }
            value != 0
        }
        #[cfg(not(all(target_arch = "x86_64", leakcheck_unoptimized)))]
        {
            self.load(Ordering::Relaxed)
        }
    }

    #[inline(always)]
    fn acquire(&self) -> bool {
        #[cfg(all(target_arch = "x86_64", leakcheck_unoptimized))]
        {
            self.relaxed()
        }
        #[cfg(not(all(target_arch = "x86_64", leakcheck_unoptimized)))]
        {
            self.load(Ordering::Acquire)
        }
    }

    #[inline(always)]
    fn set_relaxed(&self, value: bool) {
        #[cfg(all(target_arch = "x86_64", leakcheck_unoptimized))]
        // SAFETY: an aligned store of 0 or 1 to the atomic's own byte.
        unsafe {
            core::arch::asm!(
                "mov byte ptr [{p}], {v}",
                p = in(reg) self as *const AtomicBool as *const u8,
                v = in(reg_byte) u8::from(value),
                options(nostack, preserves_flags),
            );
        }
        #[cfg(not(all(target_arch = "x86_64", leakcheck_unoptimized)))]
        self.store(value, Ordering::Relaxed);
    }

    #[inline(always)]
    fn set_release(&self, value: bool) {
        #[cfg(all(target_arch = "x86_64", leakcheck_unoptimized))]
        self.set_relaxed(value);
        #[cfg(not(all(target_arch = "x86_64", leakcheck_unoptimized)))]
        self.store(value, Ordering::Release);
    }
}

relaxed!(AtomicU32, u32, "dword", ":e");
relaxed!(generic T, AtomicPtr<T>, *mut T, "qword", "");
relaxed!(AtomicU64, u64, "qword", "");
relaxed!(AtomicUsize, usize, "qword", "");
relaxed!(AtomicIsize, isize, "qword", "");

#[cfg(test)]
mod tests {
    use super::Relaxed;
    use std::sync::atomic::{
        AtomicIsize, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed as R,
    };

    #[test]
    fn loads_and_stores_are_the_atomics_own() {
        let a = AtomicU32::new(0xdead_beef);
        assert_eq!(a.relaxed(), 0xdead_beef);
        a.set_relaxed(7);
        assert_eq!(a.load(R), 7);
        let b = AtomicUsize::new(usize::MAX - 1);
        assert_eq!(b.relaxed(), usize::MAX - 1);
        assert_eq!(b.acquire(), usize::MAX - 1);
        b.set_relaxed(1 << 40);
        assert_eq!(b.load(R), 1 << 40);
        let d = AtomicU64::new(u64::MAX - 3);
        assert_eq!(d.relaxed(), u64::MAX - 3);
        d.set_release(1 << 63);
        assert_eq!(d.load(R), 1 << 63);
        a.set_release(9);
        assert_eq!(a.acquire(), 9);
        let mut x = 5u8;
        let e = std::sync::atomic::AtomicPtr::new(std::ptr::null_mut::<u8>());
        e.set_release(&mut x);
        assert_eq!(e.acquire(), std::ptr::addr_of_mut!(x));
        e.set_relaxed(std::ptr::null_mut());
        assert!(e.relaxed().is_null());
        let f = std::sync::atomic::AtomicBool::new(true);
        assert!(f.relaxed());
        f.set_relaxed(false);
        assert!(!f.acquire());
        f.set_release(true);
        assert!(f.load(R));
        let c = AtomicIsize::new(-5);
        assert_eq!(c.relaxed(), -5);
        c.set_relaxed(isize::MIN);
        assert_eq!(c.load(R), isize::MIN);
        // Neighbours are untouched: the width is the atomic's.
        let pair = [AtomicU32::new(1), AtomicU32::new(2)];
        pair[0].set_relaxed(u32::MAX);
        assert_eq!((pair[0].load(R), pair[1].load(R)), (u32::MAX, 2));
    }
}
