//! The container's status machine and the state we persist between commands.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub const OCI_VERSION: &str = "1.3.0";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What we observed about the init process and the container's files.
#[derive(Clone, Copy, Debug, Default)]
pub struct Observed {
    /// init exists, is not a zombie, and its start time is the one recorded.
    pub init_alive: bool,
    /// the exec fifo still exists: `start` has not run yet.
    pub fifo_exists: bool,
    /// the cgroup freezer says frozen.
    pub frozen: bool,
}

/// compat.md's status rules: paused if frozen; stopped if init is gone (or its
/// PID was reused); created while the fifo exists; else running.
pub fn derive_status(o: Observed) -> Status {
    if !o.init_alive {
        Status::Stopped
    } else if o.frozen {
        Status::Paused
    } else if o.fifo_exists {
        Status::Created
    } else {
        Status::Running
    }
}

/// Persisted in `<root>/<id>/state.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// Host PID of the container's init (0 before it exists).
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat when init was recorded, to detect PID reuse.
    pub init_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The cgroup path the manager resolved (empty when none).
    #[serde(default)]
    pub cgroup_path: String,
    #[serde(default)]
    pub systemd_cgroup: bool,
    /// Set while `create` has not finished, so a crash mid-create reads as creating/stopped.
    #[serde(default)]
    pub creating: bool,
    /// The resctrl groups of `linux.intelRdt`, for exec and delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<crate::intelrdt::Applied>,
}

/// The runtime-spec state plus runc's extra fields, as `state` and `list --format json` print it.
#[derive(Serialize, Deserialize, Debug)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub annotations: BTreeMap<String, String>,
}

impl State {
    pub fn to_oci(&self, status: Status) -> OciState {
        OciState {
            oci_version: OCI_VERSION.to_string(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.display().to_string(),
            rootfs: self.rootfs.display().to_string(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self.annotations.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(init_alive: bool, fifo_exists: bool, frozen: bool) -> Observed {
        Observed {
            init_alive,
            fifo_exists,
            frozen,
        }
    }

    #[test]
    fn status_rules() {
        assert_eq!(derive_status(obs(false, true, true)), Status::Stopped);
        assert_eq!(derive_status(obs(true, true, true)), Status::Paused);
        assert_eq!(derive_status(obs(true, true, false)), Status::Created);
        assert_eq!(derive_status(obs(true, false, false)), Status::Running);
    }

    #[test]
    fn stopped_state_reports_pid_zero() {
        let s = State {
            id: "a".into(),
            pid: 42,
            init_start_time: 1,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "t".into(),
            owner: String::new(),
            annotations: BTreeMap::new(),
            cgroup_path: String::new(),
            systemd_cgroup: false,
            creating: false,
            intel_rdt: None,
        };
        assert_eq!(s.to_oci(Status::Stopped).pid, 0);
        assert_eq!(s.to_oci(Status::Running).pid, 42);
        let j = serde_json::to_value(s.to_oci(Status::Running)).unwrap();
        assert_eq!(j["status"], "running");
        assert_eq!(j["ociVersion"], OCI_VERSION);
        assert!(j.get("annotations").is_none());
    }
}
