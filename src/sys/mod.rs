//! The thin layer of raw kernel calls nix does not wrap. The only `unsafe` code
//! in skiff lives here, each block with the reason it is sound.

pub mod bpf;
pub mod newmount;
pub mod notify;
pub mod tty;

use crate::error::{Context, Result};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

pub mod exe;
#[cfg(target_env = "musl")]
mod fortify_shim;
pub mod net;
pub mod procfs;
pub mod rtnl;
pub mod shared_clone;
pub mod spawn;
pub mod task;
pub mod userns;

/// setrlimit(2) by raw resource number (the spec names resources the nix enum may lack).
pub fn setrlimit(resource: i32, soft: u64, hard: u64) -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit for the duration of the call.
    let r = unsafe { libc::setrlimit(resource as _, &lim) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Mark every fd from `first` up CLOEXEC, so nothing of ours reaches the
/// container process (CVE-2024-21626) while preserved fds below `first` pass.
pub fn cloexec_from(first: u32) -> Result<()> {
    // SAFETY: close_range only changes flags of our own descriptors.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "close_range(CLOEXEC)");
    }
    Ok(())
}

/// Join a new session keyring named after the container, so it does not share
/// the host's (runc does this unless --no-new-keyring).
pub fn join_session_keyring(name: &str) -> Result<()> {
    let c = std::ffi::CString::new(name).ctx(|| "keyring name")?;
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c.as_ptr()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        // Kernels without keys, or a seccomp'd host, simply have no keyring to isolate.
        if matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EACCES) | Some(libc::EPERM)
        ) {
            return Ok(());
        }
        return Err(e).ctx(|| "join session keyring");
    }
    Ok(())
}

/// Take ownership of a descriptor we were given: inherited by number, or just
/// received with SCM_RIGHTS.
pub fn owned_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: used only for descriptors handed to this process by number (the
    // sync socket and fifo passed to init) or installed for us by the kernel in
    // a recvmsg just made; nothing else owns or closes them.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// pidfd_open(2) (Linux 5.3+): a descriptor that names process `pid` for good,
/// so a signal sent through it can never reach a later process given the PID.
pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a PID and flags and returns a new descriptor
    // or -1; newmount::syscall_fd takes ownership only of a non-negative one.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    newmount::syscall_fd(r)
}

/// Clear FD_CLOEXEC so `fd` survives execve into `skiff init`.
pub fn clear_cloexec(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor number only changes its flags; it is
    // async-signal-safe, so it may run between fork and exec.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Borrow a descriptor by number for a call that takes `AsFd`.
pub fn borrow_fd(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: callers pass descriptors they keep open across the call.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// The binary `create` re-executes as `skiff init`: a sealed view or copy of
/// ourselves, never the file on the host (CVE-2019-5736, see exe.rs).
pub fn self_exe() -> Result<&'static str> {
    exe::sealed_self_exe()
}

/// kill(2) with a raw signal number (real-time signals have no nix enum variant).
pub fn kill_raw(pid: i32, sig: i32) -> i32 {
    // SAFETY: kill takes plain integers.
    unsafe { libc::kill(pid, sig) }
}

/// sigwait(3) returning the raw number: nix's SigSet::wait panics on a
/// real-time signal (no Signal variant), and a foreground `run` forwards those.
pub fn sigwait_raw(set: &nix::sys::signal::SigSet) -> Result<i32> {
    let mut sig: libc::c_int = 0;
    // SAFETY: the set is a valid sigset_t for the call, `sig` a valid out pointer.
    let rc = unsafe { libc::sigwait(set.as_ref(), &mut sig) };
    if rc != 0 {
        return Err(crate::error::Error::new(format!(
            "sigwait: {}",
            nix::errno::Errno::from_raw(rc)
        )));
    }
    Ok(sig)
}

/// End this process by SIGPIPE, as a Go program such as runc ends when the
/// reader of its stdout has gone (the Rust runtime ignores SIGPIPE).
pub fn die_of_sigpipe() -> ! {
    // SAFETY: installs SIG_DFL (no handler code); the process ends right after.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    };
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGPIPE);
    // SIGPIPE blocked by the caller: the status a shell shows for it.
    std::process::exit(128 + libc::SIGPIPE)
}

/// Give the container process the signal state a fresh process has: nothing
/// blocked (a foreground `run` or `exec` blocks everything it forwards) and
/// every disposition at its default (the Rust runtime ignores SIGPIPE and
/// static glibc sets up 32/33; ignored signals survive execve, so `yes | head`
/// would print "Broken pipe").
pub fn reset_signal_state() -> Result<()> {
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // The raw syscall: glibc's wrappers refuse its internal signals 32/33.
        // Layout of the kernel's struct sigaction on x86_64: handler, flags,
        // restorer, mask.
        let act: [u64; 4] = [libc::SIG_DFL as u64, 0, 0, 0];
        // SAFETY: `act` is a valid kernel sigaction for the call's duration and
        // installs SIG_DFL, so no handler code runs; nothing in init relies on a
        // handler or on SIGPIPE being ignored (its writes check errors).
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                act.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
    }
    nix::sys::signal::SigSet::empty()
        .thread_set_mask()
        .ctx(|| "unblock signals")
}

/// The fd ranges (inclusive) from `keep_below` up that hold none of `keep`.
fn fd_gaps(keep_below: RawFd, keep: &[RawFd]) -> Vec<(u32, u32)> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|&&f| f >= keep_below)
        .map(|&f| f as u32)
        .collect();
    keep.sort_unstable();
    let mut gaps = Vec::new();
    let mut next = keep_below.max(3) as u32;
    for k in keep {
        if k > next {
            gaps.push((next, k - 1));
        }
        next = next.max(k + 1);
    }
    gaps.push((next, u32::MAX));
    gaps
}

/// PR_SET_DUMPABLE 0: /proc/<pid> of this process belongs to root and
/// ptrace_may_access refuses every process without CAP_SYS_PTRACE, so nothing in
/// the container can open our fds or attach to us. execve of the user's
/// program makes it dumpable again, as any exec does.
/// Dumpable again, only while an unprivileged parent writes our uid/gid maps.
pub fn set_dumpable_for_maps() -> Result<()> {
    nix::sys::prctl::set_dumpable(true).ctx(|| "prctl(PR_SET_DUMPABLE, 1) for the id maps")
}

pub fn set_non_dumpable() -> Result<()> {
    nix::sys::prctl::set_dumpable(false).ctx(|| "prctl(PR_SET_DUMPABLE, 0)")
}

#[cfg(test)]
mod tests {
    use super::fd_gaps;

    #[test]
    fn gaps_leave_exactly_the_kept_fds() {
        assert_eq!(fd_gaps(3, &[]), vec![(3, u32::MAX)]);
        assert_eq!(fd_gaps(5, &[13, 14]), vec![(5, 12), (15, u32::MAX)]);
        assert_eq!(
            fd_gaps(5, &[20, 13]),
            vec![(5, 12), (14, 19), (21, u32::MAX)]
        );
        // Kept fds inside the preserved range change nothing.
        assert_eq!(fd_gaps(8, &[4, 8]), vec![(9, u32::MAX)]);
    }
}
