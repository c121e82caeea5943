//! Reopening one of our own fds (the exec fifo) after pivot_root, when the
//! only procfs is the container's. `/proc/self/fd/N` as a string would be
//! looked up through whatever the bundle put at /proc (a tmpfs, a bind of a
//! rootfs directory holding an attacker's `self/fd/N` symlink). Here /proc
//! must be the root of a procfs, our fd directory is reached beneath it
//! without symlinks or mount crossings, and what opens must be the very file
//! the fd names.

use crate::bail;
use crate::error::{Context, Result};
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, Mode};
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// The inode of a procfs root (include/linux/proc_ns.h PROC_ROOT_INO).
const PROC_ROOT_INO: u64 = 1;

fn how() -> OpenHow {
    OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// O_PATH handle on the container's /proc, checked to be a procfs root. Also
/// called before `create` reports success, so a container that could never
/// start fails there, with this message, rather than in its init later.
pub fn container_proc() -> Result<OwnedFd> {
    let proc = openat2(nix::fcntl::AT_FDCWD, "/proc", how()).ctx(|| "open /proc")?;
    let fs = fstatfs(&proc).ctx(|| "statfs /proc")?;
    let st = fstat(&proc).ctx(|| "stat /proc")?;
    if fs.filesystem_type() != PROC_SUPER_MAGIC || st.st_ino != PROC_ROOT_INO {
        bail!(
            "/proc in the container is not the root of a procfs: init needs one \
             (a \"proc\" mount at /proc) to reopen the exec fifo safely"
        );
    }
    Ok(proc)
}

/// O_PATH handle on our own `/proc/<pid>/fd` in the container's procfs.
fn own_fd_dir() -> Result<OwnedFd> {
    let proc = container_proc()?;
    // Not "self" or "thread-self": those are symlinks, refused below.
    let fds = format!("{}/fd", std::process::id());
    let how = how().resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_XDEV
            | ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_MAGICLINKS,
    );
    openat2(proc.as_fd(), fds.as_str(), how).ctx(|| format!("open /proc/{fds}"))
}

/// Open what `fd` names again with `flags` (e.g. a fifo held O_PATH, now
/// O_WRONLY): the same file, checked by device and inode.
pub fn reopen(fd: &OwnedFd, flags: OFlag) -> Result<OwnedFd> {
    let dir = own_fd_dir()?;
    let name = fd.as_raw_fd().to_string();
    let new = openat(
        dir.as_fd(),
        name.as_str(),
        flags | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("reopen fd {name} through /proc"))?;
    let (a, b) = (fstat(fd)?, fstat(&new)?);
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
        bail!("reopen fd {name} through /proc: got another file");
    }
    Ok(new)
}
