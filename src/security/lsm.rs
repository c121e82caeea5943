//! AppArmor and SELinux labels.
//!
//! A profile or label asked for on a host without that LSM is an error named
//! as such (runc fails too, with "write /proc/thread-self/attr/exec: invalid
//! argument"); `linux.mountLabel` without SELinux is ignored with a warning,
//! as runc does, since it only ever adds a mount option; with SELinux it is
//! the `context=` option of the container's filesystem mounts (rootfs/mounts.rs). The exec labels are
//! written through the checked procfs writer (sys/procfs.rs), so a mount
//! over /proc cannot swallow them (CVE-2019-16884).

use crate::bail;
use crate::error::{Context, Result};
use crate::sys::procfs;
use oci_spec::runtime::Spec;
use std::path::Path;

/// AppArmor is on: its securityfs directory exists and the module says "Y".
pub fn apparmor_enabled() -> bool {
    Path::new("/sys/kernel/security/apparmor").is_dir()
        && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.starts_with('Y'))
}

/// SELinux is on: selinuxfs is mounted where libselinux looks for it.
pub fn selinux_enabled() -> bool {
    // The libc type of f_type differs between glibc (i64) and musl (u64).
    const SELINUX_MAGIC: nix::sys::statfs::FsType = nix::sys::statfs::FsType(0xf97c_ff8c);
    nix::sys::statfs::statfs("/sys/fs/selinux").is_ok_and(|s| s.filesystem_type() == SELINUX_MAGIC)
}

/// The parent's check before init starts: fail early, with a reason, for a
/// label this host cannot apply.
pub fn check(spec: &Spec) -> Result<()> {
    let process = spec.process().as_ref();
    if let Some(p) = process
        .and_then(|p| p.apparmor_profile().as_deref())
        .filter(|p| !p.is_empty())
    {
        if !apparmor_enabled() {
            bail!("apparmor profile {p:?} requested, but AppArmor is not enabled on this host");
        }
    }
    if let Some(l) = process
        .and_then(|p| p.selinux_label().as_deref())
        .filter(|l| !l.is_empty())
    {
        if !selinux_enabled() {
            bail!("selinux label {l:?} requested, but SELinux is not enabled on this host");
        }
    }
    if let Some(l) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref())
        .filter(|l| !l.is_empty())
    {
        if !selinux_enabled() {
            log::warn!("linux.mountLabel {l:?} ignored: SELinux is not enabled on this host");
        }
    }
    Ok(())
}

/// `linux.mountLabel` to apply to the container's mounts: only where SELinux
/// is enabled (elsewhere runc ignores it, and `check` has warned).
pub fn mount_label_to_apply(spec: &Spec) -> Option<String> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.mount_label().clone())
        .filter(|l| !l.is_empty() && selinux_enabled())
}

/// Ask AppArmor to switch to `profile` at the next execve (what
/// aa_change_onexec does): "exec <profile>" into our exec attribute.
pub fn apply_apparmor(profile: &str) -> Result<()> {
    let value = format!("exec {profile}");
    // Kernels with LSM stacking have a per-LSM directory; older ones only attr/exec.
    procfs::write_thread_self("attr/apparmor/exec", value.as_bytes())
        .or_else(|_| procfs::write_thread_self("attr/exec", value.as_bytes()))
        .ctx(|| format!("apply apparmor profile {profile:?}"))
}

/// Set the SELinux label the process gets at the next execve.
pub fn apply_selinux_exec_label(label: &str) -> Result<()> {
    procfs::write_thread_self("attr/exec", label.as_bytes())
        .ctx(|| format!("set selinux exec label {label:?}"))
}
