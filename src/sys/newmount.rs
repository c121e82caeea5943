//! The new mount API (fsopen, fsconfig, fsmount, open_tree): filesystems
//! created and mounted nowhere, reachable only through the fd we hold. Used for
//! the sealed view of our binary (exe.rs) and the private procfs (procfs.rs).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const OPEN_TREE_CLONE: libc::c_uint = 0x1;
pub const MOUNT_ATTR_RDONLY: libc::c_uint = 0x1;
pub const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
pub const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
pub const MOUNT_ATTR_NOEXEC: libc::c_uint = 0x8;

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
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: `path` is NUL-terminated and outlives the call.
    syscall_fd(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) })
}
