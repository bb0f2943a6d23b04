//! The global allocator: mimalloc, asked for a plain block whenever a plain block already has
//! the alignment the layout needs.
//!
//! Rust hands every allocation its alignment, and the `mimalloc` crate passes each one to
//! `mi_malloc_aligned`. In mimalloc 3 that call takes its fast path only when a free block of
//! the size class happens to sit at the right address; otherwise it falls back to a generic
//! path that over-allocates for any size that is not a power of two (a 48-byte value gets a
//! 64-byte block). That was about 90 instructions per allocation and over 7,000 per guarded
//! cached read (callgrind, `GET /api/v1/users/me`), where `mi_malloc` costs about 20.
//!
//! A plain block is aligned enough when the alignment is at most 16 and divides the size:
//! mimalloc's size classes are multiples of 8 (of 16 from 16 bytes up) and a page's blocks start
//! 16-aligned, so every block of such a size is aligned to the size's own power of two up to 16
//! (what C's `malloc` promises). Larger alignments (tokio's cache-padded cells) keep the aligned
//! calls. The tests check both kinds of layout.
//!
//! The one file of the workspace allowed `unsafe` (a global allocator cannot be written
//! without it): `tests/api/architecture.rs` keeps it so.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};

use libmimalloc_sys as mi;

/// mimalloc, allocating through its plain entry points where they satisfy the layout.
pub struct MiMalloc;

/// The largest alignment every plain block of a size that is a multiple of it has.
const PLAIN_ALIGN: usize = 16;

/// Whether a plain block of `size` bytes satisfies `align`.
#[inline]
fn plain(size: usize, align: usize) -> bool {
    align <= PLAIN_ALIGN && size & (align - 1) == 0
}

// SAFETY: every method forwards to the mimalloc call for the same contract (a block of at
// least `size` bytes aligned to `align`, or null), choosing the plain call only where `plain`
// says its blocks are aligned enough; `mi_free` and `mi_realloc*` accept blocks from either.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain C calls; a null answer is passed on as allocation failure.
        unsafe {
            if plain(layout.size(), layout.align()) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            if plain(layout.size(), layout.align()) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's contract).
        unsafe { mi::mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's contract); the
        // new block keeps the alignment, as `alloc` would choose it for the new size.
        unsafe {
            if plain(new_size, layout.align()) {
                mi::mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block is aligned as its layout asks, across sizes and alignments of both paths,
    /// many blocks of a size at once (so they come from every position of a page), through
    /// `alloc`, `alloc_zeroed` and `realloc`.
    #[test]
    fn blocks_have_the_alignment_their_layout_asks_for() {
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in (1..=1100).chain([2048, 4000, 4096, 5000, 65_536, 1 << 20]) {
                let Ok(layout) = Layout::from_size_align(size, align) else { continue };
                let blocks: Vec<*mut u8> = (0..40)
                    .map(|i| {
                        // SAFETY: a layout of non-zero size.
                        let p =
                            unsafe { if i % 2 == 0 { MiMalloc.alloc(layout) } else { MiMalloc.alloc_zeroed(layout) } };
                        assert!(!p.is_null());
                        assert_eq!(p as usize % align, 0, "size {size}, align {align}");
                        if i % 2 == 1 {
                            // SAFETY: `size` bytes were just allocated at `p`.
                            assert!(unsafe { std::slice::from_raw_parts(p, size) }.iter().all(|b| *b == 0));
                        }
                        p
                    })
                    .collect();
                for (i, p) in blocks.into_iter().enumerate() {
                    let grown = size * 2 + i;
                    // SAFETY: `p` came from `alloc` with `layout`; the new size is non-zero.
                    let q = unsafe { MiMalloc.realloc(p, layout, grown) };
                    assert!(!q.is_null());
                    assert_eq!(q as usize % align, 0, "realloc of size {size} to {grown}, align {align}");
                    let grown = Layout::from_size_align(grown, align).expect("a layout");
                    // SAFETY: `q` came from `realloc` with the grown layout.
                    unsafe { MiMalloc.dealloc(q, grown) };
                }
            }
        }
    }
}
