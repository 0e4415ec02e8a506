//! The binary's global allocator: a bump allocator over a fixed arena in `.bss`, with the
//! system allocator behind it.
//!
//! shim's start-up allocates a few hundred bytes (its arguments, the configuration, the
//! program's argv). musl's malloc would first set its heap up for them: `brk` twice and two
//! `mmap`s, and three fresh pages, each a page fault, which in a VM costs more than all the
//! instructions of start-up together. The arena costs neither: its pages are `.bss`, the first
//! one shared with other statics, and a page nobody writes to is never even mapped.
//!
//! Blocks are cut from the arena in order. The last one can be freed or grown in place, so a
//! value made and dropped on every event (a target's name for a log line) takes the same bytes
//! each time; other freed blocks stay used until the arena is full, when the system allocator
//! takes every new request. The arena so costs at most its own size, however long shim runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A bump allocator over `N` bytes of its own. `repr(C)`: the counter comes first, so that it
/// and the first blocks share a page with the statics before them, which the loader has
/// written to already; placed last, it would be alone on a page of its own, touched first by
/// a read and then by a write: two page faults.
#[repr(C)]
pub struct Arena<const N: usize> {
    /// The offset of the first free byte.
    next: AtomicUsize,
    bytes: UnsafeCell<MaybeUninit<[u8; N]>>,
}

// SAFETY: the bytes are only reached through `alloc`, `dealloc` and `realloc`, which hand out
// each range to one caller at a time: a range is claimed with a compare-and-swap on `next`
// before anyone writes to it, and given back the same way.
unsafe impl<const N: usize> Sync for Arena<N> {}

impl<const N: usize> Arena<N> {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Arena { next: AtomicUsize::new(0), bytes: UnsafeCell::new(MaybeUninit::uninit()) }
    }

    fn base(&self) -> usize {
        self.bytes.get() as usize
    }

    /// The block's offset in the arena, if it is the arena's.
    fn offset_of(&self, ptr: *mut u8) -> Option<usize> {
        let at = (ptr as usize).checked_sub(self.base())?;
        (at < N).then_some(at)
    }

    /// Claim `size` bytes aligned to `align`, or `None` if they do not fit.
    fn claim(&self, size: usize, align: usize) -> Option<*mut u8> {
        let base = self.base();
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            // `align` is a power of two (Layout's promise), so this rounds up with no division.
            let start = (base + next).checked_add(align - 1)? & !(align - 1);
            let start = start - base;
            let end = start.checked_add(size).filter(|&end| end <= N)?;
            match self.next.compare_exchange_weak(next, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some((base + start) as *mut u8),
                Err(now) => next = now,
            }
        }
    }

    /// How many of its bytes the arena has handed out, for the tests.
    pub fn used(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }
}

// SAFETY: every block handed out lies inside the arena (checked against N) or comes from the
// system allocator, is aligned as asked, and is never handed out again while in use: the
// arena only ever moves `next` back over a block its caller gave back.
unsafe impl<const N: usize> GlobalAlloc for Arena<N> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.claim(layout.size(), layout.align()) {
            Some(ptr) => ptr,
            // SAFETY: the caller's layout is passed on as it came, non-zero in size.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(start) = self.offset_of(ptr) else {
            // SAFETY: not the arena's, so the system allocator gave it out, with this layout.
            return unsafe { System.dealloc(ptr, layout) };
        };
        // The last block gives its bytes back; any other stays used (see the module's docs).
        let end = start + layout.size();
        let _last = self.next.compare_exchange(end, start, Ordering::Relaxed, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(start) = self.offset_of(ptr) else {
            // SAFETY: not the arena's, so the system allocator gave it out, with this layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        // The last block grows or shrinks where it is, if the arena has the room.
        let (end, new_end) = (start + layout.size(), start.saturating_add(new_size));
        if new_end <= N && self.next.compare_exchange(end, new_end, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            return ptr;
        }
        // Any other block shrinks where it is, keeping its bytes until the arena is full.
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the new layout keeps the old alignment, which was valid, and a size the
        // caller guarantees does not overflow isize once rounded up.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a non-zero size, as the caller guarantees.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live and distinct (the old one is still claimed), and each
            // holds at least the bytes copied.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: the old block, with its own layout, given back once.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn blocks_come_in_order_aligned_and_the_last_one_is_given_back() {
        let arena = Arena::<256>::new();
        // SAFETY: non-zero layouts; each block is given back with the layout it came with.
        unsafe {
            let a = arena.alloc(layout(3, 1));
            let b = arena.alloc(layout(8, 8));
            assert_eq!(a as usize, arena.base());
            assert_eq!(b as usize % 8, 0);
            assert!(b as usize >= a as usize + 3);
            let used = arena.used();
            let c = arena.alloc(layout(16, 1));
            arena.dealloc(c, layout(16, 1));
            assert_eq!(arena.used(), used, "the last block's bytes come back");
            arena.dealloc(a, layout(3, 1));
            assert_eq!(arena.used(), used, "a block that is not the last one stays used");
            arena.dealloc(b, layout(8, 8));
        }
    }

    #[test]
    fn the_last_block_grows_in_place_and_another_moves_with_its_bytes() {
        let arena = Arena::<256>::new();
        // SAFETY: as above; every pointer read or written is live and large enough.
        unsafe {
            let a = arena.alloc(layout(4, 1));
            a.copy_from(b"abcd".as_ptr(), 4);
            let grown = arena.realloc(a, layout(4, 1), 32);
            assert_eq!(grown, a, "the last block grows where it is");
            let b = arena.alloc(layout(4, 1));
            let moved = arena.realloc(grown, layout(32, 1), 64);
            assert_ne!(moved, grown);
            assert_eq!(std::slice::from_raw_parts(moved, 4), b"abcd");
            arena.dealloc(moved, layout(64, 1));
            arena.dealloc(b, layout(4, 1));
        }
    }

    #[test]
    fn when_the_arena_is_full_the_system_allocator_takes_over() {
        let arena = Arena::<64>::new();
        // SAFETY: as above.
        unsafe {
            let inside = arena.alloc(layout(48, 1));
            let outside = arena.alloc(layout(48, 1));
            assert!(arena.offset_of(inside).is_some());
            assert!(arena.offset_of(outside).is_none(), "it came from the system allocator");
            outside.write_bytes(7, 48);
            let grown = arena.realloc(outside, layout(48, 1), 4096);
            assert_eq!(*grown.add(47), 7);
            arena.dealloc(grown, layout(4096, 1));
            // Growing the arena's last block past the end moves it out too.
            let moved = arena.realloc(inside, layout(48, 1), 100);
            assert!(arena.offset_of(moved).is_none());
            arena.dealloc(moved, layout(100, 1));
        }
    }
}
