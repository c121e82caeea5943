//! Mounts made and changed through fds (the new mount API), never through a
//! path looked up again: a bind is a detached clone of its source, given its
//! flags (ro, nosuid, ...) while still detached, then attached onto the target
//! fd the caller resolved and checked. No window where the mount exists with
//! the wrong flags, no second lookup a container could redirect by swapping a
//! path for a symlink, and no use of /proc/self/fd (which after pivot_root is
//! the container's to fake).

use super::options::Attrs;
use crate::error::{Context, Result};
use crate::sys::newmount::{self as nm, *};
use nix::errno::Errno;
use nix::mount::MsFlags;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// mount_setattr(2) flags to set and to clear for mount(2)-style `flags`
/// (what to apply) and `cleared` (what "rw", "suid", ... asked to drop).
/// Flags that are not per-mount (sync, dirsync, ...) have no meaning for a
/// bind and are ignored, as a MS_BIND|MS_REMOUNT ignores them.
pub fn attrs_of(flags: MsFlags, cleared: MsFlags) -> (libc::c_uint, libc::c_uint) {
    let mut set = 0;
    let mut clr = 0;
    for (f, a) in [
        (MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
    ] {
        if flags.contains(f) {
            set |= a;
        } else if cleared.contains(f) {
            clr |= a;
        }
    }
    // The atime mode is one field: setting a mode means clearing the field.
    let atime = if flags.contains(MsFlags::MS_STRICTATIME) {
        Some(MOUNT_ATTR_STRICTATIME)
    } else if flags.contains(MsFlags::MS_NOATIME) {
        Some(MOUNT_ATTR_NOATIME)
    } else if flags.contains(MsFlags::MS_RELATIME) {
        Some(MOUNT_ATTR_RELATIME)
    } else {
        None
    };
    if let Some(mode) = atime {
        set |= mode;
        clr |= MOUNT_ATTR__ATIME;
    }
    (set, clr)
}

/// What a bind remount (MS_BIND|MS_REMOUNT with `flags`, as runc 1.1.5
/// does) leaves: exactly the per-mount flags asked for, none of the source
/// mount's ro, nosuid, nodev or noexec; the atime flags are kept from the
/// source unless one is asked for (the kernel keeps them on a remount that
/// names none), then the mode defaults to relatime. A bind without flags to
/// apply is not remounted at all: ["rbind"] or ["rbind", "rw"] keep what the
/// source has. Returns (flags, cleared) for [`set_flags`].
pub fn remount_flags(flags: MsFlags) -> (MsFlags, MsFlags) {
    if flags.is_empty() {
        return (flags, MsFlags::empty());
    }
    let mut flags = flags;
    let mut cleared =
        (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC) - flags;
    let atime = MsFlags::MS_NOATIME | MsFlags::MS_STRICTATIME | MsFlags::MS_RELATIME;
    if flags.intersects(atime | MsFlags::MS_NODIRATIME) {
        cleared |= MsFlags::MS_NODIRATIME - flags;
        if !flags.intersects(atime) {
            flags |= MsFlags::MS_RELATIME;
        }
    }
    (flags, cleared)
}

/// Apply `flags`/`cleared` to the mount `mnt` is the root of (only that
/// mount, not its submounts, as a bind remount does). In a user namespace the
/// kernel refuses to clear flags it locked (EPERM): then keep what the mount
/// has and only add, as runc's remount keeps the locked flags.
pub fn set_flags(mnt: BorrowedFd, flags: MsFlags, cleared: MsFlags, shown: &str) -> Result<()> {
    let (set, clr) = attrs_of(flags, cleared);
    if set == 0 && clr == 0 {
        return Ok(());
    }
    match nm::set_attrs(mnt, false, set, clr, 0) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(Errno::EPERM as i32) => {
            // Without the clears, and without an atime change (a locked field).
            let set = if clr & MOUNT_ATTR__ATIME != 0 {
                set & !MOUNT_ATTR__ATIME
            } else {
                set
            };
            nm::set_attrs(mnt, false, set, 0, 0).ctx(|| format!("{shown}: mount_setattr {flags:?}"))
        }
        Err(e) => Err(e).ctx(|| format!("{shown}: mount_setattr {flags:?}")),
    }
}

/// The mount_setattr(2) options that mount(2) flags cannot say: `attrs` on
/// the mount `mnt` is the root of, then `rec` on it and every mount below
/// (AT_RECURSIVE: runc 1.1's "rro", "rnosuid", ...).
pub fn set_attrs(mnt: BorrowedFd, attrs: &Attrs, rec: &Attrs, shown: &str) -> Result<()> {
    for (recursive, a) in [(false, attrs), (true, rec)] {
        if a.is_empty() {
            continue;
        }
        let (set, clr) = a.set_clr();
        let what = if recursive { "recursively " } else { "" };
        nm::set_attrs(mnt, recursive, set, clr, 0)
            .ctx(|| format!("{shown}: mount_setattr {what}(set {set:#x}, clear {clr:#x})"))?;
    }
    Ok(())
}

