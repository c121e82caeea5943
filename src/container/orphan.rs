//! `delete --force` of a container whose state.json cannot be read (garbage,
//! empty, truncated, `null`, a directory): its processes and cgroup may still
//! be there, and removing the state would leave them running with nothing
//! able to address them. The frozen config.json (written before any process
//! starts) still says where the cgroup is; what is in it is found and killed
//! by `delete`'s rules, or, when that cannot be told apart from another
//! container's, the delete is refused with what to do, and the state stays.

use super::lifecycle::{has_own_pid_ns, kill_all_in, release_cgroup};
use super::store;
use super::{Container, Globals};
use crate::bail;
use crate::cgroups::{self, Manager};
use crate::error::{Error, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

pub fn delete_unreadable(g: &Globals, id: &str, why: &Error) -> Result<()> {
    let st = g.store();
    let _lock = st.lock(id)?;
    let dir = st.dir(id);
    let config = dir.join(store::CONFIG_FILE);
    if std::fs::symlink_metadata(&config).is_err() {
        // create writes config.json before it starts any process: none ran.
        log::warn!("{why}; no process was started: removing {}", dir.display());
        return st.remove(id);
    }
    let spec: Spec = st.read_json(id, store::CONFIG_FILE).map_err(|e| {
        Error::new(format!(
            "container {id}: its state is unreadable ({why}) and so is its config ({e}): \
             cannot tell which processes and cgroup are its. Kill them (its cgroup is \
             named after linux.cgroupsPath, or {id} by default) and remove {}",
            dir.display()
        ))
    })?;
    let path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let cg = cgroups::create(
        path.as_deref().and_then(|p| p.to_str()),
        id,
        g.systemd_cgroup,
    )?;
    let own_ns = has_own_pid_ns(&spec);
    if own_ns {
        kill_own_namespace(g, id, cg.as_ref())?;
    } else {
        kill_all_in(cg.as_ref(), Signal::SIGKILL);
    }
    release_cgroup(cg.as_ref(), own_ns)?;
    log::warn!(
        "{why}; killed what was left in cgroup {} and removed {}",
        cg.path(),
        dir.display()
    );
    st.remove(id)
}

/// With a PID namespace of its own, the container's processes are those in
/// its cgroup in one PID namespace that is neither ours nor the one of another
/// container we know (a cgroupsPath may be shared): kill that namespace.
fn kill_own_namespace(g: &Globals, id: &str, cg: &dyn Manager) -> Result<()> {
    let by_ns = group_by_pid_ns(cg);
    let others = known_namespaces(g, id);
    let ours = pid_ns_of("self");
    let mut left: Vec<(&u64, &Vec<i32>)> = by_ns
        .iter()
        .filter(|(ns, _)| Some(**ns) != ours && !others.contains(ns))
        .collect();
    let Some((_, pids)) = left.pop() else {
        return Ok(());
    };
    if !left.is_empty() {
        bail!(
            "container {id}: its state is unreadable and its cgroup {} holds processes of \
             several PID namespaces no known container owns: cannot tell which are its. \
             Kill its init (one of {:?}), then run delete --force again",
            cg.path(),
            by_ns.values().filter_map(|p| p.first()).collect::<Vec<_>>()
        );
    }
    for p in pids {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
    let _ = cg.freeze(cgroups::FreezerState::Thawed);
    let gone = || {
        group_by_pid_ns(cg)
            .keys()
            .all(|ns| Some(*ns) == ours || others.contains(ns))
    };
    for _ in 0..1000 {
        if gone() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("container {id}: processes {pids:?} did not exit after SIGKILL")
}

/// The processes of the cgroup by the inode of their PID namespace.
fn group_by_pid_ns(cg: &dyn Manager) -> BTreeMap<u64, Vec<i32>> {
    let mut m: BTreeMap<u64, Vec<i32>> = BTreeMap::new();
    for p in cg.pids().unwrap_or_default() {
        if let Some(ns) = pid_ns_of(&p.to_string()) {
            m.entry(ns).or_default().push(p);
        }
    }
    m
}

fn pid_ns_of(pid: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|m| m.ino())
}

/// PID namespaces of the running inits of the other containers in this root.
fn known_namespaces(g: &Globals, id: &str) -> Vec<u64> {
    g.store()
        .list()
        .unwrap_or_default()
        .iter()
        .filter(|other| other.as_str() != id)
        .filter_map(|other| Container::load(g, other).ok())
        .filter(|c| c.state.pid > 0)
        .filter_map(|c| pid_ns_of(&c.state.pid.to_string()))
        .collect()
}
