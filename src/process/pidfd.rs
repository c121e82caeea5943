//! `--pidfd-socket` (runc 1.2+): the caller listens on an AF_UNIX socket and
//! receives a pidfd of the container's process, so it can signal and wait for
//! that process without PID-reuse races.
//!
//! runc's message: one sendmsg whose data is the kind of init that ran
//! ("standard" for create/run, "setns" for exec) with the pidfd as the one
//! SCM_RIGHTS descriptor, sent once the process exists and before it execs the
//! user's program. runc's init sends it from inside the container; we send it
//! from the parent (init must hold no fd that reaches outside the container,
//! architecture.md), for the same process and before create/exec returns.

use crate::error::{Context, Result};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// The data runc sends with the pidfd of a container's init.
pub const INIT_TAG: &str = "standard";
/// The data runc sends with the pidfd of an exec'd process.
pub const EXEC_TAG: &str = "setns";

/// Connect to the caller's socket first, as runc does, so a wrong path fails
/// before any container process exists.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let s = std::os::unix::net::UnixStream::connect(path)
        .ctx(|| format!("--pidfd-socket: connect to {}", path.display()))?;
    Ok(s.into())
}

/// Open a pidfd of `pid` (our child, so it cannot have been reaped by anyone
/// else and its PID cannot have been reused) and send it with `tag`.
pub fn send(sock: &OwnedFd, pid: i32, tag: &str) -> Result<()> {
    let pidfd = crate::sys::pidfd_open(pid)
        .ctx(|| format!("--pidfd-socket: pidfd_open of process {pid} (needs Linux 5.3+)"))?;
    let fds = [pidfd.as_raw_fd()];
    let iov = [IoSlice::new(tag.as_bytes())];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .ctx(|| "--pidfd-socket: send the pidfd")?;
    Ok(())
}
