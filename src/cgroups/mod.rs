//! Cgroup management: one `Manager` interface, a v1 (also used on hybrid hosts)
//! and a v2 implementation behind it.
//!
//! INTERFACE CONTRACT (used by container/ and process/):
//! - `create(cgroups_path, id, systemd)` resolves the path as runc does and returns a manager;
//!   nothing is created on disk until `apply`.
//! - `load(path, systemd)` rebuilds the manager from the persisted `path()` for later commands.
//! - `apply(pid)` creates the cgroup(s) and moves `pid` in.
//! - `set(resources)` writes every limit; errors name the field and the file.
//! - `destroy()` removes the cgroup directories (retrying while they drain); idempotent.

use crate::error::Result;
use oci_spec::runtime::LinuxResources;
use std::path::PathBuf;

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
    /// The resolved cgroup path (relative to each hierarchy root), persisted in state.
    fn path(&self) -> &str;
    fn apply(&self, pid: i32) -> Result<()>;
    fn set(&self, resources: &LinuxResources) -> Result<()>;
    fn destroy(&self) -> Result<()>;
    fn freeze(&self, state: FreezerState) -> Result<()>;
    fn freezer_state(&self) -> Result<FreezerState>;
    /// Every PID in the container's cgroup (host PIDs).
    fn pids(&self) -> Result<Vec<i32>>;
    /// runc's `events --stats` "data" object.
    fn stats(&self) -> Result<serde_json::Value>;
    /// What to bind under /sys/fs/cgroup inside the container.
    fn mounts(&self) -> Vec<CgroupMount>;
}

/// Build a manager for a new container.
pub fn create(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<Box<dyn Manager>> {
    let _ = (cgroups_path, id, systemd);
    Ok(Box::new(Placeholder))
}

/// TEMPORARY until v1/v2 land: does nothing.
struct Placeholder;
impl Manager for Placeholder {
    fn path(&self) -> &str {
        ""
    }
    fn apply(&self, _pid: i32) -> Result<()> {
        Ok(())
    }
    fn set(&self, _r: &LinuxResources) -> Result<()> {
        Ok(())
    }
    fn destroy(&self) -> Result<()> {
        Ok(())
    }
    fn freeze(&self, _s: FreezerState) -> Result<()> {
        Ok(())
    }
    fn freezer_state(&self) -> Result<FreezerState> {
        Ok(FreezerState::Thawed)
    }
    fn pids(&self) -> Result<Vec<i32>> {
        Ok(vec![])
    }
    fn stats(&self) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }
    fn mounts(&self) -> Vec<CgroupMount> {
        vec![]
    }
}

/// Rebuild the manager of an existing container from its persisted path.
pub fn load(path: &str, systemd: bool) -> Result<Box<dyn Manager>> {
    let _ = (path, systemd);
    Err(crate::error::Error::new("cgroups: not implemented yet"))
}
