//! Cgroup management: one `Manager` interface, a v1 (also used on hybrid hosts)
//! and a v2 implementation behind it.
//!
//! INTERFACE CONTRACT (used by container/ and process/):
//! - `create(cgroups_path, id, systemd)` resolves the path as runc does and returns a manager;
//!   nothing is created on disk until `apply`.
//! - `path()` is an opaque string to persist in state (a JSON object of the
//!   container's directory per hierarchy); `load(path, systemd)` rebuilds the
//!   manager from it without reading mountinfo.
//! - `apply(pid)` creates the cgroup(s) and moves `pid` in; `clone_into()` instead
//!   creates it and gives the fd to start a process in it with CLONE_INTO_CGROUP.
//! - `set(resources)` writes every limit; errors name the field and the file.
//! - `destroy()` removes the cgroup directories (retrying while they drain); idempotent.
//!
//! Layout: layout.rs detects v1/hybrid/v2 once, path.rs turns cgroupsPath into
//! directories, config.rs validates linux.resources for both managers, v1.rs and
//! v2.rs write files, devices_bpf.rs builds the v2 device program, stats.rs reads.

pub(crate) mod config;
pub use config::for_create as resources_for_create;
mod convert;
pub mod devices_bpf;
mod devices_v1;
mod files;
mod layout;
pub mod oom;
mod path;
pub mod rootless;
pub mod stats;
mod systemd;
mod v1;
mod v2;
mod v2place;

use crate::bail;
use crate::error::Result;
use oci_spec::runtime::LinuxResources;
use std::path::PathBuf;

pub use stats::{OomWatch, Stats};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreezerState {
    Thawed,
    Frozen,
}

/// One mount to show the container its own cgroup under /sys/fs/cgroup:
/// `host` is the container's cgroup directory, `name` the entry under /sys/fs/cgroup
/// ("memory", "cpu,cpuacct", or "" for a unified v2 mount).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CgroupMount {
    pub name: String,
    pub host: PathBuf,
}

pub trait Manager {
    /// The persisted form of the container's cgroup directories (see `load`).
    fn path(&self) -> &str;
    fn apply(&self, pid: i32) -> Result<()>;
    fn set(&self, resources: &LinuxResources) -> Result<()>;
    fn destroy(&self) -> Result<()>;
    fn freeze(&self, state: FreezerState) -> Result<()>;
    fn freezer_state(&self) -> Result<FreezerState>;
    /// Every PID in the container's cgroup (host PIDs).
    fn pids(&self) -> Result<Vec<i32>>;
    /// runc's `events --stats` "data" object.
    fn stats(&self) -> Result<stats::Stats>;
    /// What to bind under /sys/fs/cgroup inside the container.
    fn mounts(&self) -> Vec<CgroupMount>;
    /// A pollable source of OOM-kill notifications for `events`.
    fn oom_watch(&self) -> Result<OomWatch>;
    /// The memory cgroup's OOM and limit counters (all zero where there is
    /// no memory controller or the cgroup is not made yet).
    fn memory_events(&self) -> oom::MemoryEvents {
        oom::MemoryEvents::default()
    }

    /// For a process started straight into the cgroup with
    /// clone3(CLONE_INTO_CGROUP): make the cgroup as `apply` would and return
    /// an O_PATH fd of its cgroup v2 directory. None when this manager places
    /// only through `apply` (v1 and hybrid hosts; a systemd scope, which is
    /// started with the PID it holds). After a process started that way,
    /// `apply` is not called.
    fn clone_into(&self) -> Result<Option<std::os::fd::OwnedFd>> {
        Ok(None)
    }

    /// For a process that moves itself in (cgroup v1): make the cgroup as
    /// `apply` would and return a write fd of each hierarchy's `tasks` file.
    /// Writing "0" there moves the writing thread, and for a single-threaded
    /// process that is the whole process; unlike a write of another PID to
    /// `cgroup.procs`, it skips the kernel's global threadgroup lock, whose
    /// first writer waits a whole RCU grace period (1-3 ms here, on every
    /// container start). Empty when this manager places only through `apply`.
    /// After the process wrote to every fd, `apply_joined` does the rest.
    fn join_files(&self) -> Result<Vec<std::os::fd::OwnedFd>> {
        Ok(Vec::new())
    }

