//! Seccomp filters from `linux.seccomp` through libseccomp.
//!
//! INTERFACE CONTRACT (called by process/init.rs as the last step before execve):
//! - `load(seccomp)` builds and loads the filter; returns the notify fd when the profile
//!   uses SCMP_ACT_NOTIFY (init sends it to the parent, which calls `send_to_listener`).
use crate::error::Result;
use oci_spec::runtime::LinuxSeccomp;
use std::os::fd::OwnedFd;

pub fn load(_seccomp: &LinuxSeccomp) -> Result<Option<OwnedFd>> {
    Ok(None)
}

/// Whether any rule uses SCMP_ACT_NOTIFY (then the filter is loaded before
/// `create` returns, so its fd can reach the listener).
pub fn uses_notify(_seccomp: &LinuxSeccomp) -> bool {
    false
}

/// Send the notify fd and the container state to `listenerPath` (runtime-spec
/// "seccomp notify": a SCM_RIGHTS message carrying the fd, the state JSON as data).
pub fn send_to_listener(
    _spec: &oci_spec::runtime::Spec,
    _state_json: &str,
    _fd: OwnedFd,
) -> Result<()> {
    Ok(())
}
