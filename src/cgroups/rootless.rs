//! Cgroups in rootless mode, as runc's: a user uses the cgroups it may write
//! (a v2 subtree delegated to it), and where it may not, the container runs
//! without a cgroup of its own: with a warning when the config asks for no
//! limit, and an error naming the limits when it does (they cannot be kept).

use super::Manager;
use crate::bail;
use crate::error::Result;
use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};

/// The `linux.resources` fields that set a limit (device rules do not count:
/// a user namespace cannot create device nodes anyway).
pub fn limits_asked(res: Option<&LinuxResources>) -> Vec<&'static str> {
    let Some(r) = res else {
        return Vec::new();
    };
    let mut v = Vec::new();
    let mut note = |set: bool, name: &'static str| {
        if set {
            v.push(name);
        }
    };
    note(r.memory().is_some(), "memory");
    note(r.cpu().is_some(), "cpu");
    note(r.pids().is_some(), "pids");
    note(r.block_io().is_some(), "blockIO");
    note(
        r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
        "hugepageLimits",
    );
    note(r.network().is_some(), "network");
    note(r.rdma().as_ref().is_some_and(|m| !m.is_empty()), "rdma");
    note(
        r.unified().as_ref().is_some_and(|m| !m.is_empty()),
        "unified",
    );
    v
}

/// The first directory of `m` the caller cannot create or write, if any.
pub fn unwritable(m: &dyn Manager) -> Result<Option<PathBuf>> {
    for (_, dir) in super::path::decode(m.path())? {
        if !writable(&dir) {
            return Ok(Some(dir));
        }
    }
    Ok(None)
}

/// A cgroup directory is ours to use when it exists and we may write it, or
/// when we may create it in its nearest existing ancestor.
fn writable(dir: &Path) -> bool {
    let mut p = dir;
    loop {
        if p.exists() {
            return nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok();
        }
        match p.parent() {
            Some(parent) => p = parent,
            None => return false,
        }
    }
}

/// Whether a rootless container gets cgroup `m`: yes when the user may write
/// it; else no (with a warning), unless the config asks for limits or names
/// its own `cgroupsPath`, which are errors as in runc.
pub fn usable(m: &dyn Manager, explicit_path: bool, res: Option<&LinuxResources>) -> Result<bool> {
    let Some(dir) = unwritable(m)? else {
        return Ok(true);
    };
    let limits = limits_asked(res);
    if !limits.is_empty() {
        bail!(
            "rootless container: cannot set linux.resources {} limit: container could not join or create cgroup ({} is not writable by this user)",
            limits.join(", "),
            dir.display()
        );
    }
    if explicit_path {
        bail!(
            "rootless container: linux.cgroupsPath: {} is not writable by this user",
            dir.display()
        );
    }
    log::warn!(
        "rootless container: no cgroup of its own ({} is not writable by this user); no limits are set",
        dir.display()
    );
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxPidsBuilder, LinuxResourcesBuilder};

    #[test]
    fn limits_are_named_device_rules_are_not() {
        assert!(limits_asked(None).is_empty());
        let r = LinuxResourcesBuilder::default()
            .devices(vec![])
            .build()
            .unwrap();
        assert!(limits_asked(Some(&r)).is_empty());
        let r = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
            .build()
            .unwrap();
        assert_eq!(limits_asked(Some(&r)), vec!["pids"]);
    }

    #[test]
    fn nearest_existing_ancestor_decides() {
        let d = std::env::temp_dir().join(format!("skiff-rl-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        assert!(writable(&d.join("a/b/c")));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
