//! Starting `skiff init` as a child: what the child does between clone and
//! exec (fds and CPU affinity); `spawn`, which starts it posix_spawn-style
//! without copying our address space; and clone3(CLONE_INTO_CGROUP), which
//! starts it inside the container's cgroup v2 directly (Linux 5.7), as runc
//! 1.4 does for exec: no moment in the caller's cgroup, charged to the
//! container's limits from its first instruction, and no migration afterwards.

use crate::error::{Context, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// What the child does before it execs `skiff init`, computed before the
/// clone so that the child only makes system calls and allocates nothing:
/// every fd from 3 up that init does not need is marked CLOEXEC (so a host
/// fd the caller leaked to us never reaches init, not even until `start`),
/// FD_CLOEXEC is cleared on the fds init inherits by number, and init is
/// pinned to execCPUAffinity.initial if set.
pub struct ChildSetup {
    /// fd ranges (inclusive) to mark CLOEXEC: everything from the end of the
    /// preserved range up, except `fds`.
    gaps: Vec<(u32, u32)>,
    /// fds init inherits by number: FD_CLOEXEC cleared.
    fds: Vec<RawFd>,
    cpus: Option<nix::sched::CpuSet>,
}

impl ChildSetup {
    /// `keep_below` ends the preserved range 3..keep_below, which passes as
    /// the caller gave it; `fds` are inherited too; `cpus` pins the child.
    pub fn new(keep_below: RawFd, fds: Vec<RawFd>, cpus: Option<nix::sched::CpuSet>) -> Self {
        ChildSetup {
            gaps: super::fd_gaps(keep_below, &fds),
            fds,
            cpus,
        }
    }

    /// Runs in the child after the clone, before exec: system calls only.
    pub fn apply(&self) -> std::io::Result<()> {
        for &(first, last) in &self.gaps {
            // SAFETY: close_range only changes flags of our own descriptors.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_close_range,
                    first,
                    last,
                    libc::CLOSE_RANGE_CLOEXEC,
                )
            };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        for fd in &self.fds {
            super::clear_cloexec(*fd)?;
        }
        if let Some(cpus) = &self.cpus {
            nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), cpus)?;
        }
        Ok(())
    }
}

/// The outcome of `into_cgroup` when nothing went wrong with the program.
pub enum IntoCgroup {
    /// Started in the cgroup: its PID.
    Started(i32),
    /// The kernel refused clone3 with CLONE_INTO_CGROUP (no clone3 or a
    /// seccomp filter refusing it: ENOSYS; a kernel before 5.7: E2BIG or
    /// EINVAL; a cgroup that cannot take processes: EOPNOTSUPP, EBUSY; ...):
    /// start the usual way and join through cgroup.procs, as runc 1.4 does.
    Refused(std::io::Error),
}

/// `struct clone_args` as of Linux 5.7 (CLONE_ARGS_SIZE_VER2, 88 bytes).
#[repr(C)]
#[derive(Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).ctx(|| format!("{s:?}: NUL byte"))
}

/// The program, argv and environment of a child, as C strings prepared
/// before the fork or clone: the child itself allocates nothing.
pub struct Program {
    path: CString,
    // Kept alive for the pointers below.
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_p: Vec<*const libc::c_char>,
    envp_p: Vec<*const libc::c_char>,
}

