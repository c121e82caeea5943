//! The new mount API (fsopen, fsconfig, fsmount, open_tree, mount_setattr,
//! move_mount): filesystems created and mounted nowhere, reachable only through
//! the fd we hold, and mounts made, changed and attached through fds rather
//! than paths looked up again (which a container could swap, and which after
//! pivot_root would go through the container's /proc). Used for the sealed
//! view of our binary (exe.rs), the private procfs (procfs.rs) and the
//! container's binds, masks and console (rootfs).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const OPEN_TREE_CLONE: libc::c_uint = 0x1;
const AT_EMPTY_PATH: libc::c_uint = 0x1000;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
pub const MOUNT_ATTR_RDONLY: libc::c_uint = 0x1;
pub const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
pub const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
pub const MOUNT_ATTR_NOEXEC: libc::c_uint = 0x8;
/// The atime mode: a field (clear it to set any of the three modes below).
pub const MOUNT_ATTR__ATIME: libc::c_uint = 0x70;
pub const MOUNT_ATTR_RELATIME: libc::c_uint = 0x0;
pub const MOUNT_ATTR_NOATIME: libc::c_uint = 0x10;
pub const MOUNT_ATTR_STRICTATIME: libc::c_uint = 0x20;
pub const MOUNT_ATTR_NODIRATIME: libc::c_uint = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: libc::c_uint = 0x0020_0000;
/// Set with a user namespace fd: the mount shows the ids of its files
/// through that namespace's mappings (idmapped mounts, Linux 5.12).
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// struct mount_attr of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Take ownership of the fd a syscall returned (or its errno).
pub fn syscall_fd(r: libc::c_long) -> std::io::Result<OwnedFd> {
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the syscall just returned this fresh descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// A filesystem context for `fstype` ("proc", "overlay", ...).
pub fn fsopen(fstype: &CStr) -> std::io::Result<OwnedFd> {
    // SAFETY: `fstype` is NUL-terminated and outlives the call.
    syscall_fd(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })
}

/// Set a string option (`lowerdir=...`) on a filesystem context.
pub fn fsconfig_string(fs: &OwnedFd, key: &CStr, value: &CStr) -> std::io::Result<()> {
    // SAFETY: key and value are NUL-terminated and outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Create the filesystem and return a detached mount of it with `attrs`.
pub fn create_and_mount(fs: &OwnedFd, attrs: libc::c_uint) -> std::io::Result<OwnedFd> {
    // SAFETY: FSCONFIG_CMD_CREATE takes no key, value or aux argument.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fsmount takes the fs context fd and integer flags.
    syscall_fd(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })
}

/// A detached clone of the mount at `path` (without its submounts).
pub fn clone_tree(path: &CStr) -> std::io::Result<OwnedFd> {
    clone_path(path, false)
}

/// Set a flag option (`ro`, `newinstance`) on a filesystem context.
pub fn fsconfig_flag(fs: &OwnedFd, key: &CStr) -> std::io::Result<()> {
    // SAFETY: key is NUL-terminated and outlives the call; a flag takes no value.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            key.as_ptr(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A detached clone of the mount at `path` (host paths, before pivot_root),
/// with its submounts when `recursive`.
pub fn clone_path(path: &CStr, recursive: bool) -> std::io::Result<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: `path` is NUL-terminated and outlives the call.
    syscall_fd(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) })
}

/// A detached clone of what `fd` names (a file, a directory, a pty), with
/// the submounts below it when `recursive`: a bind mount source that is not
/// looked up again.
pub fn clone_fd(fd: BorrowedFd, recursive: bool) -> std::io::Result<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE | AT_EMPTY_PATH | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH names `fd` itself.
    syscall_fd(unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) })
}

/// mount_setattr(2) on the mount `fd` is the root of (a detached tree, or a
/// mount fd that was attached): set and clear MOUNT_ATTR_* flags, and change
/// propagation (MS_SHARED, MS_SLAVE, ... or 0), on it alone or its whole tree.
pub fn set_attrs(
    fd: BorrowedFd,
    recursive: bool,
    set: libc::c_uint,
    clr: libc::c_uint,
    propagation: u64,
) -> std::io::Result<()> {
    let attr = MountAttr {
        attr_set: set.into(),
        attr_clr: clr.into(),
        propagation,
        userns_fd: 0,
    };
    mount_setattr(fd, recursive, &attr)
}

/// MOUNT_ATTR_IDMAP with the user namespace `userns` on the detached tree
/// `fd` (its root mount alone, or every mount of it when `recursive`). The
/// kernel allows it only before the tree is attached, to a caller that holds
/// CAP_SYS_ADMIN over the filesystem's user namespace and over `userns`.
pub fn set_idmap(fd: BorrowedFd, recursive: bool, userns: BorrowedFd) -> std::io::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // `userns` stays open for the call: the kernel takes its reference then.
    mount_setattr(fd, recursive, &attr)
}

/// mount_setattr(2) with `attr` on the mount `fd` names (AT_EMPTY_PATH), or
/// on every mount below it too when `recursive`.
fn mount_setattr(fd: BorrowedFd, recursive: bool, attr: &MountAttr) -> std::io::Result<()> {
    let mut flags = AT_EMPTY_PATH;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: `attr` is a valid struct mount_attr of the size passed, and the
    // empty path with AT_EMPTY_PATH names `fd` itself.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Attach the detached mount `mnt` on top of what `target` names (an O_PATH
/// fd resolved and checked by the caller): no path is looked up.
pub fn attach(mnt: BorrowedFd, target: BorrowedFd) -> std::io::Result<()> {
    // SAFETY: both paths are empty NUL-terminated strings naming the fds
    // themselves (MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH).
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
