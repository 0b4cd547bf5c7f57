//! A growable array in mapped pages, for working memory that must never be
//! a heap block: the classifier's (it holds the addresses it looks for, and
//! live heap blocks are roots) and the thread registry's snapshots.

use super::sync::pages;

const PAGE: usize = 4096;

/// A growable array in mapped pages: the classifier's working memory, which
/// must not be a heap block (it holds the addresses it looks for, and live
/// heap blocks are roots).
pub(crate) struct MapVec<T: Copy> {
    ptr: *mut T,
    len: usize,
    cap: usize,
}

impl<T: Copy> MapVec<T> {
    pub(crate) const fn new() -> Self {
        MapVec {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }

    /// Makes room for `additional` more; false if the kernel refused.
    pub(crate) fn reserve(&mut self, additional: usize) -> bool {
        let needed = self.len + additional;
        if needed <= self.cap {
            return true;
        }
        let cap = needed
            .max(self.cap * 2)
            .max(PAGE / std::mem::size_of::<T>().max(1));
        let bytes = (cap * std::mem::size_of::<T>()).next_multiple_of(PAGE);
        let fresh = pages::map(bytes, true).cast::<T>();
        if fresh.is_null() {
            return false;
        }
        if !self.ptr.is_null() {
            // SAFETY: both ranges hold at least `len` elements and do not
            // overlap (fresh mapping).
            unsafe { std::ptr::copy_nonoverlapping(self.ptr, fresh, self.len) };
            self.release();
        }
        self.ptr = fresh;
        self.cap = bytes / std::mem::size_of::<T>().max(1);
        true
    }

    /// Appends; false (and nothing appended) if out of memory.
    pub(crate) fn push(&mut self, value: T) -> bool {
        if self.len == self.cap && !self.reserve(1) {
            return false;
        }
        // SAFETY: len < cap after reserve.
        unsafe { self.ptr.add(self.len).write(value) };
        self.len += 1;
        true
    }

    /// Empties it, keeping the memory.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Sets the length to `len`, filling new elements with `value`; false
    /// if out of memory.
    pub(crate) fn resize(&mut self, len: usize, value: T) -> bool {
        if len > self.len && !self.reserve(len - self.len) {
            return false;
        }
        for i in self.len..len {
            // SAFETY: within capacity after reserve.
            unsafe { self.ptr.add(i).write(value) };
        }
        self.len = len;
        true
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: the element at len was initialised.
        Some(unsafe { self.ptr.add(self.len).read() })
    }

    /// The spare capacity, for filling in place; commit with `set_len`.
    pub(crate) fn spare(&mut self) -> &mut [T]
    where
        T: Default,
    {
        for i in self.len..self.cap {
            // SAFETY: within capacity; initialised before being exposed.
            unsafe { self.ptr.add(i).write(T::default()) };
        }
        if self.ptr.is_null() {
            return &mut [];
        }
        // SAFETY: all `cap` elements are initialised now.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(self.len), self.cap - self.len) }
    }

    /// # Safety
    ///
    /// The first `len` elements must be initialised.
    pub(crate) unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= self.cap);
        self.len = len;
    }

    fn release(&mut self) {
        let bytes = (self.cap * std::mem::size_of::<T>()).next_multiple_of(PAGE);
        // SAFETY: `ptr` was mapped by `reserve` with this size.
        unsafe { pages::unmap(self.ptr.cast(), bytes) };
        self.ptr = std::ptr::null_mut();
        self.cap = 0;
    }
}

impl<T: Copy> std::ops::Deref for MapVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        if self.ptr.is_null() {
            return &[];
        }
        // SAFETY: the first `len` elements are initialised.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl<T: Copy> std::ops::DerefMut for MapVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        if self.ptr.is_null() {
            return &mut [];
        }
        // SAFETY: as above, and we hold the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl<T: Copy> Default for MapVec<T> {
    fn default() -> Self {
        MapVec::new()
    }
}

// SAFETY: a MapVec owns its pages like a Vec owns its buffer; sending it
// sends that ownership.
unsafe impl<T: Copy + Send> Send for MapVec<T> {}

impl<T: Copy> Drop for MapVec<T> {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            self.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapvec_grows_and_pops() {
        let mut v = MapVec::<u32>::new();
        for i in 0..5000 {
            assert!(v.push(i));
        }
        assert_eq!(v.len(), 5000);
        assert_eq!(v[4999], 4999);
        assert_eq!(v.pop(), Some(4999));
        v.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(v[0], 4998);
    }
}