impl Program {
    /// `exe` with `argv` and our environment plus `env` (replacing any
    /// variable of the same name).
    pub fn new(exe: &str, argv: &[&str], env: (&str, &str)) -> Result<Program> {
        let path = cstring(exe)?;
        let argv: Vec<CString> = argv.iter().map(|a| cstring(a)).collect::<Result<_>>()?;
        let mut envp = vec![cstring(&format!("{}={}", env.0, env.1))?];
        for (k, v) in std::env::vars_os() {
            if k != env.0 {
                let mut kv = k.into_encoded_bytes();
                kv.push(b'=');
                kv.extend(v.into_encoded_bytes());
                // An OS environment entry cannot hold a NUL byte.
                envp.push(CString::new(kv).ctx(|| "environment entry with a NUL byte")?);
            }
        }
        let pointers = |v: &[CString]| -> Vec<*const libc::c_char> {
            v.iter()
                .map(|a| a.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Ok(Program {
            argv_p: pointers(&argv),
            envp_p: pointers(&envp),
            path,
            _argv: argv,
            _envp: envp,
        })
    }
}

/// What the child of `spawn` reads (through the shared memory of CLONE_VM)
/// and the errno it leaves there when it cannot exec.
struct VforkArgs<'a> {
    setup: &'a ChildSetup,
    program: &'a Program,
    errno: std::sync::atomic::AtomicI32,
}

/// The stack the child of `spawn` runs on, in the parent's frame (which
/// CLONE_VFORK keeps suspended and intact until the child execs or exits).
/// The child makes a handful of system calls; 32 KiB leaves a wide margin.
const VFORK_STACK: usize = 32 * 1024;

/// Start `program` after `setup`, as fork+exec would but without copying
/// our address space: clone with CLONE_VM|CLONE_VFORK on a stack of its own,
/// as posix_spawn does. A fork copies the page tables of this 7 MB binary
/// and its heap, and the child then pays a copy-on-write fault for each page
/// it writes before exec (about 0.1 ms per container start on the bench
/// host). Returns the PID once the child has exec'd; a failed exec is the
/// child's errno.
pub fn spawn(program: &Program, setup: &ChildSetup) -> std::io::Result<i32> {
    let args = VforkArgs {
        setup,
        program,
        errno: std::sync::atomic::AtomicI32::new(0),
    };
    let mut stack = std::mem::MaybeUninit::<[u128; VFORK_STACK / 16]>::uninit();
    // The stack grows down from its 16-byte aligned end.
    let top = stack.as_mut_ptr().cast::<u8>().wrapping_add(VFORK_STACK);
    // SAFETY: the child runs `vfork_child` on `stack`, which outlives it:
    // CLONE_VFORK suspends us until the child has exec'd or exited, so this
    // frame (and `args`, `program`, `setup`) stays as it is meanwhile. The
    // child shares our memory but writes only its own stack and `errno`
    // (an atomic), and makes raw system calls only: no allocation, no lock.
    // It unblocks signals first (as std's children do); none has a handler
    // that could run in it but std's SIGSEGV/SIGBUS ones, which only a fault
    // of the child's own would call.
    let pid = unsafe {
        libc::clone(
            vfork_child,
            top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::from_ref(&args).cast_mut().cast(),
        )
    };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let errno = args.errno.load(std::sync::atomic::Ordering::Acquire);
    if errno == 0 {
        return Ok(pid);
    }
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    Err(std::io::Error::from_raw_os_error(errno))
}

extern "C" fn vfork_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the VforkArgs of `spawn`, alive while we run (above).
    let args = unsafe { &*arg.cast::<VforkArgs>() };
    let errno = prepare_and_exec(args.setup, args.program);
    args.errno
        .store(errno, std::sync::atomic::Ordering::Release);
    // SAFETY: _exit ends only this child; it runs no atexit handler and
    // flushes no buffer (they are the parent's).
    unsafe { libc::_exit(127) }
}

/// Start `exe` with `argv` and our environment plus `env` (replacing any
/// variable of the same name) in the cgroup v2 directory `cgroup`, through
/// clone3(CLONE_INTO_CGROUP). Exec failures are errors; a refused clone3 is
/// `Refused` unless it is one a plain fork would meet too (EAGAIN: the
/// container's pids.max is reached, or RLIMIT_NPROC; ENOMEM).
pub fn into_cgroup(
    cgroup: BorrowedFd,
    exe: &str,
    argv: &[&str],
    env: (&str, &str),
    setup: &ChildSetup,
) -> Result<IntoCgroup> {
    let program = Program::new(exe, argv, env)?;
    // The child reports a failed exec through this pipe; a successful exec
    // closes its end (CLOEXEC), so the parent reads nothing.
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe2")?;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // The child (0) only calls `child`, which makes raw system calls on
    // values prepared above and never returns; it allocates nothing, so a
    // lock another thread held at the fork cannot be needed.
    let pid = match fork_into_cgroup(&args)? {
        IntoCgroup::Started(0) => child(setup, &program, wr.as_raw_fd()),
        IntoCgroup::Started(pid) => pid,
        refused => return Ok(refused),
    };
    drop(wr);
    let mut buf = [0u8; 4];
    let n = loop {
        match nix::unistd::read(&rd, &mut buf) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other.ctx(|| "read exec status of init")?,
        }
    };
    if n == 0 {
        return Ok(IntoCgroup::Started(pid));
    }
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    let errno = i32::from_ne_bytes(buf);
    Err(std::io::Error::from_raw_os_error(errno)).ctx(|| format!("start init ({exe})"))
}

