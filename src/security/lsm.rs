//! AppArmor and SELinux labels.
//!
//! INTERFACE CONTRACT (called by process/init.rs):
//! - `apply_apparmor(profile)` arranges for the profile to be applied on execve.
//! - `apply_selinux_exec_label(label)` likewise for the process label.
use crate::error::Result;

pub fn apply_apparmor(_profile: &str) -> Result<()> {
    Ok(())
}

pub fn apply_selinux_exec_label(_label: &str) -> Result<()> {
    Ok(())
}
