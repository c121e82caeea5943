//! eventfd(2) and inotify(7), for cgroup OOM notifications (v1
//! cgroup.event_control takes an eventfd; v2 memory.events is watched).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes plain integers and returns a new descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An inotify descriptor watching `path` for modification.
pub fn inotify_modify(path: &Path) -> io::Result<OwnedFd> {
    // SAFETY: plain flags; returns a new descriptor or -1.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let w = unsafe { libc::inotify_add_watch(owned.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) };
    if w < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned)
}

/// Read and discard whatever is pending on a non-blocking fd (inotify events,
/// an eventfd counter); returns the eventfd count for an 8-byte read.
pub fn drain(fd: BorrowedFd) -> u64 {
    let mut buf = [0u8; 4096];
    let mut total = 0u64;
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(8) => total += u64::from_ne_bytes(buf[..8].try_into().unwrap_or([0; 8])),
            Ok(n) if n > 0 => total += 1,
            _ => return total,
        }
        if !is_nonblocking(fd) {
            return total;
        }
    }
}

fn is_nonblocking(fd: BorrowedFd) -> bool {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).is_ok_and(|f| f & libc::O_NONBLOCK != 0)
}
