//! Confinement applied by init: capabilities, seccomp, LSM labels, and the
//! per-process kernel settings (personality, scheduler, I/O priority, CPU
//! affinity). `preflight` is the parent's share: the checks and warnings that
//! must reach the caller before init starts (init itself has no log).
pub mod capabilities;
pub mod lsm;
pub mod mempolicy;
pub mod seccomp;
pub mod task;

#[cfg(test)]
mod fuzz;

use crate::error::Result;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Validate what init would otherwise only find out inside the container, and
/// log the capabilities that cannot be granted (runtime-spec: a warning, not
/// an error).
pub fn preflight(spec: &Spec) -> Result<()> {
    let Some(process) = spec.process() else {
        return Ok(());
    };
    let linux = spec.linux().as_ref();
    lsm::check(spec)?;
    task::validate(process, linux.and_then(|l| l.personality().as_ref()))?;
    if let Some(m) = linux.and_then(|l| l.memory_policy().as_ref()) {
        mempolicy::validate(m)?;
    }
    if let Some(s) = linux.and_then(|l| l.seccomp().as_ref()) {
        seccomp::validate(s)?;
    }
    if let Some(c) = process.capabilities() {
        let userns = linux
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|n| n.iter().any(|n| n.typ() == LinuxNamespaceType::User));
        capabilities::warn_ungrantable(c, userns);
    }
    Ok(())
}