/// The child of `into_cgroup`: set up, exec; on failure report errno and exit.
fn child(setup: &ChildSetup, program: &Program, report: RawFd) -> ! {
    let errno = prepare_and_exec(setup, program);
    let bytes = errno.to_ne_bytes();
    // SAFETY: write and _exit are async-signal-safe; `bytes` lives through
    // the call. _exit skips atexit handlers and buffers that are the parent's.
    unsafe {
        libc::write(report, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
}

/// In a child between clone and exec: unblock signals, apply `setup`, exec
/// `program`. Returns only on failure, with the errno.
fn prepare_and_exec(setup: &ChildSetup, program: &Program) -> i32 {
    // std's Command does the same for its children: no signal blocked (a
    // foreground run or exec blocks what it forwards).
    let empty = nix::sys::signal::SigSet::empty();
    let mut err = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&empty),
        None,
    )
    .map_err(std::io::Error::from)
    .and_then(|()| setup.apply())
    .err();
    if err.is_none() {
        // SAFETY: path, argv and envp are NUL-terminated strings and
        // NULL-terminated arrays that live until execve replaces this process.
        unsafe {
            libc::execve(
                program.path.as_ptr(),
                program.argv_p.as_ptr(),
                program.envp_p.as_ptr(),
            )
        };
        err = Some(std::io::Error::last_os_error());
    }
    err.and_then(|e| e.raw_os_error()).unwrap_or(libc::EINVAL)
}

/// clone3 as a fork (no CLONE_VM, no stack) with `args`, which name a cgroup
/// to be born in: `Started(0)` in the child, `Started(pid)` in the parent,
/// `Refused` where the kernel will not place it there (the caller falls
/// back); a full pids.max or no memory is an error.
fn fork_into_cgroup(args: &CloneArgs) -> Result<IntoCgroup> {
    // SAFETY: clone3 without CLONE_VM and with a NULL stack behaves like
    // fork(2): the child gets a copy-on-write copy of our memory. `args`
    // lives through the call and its size is passed. Callers say why the
    // child may run after a fork (single-threaded, or raw syscalls only).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::ENOMEM) => {
                Err(e).ctx(|| "clone3 into the container's cgroup (is its pids.max reached?)")
            }
            _ => Ok(IntoCgroup::Refused(e)),
        };
    }
    Ok(IntoCgroup::Started(r as i32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn exit_status(pid: i32) -> i32 {
        match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => code,
            other => panic!("child {pid}: {other:?}"),
        }
    }

    #[test]
    fn spawn_passes_argv_env_and_only_the_fds_named() {
        // One fd inherited by number, one left CLOEXEC: the child sees the
        // first and not the second, and the extra environment variable.
        let (keep, _w1) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let (drop_, _w2) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let (k, d) = (keep.as_raw_fd(), drop_.as_raw_fd());
        let script = format!(
            "test -e /proc/self/fd/{k} && ! test -e /proc/self/fd/{d} && test \"$SPAWN_T\" = v && test \"$0\" = name"
        );
        let setup = ChildSetup::new(3, vec![k], None);
        let program =
            Program::new("/bin/sh", &["sh", "-c", &script, "name"], ("SPAWN_T", "v")).unwrap();
        let pid = spawn(&program, &setup).unwrap();
        assert_eq!(exit_status(pid), 0);
    }

    #[test]
    fn spawn_reports_the_errno_of_a_failed_exec() {
        let setup = ChildSetup::new(3, vec![], None);
        let program = Program::new("/nonexistent/skiff-test", &["x"], ("A", "b")).unwrap();
        let e = spawn(&program, &setup).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }
}
