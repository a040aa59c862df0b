//! `memcpy` and `memmove` for the static (musl, x86_64) host.
//!
//! musl's x86_64 `memcpy` starts every copy with `rep movsq` and ends it a byte at a time: fine
//! for large blocks, slow for the millions of small ones a sync makes (strings lifted from and
//! lowered into the module, the module's own `memory.copy`, which wasmtime runs as a call to
//! `memmove`, JSON texts). Profiled on a 10,000-account sync, it was about a fifth of the static
//! host's time, and the static host was 1.2x slower than the glibc build (docs/benchmark.md). The
//! same trouble is known elsewhere (astral-sh/uv#10610; microsoft/openvmm#2297 wrote its own).
//!
//! Both functions here copy with unaligned loads and stores of 1 to 16 bytes, sized to the copy:
//! up to 32 bytes in at most four moves, longer copies 16 bytes at a time with the last (or
//! first) chunk loaded before the loop. Every copy is overlap-safe, so `memcpy` is `memmove`.
//!
//! The crate is `no_builtins`: LLVM must not turn these loops back into calls to `memcpy`.
//! The symbols are exported only for musl on x86_64; elsewhere the crate is empty but for
//! [`copy`], which the tests check on every target against a byte-by-byte reference.

#![no_std]
#![no_builtins]

use core::ptr::{read_unaligned as load, write_unaligned as store};

/// Copies `n` bytes from `src` to `dest`; the two ranges may overlap (`memmove`'s contract).
///
/// # Safety
/// `src` must be valid for reads of `n` bytes and `dest` for writes of `n` bytes.
#[inline(always)]
pub unsafe fn copy(dest: *mut u8, src: *const u8, n: usize) {
    // Each branch reads everything it moves before writing, or (past 32 bytes) walks in the
    // direction that never reads what it wrote.
    unsafe {
        match n {
            0 => {}
            1 => *dest = *src,
            2..=3 => pair::<u16>(dest, src, n),
            4..=7 => pair::<u32>(dest, src, n),
            8..=16 => pair::<u64>(dest, src, n),
            17..=32 => pair::<u128>(dest, src, n),
            _ if (dest as usize).wrapping_sub(src as usize) >= n => forward(dest, src, n),
            _ => backward(dest, src, n),
        }
    }
}

/// Copies `n` bytes (`size_of::<T>() <= n <= 2 * size_of::<T>()`) as two possibly overlapping
/// `T`s, both read before either is written.
#[inline(always)]
unsafe fn pair<T>(dest: *mut u8, src: *const u8, n: usize) {
    let tail = n - size_of::<T>();
    unsafe {
        let head_value: T = load(src.cast());
        let tail_value: T = load(src.add(tail).cast());
        store(dest.cast(), head_value);
        store(dest.add(tail).cast(), tail_value);
    }
}

/// Copies `n > 32` bytes front to back: safe when `dest` is not inside `src..src + n` (it is
/// before it, or the ranges do not meet). The last 16 bytes are read first and written last.
#[inline(always)]
unsafe fn forward(dest: *mut u8, src: *const u8, n: usize) {
    unsafe {
        let last: u128 = load(src.add(n - 16).cast());
        let mut done = 0;
        while n - done > 16 {
            let chunk: u128 = load(src.add(done).cast());
            store(dest.add(done).cast(), chunk);
            done += 16;
        }
        store(dest.add(n - 16).cast(), last);
    }
}

/// Copies `n > 32` bytes back to front: for `dest` inside `src..src + n`. The first 16 bytes are
/// read first and written last.
#[inline(always)]
unsafe fn backward(dest: *mut u8, src: *const u8, n: usize) {
    unsafe {
        let first: u128 = load(src.cast());
        let mut left = n;
        while left > 16 {
            left -= 16;
            let chunk: u128 = load(src.add(left).cast());
            store(dest.add(left).cast(), chunk);
        }
        store(dest.cast(), first);
    }
}

/// C `memcpy`, in place of musl's.
///
/// # Safety
/// As C's: `src` valid for reads and `dest` for writes of `n` bytes.
#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    unsafe { copy(dest, src, n) };
    dest
}

/// C `memmove`, in place of musl's.
///
/// # Safety
/// As C's: `src` valid for reads and `dest` for writes of `n` bytes; the ranges may overlap.
#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    unsafe { copy(dest, src, n) };
    dest
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use proptest::prelude::*;

    /// The buffer after moving `n` bytes from `from` to `to` with [`super::copy`], and after the
    /// same move done byte by byte through a separate copy of the source (the reference).
    fn both(len: usize, from: usize, to: usize, n: usize) -> (Vec<u8>, Vec<u8>) {
        let original: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let mut fast = original.clone();
        let base = fast.as_mut_ptr();
        unsafe { super::copy(base.add(to), base.add(from), n) };
        let mut reference = original.clone();
        let source: Vec<u8> = original[from..from + n].to_vec();
        for (i, byte) in source.into_iter().enumerate() {
            reference[to + i] = byte;
        }
        (fast, reference)
    }

    #[test]
    fn every_small_size_and_overlap_copies_like_bytes() {
        // Every size up to 100 bytes (all the small-size branches and a few loop turns), every
        // placement of the destination from 40 bytes before the source to 40 after it.
        for n in 0..=100 {
            for to in 0..=80 {
                let (fast, reference) = both(200, 40, to, n);
                assert_eq!(fast, reference, "n {n}, from 40 to {to}");
            }
        }
    }

    #[test]
    fn disjoint_buffers_copy_like_bytes() {
        for n in [0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 49, 4095, 4096, 4097, 65_537] {
            let source: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let mut dest = std::vec![0u8; n + 3];
            unsafe { super::copy(dest.as_mut_ptr().add(1), source.as_ptr(), n) };
            assert_eq!(&dest[1..=n], &source[..], "n {n}");
            assert_eq!((dest[0], dest[n + 1], dest[n + 2]), (0, 0, 0), "n {n}: nothing outside the range");
        }
    }

    /// On musl, the C symbols a program links to are these functions, not musl's.
    #[cfg(all(target_env = "musl", target_arch = "x86_64"))]
    #[test]
    fn the_linked_memcpy_and_memmove_are_these() {
        unsafe extern "C" {
            #[link_name = "memcpy"]
            fn linked_memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8;
            #[link_name = "memmove"]
            fn linked_memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8;
        }
        assert_eq!(linked_memcpy as *const (), super::memcpy as *const ());
        assert_eq!(linked_memmove as *const (), super::memmove as *const ());
        // And they copy: a slice copy goes through them.
        let source: Vec<u8> = (0..100).collect();
        let mut dest = std::vec![0u8; 100];
        dest.copy_from_slice(&source);
        assert_eq!(dest, source);
    }

    proptest! {
        #[test]
        fn any_move_within_a_buffer_copies_like_bytes(len in 1usize..2048, a in 0usize..2048, b in 0usize..2048, n in 0usize..2048) {
            let (from, to) = (a % len, b % len);
            let n = n % (len - from.max(to) + 1);
            let (fast, reference) = both(len, from, to, n);
            prop_assert_eq!(fast, reference);
        }
    }
}
