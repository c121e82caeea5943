//! Switching the container's root: pivot_root, or MS_MOVE + chroot with --no-pivot.

use crate::error::{Context, Result};
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use std::path::Path;

/// pivot_root(".", ".") stacks the old root under the new one; we then detach it
/// (after making it a slave so the unmount does not propagate to the host).
pub fn pivot(rootfs: &Path) -> Result<()> {
    let old = nix::fcntl::open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /")?;
    let new = nix::fcntl::open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", rootfs.display()))?;
    fchdir(&new).ctx(|| format!("chdir {}", rootfs.display()))?;
    pivot_root(".", ".").ctx(|| format!("pivot_root {}", rootfs.display()))?;
    fchdir(&old).ctx(|| "chdir to old root")?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "make old root rslave")?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "unmount old root")?;
    chdir("/").ctx(|| "chdir /")?;
    Ok(())
}

pub fn move_root(rootfs: &Path) -> Result<()> {
    chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .ctx(|| format!("move {} to /", rootfs.display()))?;
    chroot(".").ctx(|| format!("chroot {}", rootfs.display()))?;
    chdir("/").ctx(|| "chdir /")?;
    Ok(())
}
