//! A process that holds a new user namespace, and a mount namespace that
//! namespace owns, for as long as we need handles to them. An idmapped mount
//! takes a user namespace fd; the kernel has no call that makes a user
//! namespace without a process in it, so (as runc does) a child unshares one,
//! its maps are written from outside, and we open its /proc/<pid>/ns files.
//! The child runs no Rust code after the fork: only async-signal-safe system
//! calls, so it is sound whatever the caller's threads hold.

use crate::error::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, OwnedFd};

/// The holder process; killed and reaped on drop.
pub struct Holder {
    pid: i32,
}

impl Holder {
    /// Fork a child that unshares CLONE_NEWUSER | CLONE_NEWNS (the mount
    /// namespace is a copy of ours, owned by the new user namespace, so the
    /// kernel locks the flags of every mount in it) and then waits to be
    /// killed. It dies with us (PR_SET_PDEATHSIG), so it never outlives init.
    pub fn spawn() -> Result<Holder> {
        let (ready_r, ready_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe for userns holder")?;
        // SAFETY: getpid takes no arguments.
        let parent = unsafe { libc::getpid() };
        // SAFETY: a raw clone with a NULL stack behaves like fork(2). The child
        // only makes async-signal-safe system calls on values computed before
        // the fork and leaves with _exit, so no lock another thread held and no
        // Rust destructor can run in it.
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone,
                libc::SIGCHLD as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "fork userns holder");
        }
        if r == 0 {
            holder_child(parent, ready_w.as_raw_fd());
        }
        let holder = Holder { pid: r as i32 };
        drop(ready_w);
        let mut buf = [0u8; 4];
        let n = read_full(&ready_r, &mut buf);
        match n {
            4 if buf == [0; 4] => Ok(holder),
            4 => {
                let e = std::io::Error::from_raw_os_error(i32::from_ne_bytes(buf));
                Err(e).ctx(|| "userns holder: unshare(CLONE_NEWUSER|CLONE_NEWNS)")
            }
            _ => crate::bail!("userns holder exited before it was ready"),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(self.pid), None);
    }
}

/// Read until `buf` is full or EOF; the count read.
fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    let mut have = 0;
    while have < buf.len() {
        match nix::unistd::read(fd, &mut buf[have..]) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    have
}

/// The child: unshare, report 0 or the errno on `ready`, then wait for the
/// SIGKILL. Never returns.
fn holder_child(parent: i32, ready: i32) -> ! {
    // SAFETY: prctl, getppid, unshare, write, pause and _exit are
    // async-signal-safe; `code` is a local buffer valid for the write.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        let mut code: i32 = 0;
        if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0 {
            code = *libc::__errno_location();
        }
        let bytes = code.to_ne_bytes();
        libc::write(ready, bytes.as_ptr().cast(), bytes.len());
        loop {
            libc::pause();
        }
    }
}
