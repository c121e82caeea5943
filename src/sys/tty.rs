//! Terminal ioctls nix does not wrap: pty peer by fd (TIOCGPTPEER), unlock,
//! controlling terminal, window size.

use crate::error::{Context, Result};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Window size in character cells, as TIOCGWINSZ/TIOCSWINSZ see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WinSize {
    pub rows: u16,
    pub cols: u16,
}

/// Unlock the slave of a pty master (unlockpt(3)).
pub fn unlockpt(master: &OwnedFd) -> Result<()> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which outlives the call.
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "unlock pty (TIOCSPTLCK)");
    }
    Ok(())
}

/// Open the slave of `master` through the master fd itself (TIOCGPTPEER, Linux
/// 4.13), never through a /dev/pts path that could be swapped (CVE-2025-52565).
pub fn open_peer(master: &OwnedFd) -> Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes its open flags by value and returns a new fd.
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "open pty peer (TIOCGPTPEER)");
    }
    Ok(super::owned_fd(r))
}

/// Make `fd` our controlling terminal (we must be a session leader without one).
pub fn set_controlling_terminal(fd: RawFd) -> Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument by value (0: do not steal).
    let r = unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "set controlling terminal (TIOCSCTTY)");
    }
    Ok(())
}

pub fn get_winsize(fd: RawFd) -> Option<WinSize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into `ws`, which outlives the call.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some(WinSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

pub fn set_winsize(fd: RawFd, size: WinSize) -> Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from `ws`, which outlives the call.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "set window size (TIOCSWINSZ)");
    }
    Ok(())
}

/// dup2(2) without O_CLOEXEC on the new descriptor (stdio of the container process).
pub fn dup_onto(fd: RawFd, target: RawFd) -> Result<()> {
    // SAFETY: dup2 only manipulates our descriptor table; `target` is replaced
    // atomically and nothing in this process holds an owned handle to 0, 1 or 2.
    let r = unsafe { libc::dup2(fd, target) };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| format!("dup2 {fd} onto {target}"));
    }
    Ok(())
}
