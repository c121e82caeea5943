//! maskedPaths, readonlyPaths and the read-only root, applied after pivot_root.
//! Masking binds /dev/null opened once and checked to be the real char 1:3 device
//! (CVE-2025-31133), onto targets resolved without following symlinks.

use super::mounts::remount_bind;
use super::safe_path::fd_path;
use crate::bail;
use crate::error::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, major, minor};
use std::os::fd::OwnedFd;
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

pub fn mask(paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let null = open_dev_null()?;
    for p in paths {
        let fd = match open_target(Path::new(p)) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => bail!("mask {p}: open: {e}"),
        };
        let st = fstat(&fd).ctx(|| format!("mask {p}: stat"))?;
        let target = fd_path(&fd);
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            mount(
                Some("tmpfs"),
                target.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                Some("size=0k"),
            )
            .ctx(|| format!("mask {p}: mount tmpfs"))?;
        } else {
            mount(
                Some(fd_path(&null).as_str()),
                target.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .ctx(|| format!("mask {p}: bind /dev/null"))?;
        }
    }
    Ok(())
}

pub fn readonly(paths: &[String]) -> Result<()> {
    for p in paths {
        let fd = match open_target(Path::new(p)) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => bail!("readonly path {p}: open: {e}"),
        };
        let t = fd_path(&fd);
        mount(
            Some(t.as_str()),
            t.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| format!("readonly path {p}: bind"))?;
        remount_bind(Path::new(p), MsFlags::MS_RDONLY, MsFlags::empty())
            .ctx(|| format!("readonly path {p}"))?;
    }
    Ok(())
}

pub fn readonly_root() -> Result<()> {
    remount_bind(Path::new("/"), MsFlags::MS_RDONLY, MsFlags::empty()).ctx(|| "remount / read-only")
}
