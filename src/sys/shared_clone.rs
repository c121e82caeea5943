//! Stage 2 of init, cloned into stage 1's address space (CLONE_VM) on a
//! stack of its own, rather than forked.
//!
//! A fork copies stage 1's page tables, and then stage 2 pays a fault for
//! every page it touches: a copy for each page of heap, stack and data it
//! writes, and a fresh mapping for each page of code it runs (the kernel does
//! not copy the entries of file mappings at fork). On the bench host that was
//! about 50 faults per `exec` and more per `run`, and the copies are charged
//! to the container's memory limit once stage 2 has joined its cgroup: the
//! cost runc users meet as "runc init OOM-killed" under small limits.
//!
//! Sharing is safe because the two never run Rust code at once: stage 2
//! first blocks on the go-ahead pipe (system calls only), and stage 1 only
//! sends stage 2's PID, writes the go-ahead byte and exits (if it dies
//! instead, stage 2 sees EOF without the byte and exits untouched). From
//! then on stage 2 is the only user of the memory, which goes at its execve.
//! With a new time namespace stage 2 is forked as before: it enters that
//! namespace only at its execve, and kernels before 6.1 refuse CLONE_VM
//! into it.

use crate::error::{Context, Result};
use std::convert::Infallible;
use std::mem::ManuallyDrop;
use std::os::fd::RawFd;

/// The stack stage 2 runs on: what the main thread's would be (8 MiB, the
/// usual RLIMIT_STACK), reserved, not committed; only the pages stage 2
/// touches are ever allocated.
const STACK_SIZE: usize = 8 << 20;
/// A page left inaccessible below it: an overflow faults instead of writing
/// into whatever is mapped there.
const GUARD: usize = 4096;

/// An anonymous stack mapping with a guard page at its low end.
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

impl Stack {
    fn new() -> Result<Stack> {
        let len = STACK_SIZE + GUARD;
        // SAFETY: a new private anonymous mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error()).ctx(|| "mmap a stack for init");
        }
        let stack = Stack { base, len };
        // A huge page would give stage 2 2 MiB of zeroes, charged to the
        // container once stage 1 is gone (kernels before 6.8 may, for stacks).
        // SAFETY: advice on the mapping made above.
        unsafe { libc::madvise(base, len, libc::MADV_NOHUGEPAGE) };
        // SAFETY: the first page of the mapping made above.
        if unsafe { libc::mprotect(base, GUARD, libc::PROT_NONE) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "mprotect init's stack guard");
        }
        Ok(stack)
    }

    /// The 16-byte aligned top, where a stack that grows down starts.
    fn top(&self) -> u64 {
        self.base as u64 + self.len as u64
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once; only dropped when no child
        // runs on it (the clone failed).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// clone3(CLONE_INTO_CGROUP) refused, with the kernel's reason: nothing was
/// started, and the closures come back for another way.
pub struct Refused<C, P> {
    pub error: std::io::Error,
    pub child: C,
    pub parent: P,
}

/// Clone a child of our parent (CLONE_PARENT) that shares our memory
/// (`share`; else it gets a copy, as from fork) and runs `child` on a stack
/// of its own; then run `parent` here with its PID and whether it was born
/// in `cgroup`, an O_PATH fd of a cgroup v2 directory (clone3 with
/// CLONE_INTO_CGROUP). Returns only when no child was started: an error, or
/// `Refused` where the kernel will not place the child in `cgroup` (never
/// without one).
///
/// The caller's promise: until `child` has heard from `parent` that it may
/// go on (a byte on a pipe: EOF alone may be `parent` dying mid-allocation,
/// and then `child` must _exit), `child` makes system calls only, and
/// `parent` does nothing but tell it and exit without unwinding
/// (exit_shared). Both closures and whatever they borrow live in frames
/// `parent` never leaves.
// `parent` cannot return (Infallible), which rustc reports on the match
// that says so.
#[allow(unreachable_code)]
pub fn clone_shared<C, P>(
    cgroup: Option<RawFd>,
    share: bool,
    child: C,
    parent: P,
) -> Result<Refused<C, P>>
where
    C: FnOnce() -> Infallible,
    P: FnOnce(i32, bool) -> Infallible,
{
    let stack = Stack::new()?;
    let child = ManuallyDrop::new(child);
    let arg = std::ptr::from_ref(&*child)
        .cast_mut()
        .cast::<libc::c_void>();
    let entry = trampoline::<C> as extern "C" fn(*mut libc::c_void) -> !;
    let placed = cgroup.is_some();
    let vm = if share { libc::CLONE_VM as u64 } else { 0 };
    let r = match cgroup {
        Some(fd) => {
            let args = super::spawn::CloneArgs {
                // exit_signal must be 0 with CLONE_PARENT: the child reports
                // to our parent with the signal we would have sent it.
                flags: super::spawn::CLONE_INTO_CGROUP | vm | libc::CLONE_PARENT as u64,
                stack: stack.base as u64 + GUARD as u64,
                stack_size: STACK_SIZE as u64,
                cgroup: fd as u64,
                ..Default::default()
            };
            // SAFETY: `args` lives through the call and names a stack that
            // nothing else uses; the child runs `entry(arg)` on it (see
            // `raw_clone`), and `arg` points at `child`, which stays in this
            // frame (ManuallyDrop: the child owns it from now on).
            unsafe {
                raw_clone(
                    libc::SYS_clone3,
                    std::ptr::from_ref(&args) as u64,
                    std::mem::size_of_val(&args) as u64,
                    entry,
                    arg,
                )
            }
        }
        None => {
            let flags = vm | (libc::CLONE_PARENT | libc::SIGCHLD) as u64;
            // SAFETY: as above, with clone(2)'s new stack pointer.
            unsafe { raw_clone(libc::SYS_clone, flags, stack.top(), entry, arg) }
        }
    };
    if r < 0 {
        let error = std::io::Error::from_raw_os_error(-r as i32);
        // No child was started: the closure is ours again.
        let child = ManuallyDrop::into_inner(child);
        return match error.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOMEM) => {
                Err(error).ctx(|| "clone init's stage 2 (is the container's pids.max reached?)")
            }
            _ if placed => Ok(Refused {
                error,
                child,
                parent,
            }),
            _ => Err(error).ctx(|| "clone(CLONE_PARENT) init's stage 2"),
        };
    }
    // The child runs on the stack from now on, and it goes away with the
    // memory at the child's execve: it must not be unmapped here.
    std::mem::forget(stack);
    match parent(r as i32, placed) {}
}

