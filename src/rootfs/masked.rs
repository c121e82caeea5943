//! maskedPaths, readonlyPaths and the read-only root, applied after pivot_root.
//! Masking binds /dev/null opened once and checked to be the real char 1:3 device
//! (CVE-2025-31133), onto targets resolved without following symlinks. Every
//! mount here is made through fds with the new mount API: after pivot_root,
//! /proc/self/fd/N would be looked up in the container's /proc.

use super::fdmount;
use crate::bail;
use crate::error::{Context, Result};
use crate::sys::newmount::{self, MOUNT_ATTR_RDONLY};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{fstat, major, minor};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

fn open_target(p: &Path) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_MAGICLINKS | ResolveFlag::RESOLVE_NO_SYMLINKS);
    openat2(nix::fcntl::AT_FDCWD, p, how)
}

fn open_dev_null() -> Result<OwnedFd> {
    let fd = open_target(Path::new("/dev/null")).ctx(|| "open /dev/null")?;
    let st = fstat(&fd).ctx(|| "stat /dev/null")?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR
        || major(st.st_rdev) != 1
        || minor(st.st_rdev) != 3
    {
        bail!("/dev/null is not the null device (char 1:3): refusing to mask with it");
    }
    Ok(fd)
}

/// An empty read-only tmpfs, detached, to attach over a masked directory.
fn empty_tmpfs() -> std::io::Result<OwnedFd> {
    let fs = newmount::fsopen(c"tmpfs")?;
    // The source mountinfo shows, as for runc's mount(2) of "tmpfs".
    newmount::fsconfig_string(&fs, c"source", c"tmpfs")?;
    newmount::fsconfig_string(&fs, c"size", c"0k")?;
    newmount::create_and_mount(&fs, MOUNT_ATTR_RDONLY)
}

pub fn mask(paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let null = open_dev_null()?;
    // One empty read-only tmpfs for every masked directory, each a clone of
    // it (runc 1.5: one shared tmpfs instead of a superblock per path).
    let mut shared: Option<OwnedFd> = None;
    for p in paths {
        let fd = match open_target(Path::new(p)) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => bail!("mask {p}: open: {e}"),
        };
        let st = fstat(&fd).ctx(|| format!("mask {p}: stat"))?;
        let shown = format!("mask {p}");
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            // The first masked directory gets the tmpfs itself; the others a
            // clone of that mount once it is attached (cloning a detached
            // mount needs Linux 6.15; an attached one works everywhere).
            let mnt = match shared.as_ref() {
                Some(first) => newmount::clone_fd(first.as_fd(), false)
                    .ctx(|| format!("{shown}: open_tree of the masking tmpfs"))?,
                None => empty_tmpfs().ctx(|| format!("{shown}: make an empty tmpfs"))?,
            };
            newmount::attach(mnt.as_fd(), fd.as_fd()).ctx(|| format!("{shown}: move_mount"))?;
            if shared.is_none() {
                shared = Some(mnt);
            }
        } else {
            fdmount::bind_fd(
                null.as_fd(),
                fd.as_fd(),
                false,
                MsFlags::empty(),
                MsFlags::empty(),
                &format!("{shown}: bind /dev/null"),
            )?;
        }
    }
    Ok(())
}

/// Each path bound onto itself (with what is mounted below it) and that
/// bind made read-only before it is attached.
pub fn readonly(paths: &[String]) -> Result<()> {
    for p in paths {
        let fd = match open_target(Path::new(p)) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => bail!("readonly path {p}: open: {e}"),
        };
        let shown = format!("readonly path {p}");
        fdmount::bind_fd(
            fd.as_fd(),
            fd.as_fd(),
            true,
            MsFlags::MS_RDONLY,
            MsFlags::empty(),
            &shown,
        )?;
    }
    Ok(())
}

pub fn readonly_root() -> Result<()> {
    let fd = open_target(Path::new("/")).ctx(|| "open /")?;
    fdmount::remount_fd(fd.as_fd(), MsFlags::MS_RDONLY, "remount / read-only")
}