/// Bind the detached clone `mnt` onto `target` with `flags` applied first.
/// Returns the mount fd, which names the attached mount from then on (for
/// propagation changes without looking the destination up again).
pub fn attach_with(
    mnt: OwnedFd,
    target: BorrowedFd,
    flags: MsFlags,
    cleared: MsFlags,
    shown: &str,
) -> Result<OwnedFd> {
    set_flags(mnt.as_fd(), flags, cleared, shown)?;
    nm::attach(mnt.as_fd(), target).ctx(|| format!("{shown}: move_mount"))?;
    Ok(mnt)
}

/// Bind what `src` names onto `target`: `recursive` as MS_REC, then `flags`.
pub fn bind_fd(
    src: BorrowedFd,
    target: BorrowedFd,
    recursive: bool,
    flags: MsFlags,
    cleared: MsFlags,
    shown: &str,
) -> Result<OwnedFd> {
    let mnt = nm::clone_fd(src, recursive).ctx(|| format!("{shown}: open_tree"))?;
    attach_with(mnt, target, flags, cleared, shown)
}

/// Bind a host path (before pivot_root: a bind source, a host cgroup) onto
/// `target`.
pub fn bind_path(
    src: &std::path::Path,
    target: BorrowedFd,
    recursive: bool,
    flags: MsFlags,
    cleared: MsFlags,
    shown: &str,
) -> Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(src.as_os_str().as_bytes())
        .ctx(|| format!("{shown}: source path"))?;
    let mnt = nm::clone_path(&c, recursive).ctx(|| format!("{shown}: open_tree"))?;
    attach_with(mnt, target, flags, cleared, shown)
}

/// Change the flags of the mount `fd` is the root of, in place ("/" read-only).
pub fn remount_fd(fd: BorrowedFd, flags: MsFlags, shown: &str) -> Result<()> {
    set_flags(fd, flags, MsFlags::empty(), shown)
}

/// Options for a filesystem context (fsopen): the source mountinfo shows,
/// the mount data ("mode=755,size=64k": key=value as strings, bare keys as
/// flags) and the superblock flags of `flags` (sync, ...); per-mount flags
/// are for fsmount or set_flags.
pub fn configure(fs: &OwnedFd, source: &str, data: &str, flags: MsFlags) -> Result<()> {
    use std::ffi::CString;
    let cstr = |s: &str| CString::new(s).ctx(|| format!("mount option {s:?}"));
    nm::fsconfig_string(fs, c"source", &cstr(source)?).ctx(|| format!("source {source:?}"))?;
    for opt in data.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            Some((k, v)) => nm::fsconfig_string(fs, &cstr(k)?, &cstr(v)?),
            None => nm::fsconfig_flag(fs, &cstr(opt)?),
        }
        .ctx(|| format!("mount option {opt:?}"))?;
    }
    for (f, key) in [
        (MsFlags::MS_SYNCHRONOUS, c"sync"),
        (MsFlags::MS_DIRSYNC, c"dirsync"),
        (MsFlags::MS_LAZYTIME, c"lazytime"),
        (MsFlags::MS_MANDLOCK, c"mand"),
    ] {
        if flags.contains(f) {
            nm::fsconfig_flag(fs, key).ctx(|| format!("mount flag {key:?}"))?;
        }
    }
    Ok(())
}

/// Propagation (MS_SHARED, MS_SLAVE, ... with MS_REC) on the mount `mnt`.
pub fn propagate(mnt: BorrowedFd, prop: MsFlags, shown: &str) -> Result<()> {
    let rec = prop.contains(MsFlags::MS_REC);
    let kind = (prop - MsFlags::MS_REC).bits();
    nm::set_attrs(mnt, rec, 0, 0, kind).ctx(|| format!("{shown}: set propagation {prop:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_mount_attrs() {
        let (s, c) = attrs_of(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID, MsFlags::empty());
        assert_eq!((s, c), (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0));
        // "rw,dev" clear, and a set flag wins over a clear of the same flag.
        let (s, c) = attrs_of(
            MsFlags::MS_NOEXEC,
            MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        );
        assert_eq!(s, MOUNT_ATTR_NOEXEC);
        assert_eq!(c, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV);
        // An atime mode clears the whole atime field.
        let (s, c) = attrs_of(MsFlags::MS_STRICTATIME, MsFlags::empty());
        assert_eq!((s, c), (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME));
        let (s, c) = attrs_of(MsFlags::MS_RELATIME, MsFlags::empty());
        assert_eq!((s, c), (MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME));
        // A remount asks for exactly its flags; atime kept unless named.
        let (f, c) = remount_flags(MsFlags::MS_RDONLY);
        assert_eq!(f, MsFlags::MS_RDONLY);
        assert_eq!(
            c,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC
        );
        let (f, c) = remount_flags(MsFlags::MS_NODIRATIME);
        assert!(f.contains(MsFlags::MS_RELATIME) && c.contains(MsFlags::MS_RDONLY));
        assert_eq!(
            remount_flags(MsFlags::empty()),
            (MsFlags::empty(), MsFlags::empty())
        );
        // Superblock flags mean nothing to a bind.
        assert_eq!(attrs_of(MsFlags::MS_SYNCHRONOUS, MsFlags::empty()), (0, 0));
    }
}
