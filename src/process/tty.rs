//! Terminals: the console socket protocol (pty created inside the container,
//! master sent to the caller with SCM_RIGHTS) and the foreground proxy of `run`.
//!
//! INTERFACE CONTRACT (called by process/setup.rs in init, after pivot_root):
//! - `setup_console(cfg)`: with `cfg.console_fd` set, open /dev/pts/ptmx, get the peer with
//!   TIOCGPTPEER, apply consoleSize, bind the peer over /dev/console, send the master over the
//!   console socket, make the peer the controlling terminal and dup2 it onto 0, 1, 2.
use super::init::InitConfig;
use crate::bail;
use crate::error::Result;

pub fn setup_console(cfg: &InitConfig) -> Result<()> {
    if cfg.console_fd.is_none() {
        bail!("terminal: true requires a console socket");
    }
    bail!("terminal support is not implemented yet")
}

/// Connect to the caller's console socket; init sends the pty master over it.
pub fn connect_console_socket(path: &std::path::Path) -> Result<std::os::fd::OwnedFd> {
    use crate::error::Context;
    let s = std::os::unix::net::UnixStream::connect(path)
        .ctx(|| format!("connect to console socket {}", path.display()))?;
    Ok(s.into())
}
