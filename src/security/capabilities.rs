//! Capability sets from `process.capabilities`.
//!
//! INTERFACE CONTRACT (called by process/init.rs):
//! - `drop_bounding(caps)` runs before the uid/gid switch: drops every bounding capability not
//!   listed. A listed capability the kernel or host bounding set lacks is a warning (log::warn!).
//! - `keep_caps_across_setuid()` before setresuid so permitted caps survive the switch.
//! - `apply(caps)` after setresuid: sets effective, permitted, inheritable, then ambient.
use crate::error::Result;
use oci_spec::runtime::LinuxCapabilities;

pub fn drop_bounding(_caps: &LinuxCapabilities) -> Result<()> {
    Ok(())
}

pub fn keep_caps_across_setuid() -> Result<()> {
    Ok(())
}

pub fn apply(_caps: &LinuxCapabilities) -> Result<()> {
    Ok(())
}
