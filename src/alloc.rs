//! skiff's memory allocator: dlmalloc (the Rust port that Rust's standard
//! library uses on wasm), in place of musl's mallocng.
//!
//! mallocng hands each emptied group of small slots back to the kernel at
//! once, so a short-lived process that parses JSON and builds clap's command
//! tree maps, faults in and unmaps the same few pages over and over: measured
//! on `skiff run` of busybox `true`, 96 mmap and 66 munmap calls in the CLI
//! process alone. dlmalloc takes memory from the kernel in 64 KiB steps and
//! keeps what is freed for reuse, giving back only a top chunk over 2 MiB.
//!
//! dlmalloc's lock is a pthread mutex. `fork_safe` registers pthread_atfork
//! handlers so that a child of fork(2) never inherits it locked; skiff's raw
//! clone paths do not allocate in the child before execve, as before.

#[global_allocator]
static GLOBAL: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// Called first thing in main, before skiff can have started a thread.
pub fn fork_safe() {
    // SAFETY: called once, single-threaded, before any other thread exists;
    // the allocations Rust's runtime made before main are plain heap blocks,
    // which the handlers do not touch.
    unsafe { dlmalloc::enable_alloc_after_fork() };
}
