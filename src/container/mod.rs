//! The container as a persisted object: its state, its status machine, and the
//! operations the CLI exposes.

pub mod checkpoint;
pub mod exec;
pub mod lifecycle;
mod orphan;
pub mod resources;
pub mod restore;
pub mod state;
pub mod store;
mod sub_cgroup;

use crate::cgroups::{self, FreezerState, Manager};
use crate::error::{Context, Result};
use state::{derive_status, Observed, State, Status};
use std::path::PathBuf;
use store::Store;

/// Options shared by every command (runc's global flags).
#[derive(Clone, Debug)]
pub struct Globals {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    pub rootless: bool,
}

impl Globals {
    pub fn store(&self) -> Store {
        Store::new(&self.root)
    }
}

/// runc (1.1 through 1.5) wraps every failure of starting the container's
/// process (cgroup placement, init's setup, the hooks it waits for, the
/// execve lookup) in these words; Docker and containerd show them, and users'
/// scripts match them.
pub(crate) fn start_failed(e: crate::error::Error) -> crate::error::Error {
    crate::error::Error::new(format!("unable to start container process: {e}"))
}

/// A loaded container: persisted state plus what we observed just now.
pub struct Container {
    pub state: State,
    pub status: Status,
    pub store: Store,
}

/// Field 22 (starttime) of /proc/<pid>/stat, and whether the process is a zombie.
pub fn proc_start_time(pid: i32) -> Option<(u64, bool)> {
    if pid <= 0 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parens: fields resume after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let zombie = f.first().is_some_and(|st| *st == "Z" || *st == "X");
    let start = f.get(19)?.parse().ok()?;
    Some((start, zombie))
}

impl Container {
    pub fn load(g: &Globals, id: &str) -> Result<Container> {
        store::validate_id(id)?;
        let store = g.store();
        let state: State = store.read_json(id, store::STATE_FILE)?;
        let status = observe(&store, &state);
        log::debug!(
            "container {id}: {status}, init process {}, state in {}",
            state.pid,
            store.dir(id).display()
        );
        Ok(Container {
            state,
            status,
            store,
        })
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }

    pub fn cgroup(&self) -> Option<Box<dyn Manager>> {
        if self.state.cgroup_path.is_empty() {
            return None;
        }
        // A stored path that no longer loads would otherwise leak the cgroup
        // silently on delete: say so.
        cgroups::load(&self.state.cgroup_path, self.state.systemd_cgroup)
            .map_err(|e| {
                log::warn!(
                    "container {}: cgroup {}: {e}",
                    self.id(),
                    self.state.cgroup_path
                )
            })
            .ok()
    }

    /// Read the state again and observe the process: called after taking the
    /// container's lock, so what a `create` still running when we loaded
    /// (its PID, `creating` cleared) counts, not what we read before waiting.
    pub fn refresh(&mut self) {
        let id = self.state.id.clone();
        if let Ok(s) = self.store.read_json::<State>(&id, store::STATE_FILE) {
            self.state = s;
        }
        self.status = observe(&self.store, &self.state);
    }

    pub fn oci_state_json(&self) -> Result<String> {
        serde_json::to_string_pretty(&self.state.to_oci(self.status)).ctx(|| "encode state")
    }
}

fn observe(store: &Store, s: &State) -> Status {
    let alive = match proc_start_time(s.pid) {
        Some((start, zombie)) => !zombie && start == s.init_start_time,
        None => false,
    };
    if alive && s.creating {
        return Status::Creating;
    }
    let frozen = alive
        && !s.cgroup_path.is_empty()
        && cgroups::load(&s.cgroup_path, s.systemd_cgroup)
            .and_then(|m| m.freezer_state())
            .is_ok_and(|f| f == FreezerState::Frozen);
    derive_status(Observed {
        init_alive: alive,
        fifo_exists: store.dir(&s.id).join(store::FIFO_FILE).exists(),
        frozen,
    })
}