    /// What `apply` still does for a process that joined through
    /// `join_files`.
    fn apply_joined(&self, _pid: i32) -> Result<()> {
        Ok(())
    }

    /// SIGKILL every process in the cgroup at once through `cgroup.kill`
    /// (Linux 5.14, v2): no freeze-list-kill race with forking processes, as
    /// runc >= 1.2 does for `kill --all` with SIGKILL. Ok(false): no such file
    /// here, the caller signals process by process.
    fn kill_all(&self) -> Result<bool> {
        Ok(false)
    }

    /// Refuse a cgroup that is in use before a new container goes into it, in
    /// runc 1.2's words (1.1 only warned): processes there would become the
    /// container's, and a frozen cgroup would hang its init.
    fn check_unused(&self) -> Result<()> {
        let n = self.pids().map_or(0, |p| p.len());
        if n > 0 {
            bail!("container's cgroup is not empty: {n} process(es) found");
        }
        if let Ok(FreezerState::Frozen) = self.freezer_state() {
            bail!("container's cgroup unexpectedly frozen");
        }
        Ok(())
    }
}

/// Build a manager for a new container.
pub fn create(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<Box<dyn Manager>> {
    let layout = layout::get()?;
    if systemd && crate::rootless::is_rootless_euid() {
        return user_systemd(layout, cgroups_path, id);
    }
    let inner = if systemd {
        let inner = path::systemd_inner(cgroups_path, id)?;
        if !path::systemd_running() {
            // Without a cgroupsPath, name the unit runc's default would be.
            let what = cgroups_path.map_or_else(
                || format!("the default system.slice:runc:{id}"),
                |p| format!("{p:?}"),
            );
            bail!("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system), so {what} cannot be placed in a systemd unit; use the cgroupfs driver (no --systemd-cgroup)");
        }
        inner
    } else {
        let inner = path::fs_inner(cgroups_path, id);
        // A container in a hierarchy's root cgroup would share it with the
        // whole host: `delete` and `kill --all` would reach every process.
        if inner == path::Inner::Absolute("/".to_string()) {
            bail!(
                "linux.cgroupsPath {:?}: a container cannot use the root cgroup",
                cgroups_path.unwrap_or_default()
            );
        }
        inner
    };
    let dirs = path::resolve(layout, &inner)?;
    let persisted = path::encode(&dirs);
    let unified = layout.mode == layout::Mode::Unified;
    if systemd {
        // systemd makes the unit's cgroup and its parents: the cgroupfs
        // manager underneath only joins it and writes files.
        let fs = fs_manager(layout, dirs, persisted, false)?;
        let name = path::systemd_name(cgroups_path, id)?;
        return Ok(Box::new(systemd::Driver::new(fs, name, id, unified)?));
    }
    fs_manager(layout, dirs, persisted, true)
}

/// A rootless container under `--systemd-cgroup`: a scope of the user's own
/// systemd instance, below that instance's cgroup (runc's rule: default
/// slice "user.slice", e.g. /user.slice/user-1000.slice/user@1000.service/
/// user.slice/runc-<id>.scope). Only cgroup v2 delegates to a user.
fn user_systemd(
    layout: &layout::Layout,
    cgroups_path: Option<&str>,
    id: &str,
) -> Result<Box<dyn Manager>> {
    if layout.mode != layout::Mode::Unified {
        bail!("rootless --systemd-cgroup needs a cgroup v2 host: systemd delegates no v1 hierarchy to a user");
    }
    let bus = systemd::user_bus()?;
    let base = bus.manager_cgroup()?;
    let name = path::systemd_name_in(cgroups_path, id, "user.slice")?;
    let slice = path::expand_slice(&name.slice)?;
    let inner = path::Inner::Absolute(
        format!(
            "{}/{}/{}",
            base.trim_end_matches('/'),
            slice.trim_matches('/'),
            name.unit
        )
        .replace("//", "/"),
    );
    let dirs = path::resolve(layout, &inner)?;
    let persisted = path::encode(&dirs);
    let fs = fs_manager(layout, dirs, persisted, false)?;
    Ok(Box::new(systemd::Driver::new_user(fs, name, id, bus)))
}

/// The cgroupfs manager of `dirs`; `place`: it creates the v2 cgroup itself.
fn fs_manager(
    layout: &layout::Layout,
    dirs: Vec<(String, PathBuf)>,
    persisted: String,
    place: bool,
) -> Result<Box<dyn Manager>> {
    Ok(match layout.mode {
        layout::Mode::Unified => {
            let Some((dir, root)) = dirs
                .into_iter()
                .next()
                .map(|(_, d)| d)
                .zip(layout.unified.as_ref().map(|u| u.0.clone()))
            else {
                bail!("cgroup v2 host without a cgroup2 mount");
            };
            if !place {
                return Ok(Box::new(v2::V2::new(dir, None, persisted)));
            }
            let own = own_v2_dir(layout);
            Box::new(v2::V2::new(dir, Some(root), persisted).with_own(own))
        }
        _ => {
            let mut unified = None;
            let mut v1dirs = Vec::new();
            for (key, dir) in dirs {
                if key.is_empty() {
                    unified = Some(dir);
                    continue;
                }
                let name = layout
                    .v1
                    .iter()
                    .find(|h| h.key == key)
                    .and_then(|h| h.mount.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| mount_name(&key));
                v1dirs.push(v1::Dir {
                    key,
                    path: dir,
                    name,
                });
            }
            Box::new(v1::V1::new(v1dirs, unified, persisted))
        }
    })
}

/// Our own cgroup's directory in the unified tree, if /proc/self/cgroup says.
fn own_v2_dir(layout: &layout::Layout) -> Option<PathBuf> {
    let (mount, root) = layout.unified.as_ref()?;
    let own = layout::own_cgroups().ok()?;
    let mine = layout::own_path(&own, "")?;
    let rel = mine.strip_prefix(root.as_str()).unwrap_or(mine);
    Some(mount.join(rel.trim_start_matches('/')))
}

/// The usual directory name of a v1 hierarchy under /sys/fs/cgroup.
fn mount_name(key: &str) -> String {
    key.strip_prefix("name=").unwrap_or(key).to_string()
}

/// Rebuild the manager of an existing container from its persisted path.
pub fn load(path: &str, systemd: bool) -> Result<Box<dyn Manager>> {
    let dirs = path::decode(path)?;
    if systemd {
        let Some(dir) = dirs.first().map(|d| d.1.clone()) else {
            bail!("bad cgroup path {path:?} in state: no directory");
        };
        let v2 = dirs.len() == 1 && dirs[0].0.is_empty();
        let fs = load(path, false)?;
        return Ok(Box::new(systemd::Driver::load(fs, &dir, v2)));
    }
    if dirs.len() == 1 && dirs[0].0.is_empty() {
        let dir = dirs[0].1.clone();
        return Ok(Box::new(v2::V2::new(dir, None, path.to_string())));
    }
    let mut unified = None;
    let mut v1dirs = Vec::new();
    for (key, dir) in dirs {
        if key.is_empty() {
            unified = Some(dir);
        } else {
            v1dirs.push(v1::Dir {
                name: mount_name(&key),
                key,
                path: dir,
            });
        }
    }
    Ok(Box::new(v1::V1::new(v1dirs, unified, path.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_round_trips_v1_and_v2() {
        let v2 = load(r#"{"":"/sys/fs/cgroup/c1"}"#, false).unwrap();
        assert_eq!(v2.mounts()[0].name, "");
        let v1 = load(
            r#"{"":"/sys/fs/cgroup/unified/c1","memory":"/sys/fs/cgroup/memory/c1","name=systemd":"/sys/fs/cgroup/systemd/c1"}"#,
            false,
        )
        .unwrap();
        let names: Vec<String> = v1.mounts().into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["memory", "systemd"]);
        assert!(load("garbage", false).is_err());
    }

    #[test]
    fn systemd_without_systemd_is_a_clear_error() {
        if path::systemd_running() || layout::get().is_err() {
            return;
        }
        let e = create(Some("system.slice:docker:abc"), "abc", true)
            .err()
            .unwrap();
        assert!(e.message().contains("systemd is not running"), "{e}");
        let e = create(Some("/not/systemd"), "abc", true).err().unwrap();
        assert!(e.message().contains("slice:prefix:name"), "{e}");
    }
}