/// musl and glibc register a word of our memory with set_tid_address, which
/// the kernel clears when we exit (glibc's is the thread's TID, which a
/// stage 2 sharing the memory would then read as 0): no more.
pub fn forget_tid_address() {
    // SAFETY: set_tid_address(NULL) only stops the kernel's write at exit.
    unsafe {
        libc::syscall(
            libc::SYS_set_tid_address,
            std::ptr::null_mut::<libc::c_int>(),
        )
    };
}

/// Leave a process whose memory a stage 2 shares: no exit handler, no
/// unwinding (call forget_tid_address first).
pub fn exit_shared(code: i32) -> Infallible {
    // SAFETY: _exit ends this process, leaving the shared memory as it is.
    unsafe { libc::_exit(code) }
}

/// The child's first Rust frame: take the closure out of the parent's frame
/// and run it. It never returns (exec or exit).
extern "C" fn trampoline<C: FnOnce() -> Infallible>(arg: *mut libc::c_void) -> ! {
    // SAFETY: `arg` points at the ManuallyDrop'd closure of clone_shared,
    // which the parent neither drops nor touches again; it is read once.
    let child = unsafe { std::ptr::read(arg.cast::<C>()) };
    match child() {}
}

/// clone(2) or clone3(2) (`nr`, with its first two arguments) of a child
/// that starts on the new stack the arguments name and calls `entry(arg)`.
/// Returns the child's PID, or -errno.
///
/// # Safety
/// The stack must be unused and stay mapped for the child; `entry` must not
/// return. With CLONE_VM the child shares our memory: see clone_shared.
unsafe fn raw_clone(
    nr: libc::c_long,
    a0: u64,
    a1: u64,
    entry: extern "C" fn(*mut libc::c_void) -> !,
    arg: *mut libc::c_void,
) -> i64 {
    let ret: i64;
    // In the child the kernel returns 0 with rsp at the new stack's top
    // (16-byte aligned): no frame of ours is there, so it clears the frame
    // pointer and calls entry(arg) right away. rdx, r10 and r8 are clone's
    // parent_tid, child_tid and tls: none.
    // SAFETY: the caller's promise above; the parent's registers are
    // restored by the kernel and only rax, rcx and r11 change.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") nr => ret,
            in("rdi") a0,
            in("rsi") a1,
            in("rdx") 0u64,
            in("r10") 0u64,
            in("r8") 0u64,
            in("r12") arg,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}
