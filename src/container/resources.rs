//! Operations on a container's cgroup: pause, resume, update, ps, events.

use super::state::Status;
use super::store;
use super::{Container, Globals};
use crate::bail;
use crate::cgroups::{FreezerState, Manager, Stats};
use crate::error::{Context, Result};
use oci_spec::runtime::{LinuxResources, Spec};
use serde_json::Value;
use std::io::Write;
use std::time::{Duration, Instant};

fn cgroup_of(c: &Container) -> Result<Box<dyn Manager>> {
    if c.state.cgroup_path.is_empty() {
        bail!(
            "container {} has no cgroup (a rootless container whose cgroups this user may not write): it cannot be paused, resumed, updated or measured",
            c.id()
        );
    }
    crate::cgroups::load(&c.state.cgroup_path, c.state.systemd_cgroup)
}

/// Load, lock and observe: the status cannot change under us while we act.
fn locked(g: &Globals, id: &str) -> Result<(Container, store::Lock)> {
    let mut c = Container::load(g, id)?;
    let lock = c.store.lock(id)?;
    c.refresh();
    Ok((c, lock))
}

pub fn pause(g: &Globals, id: &str) -> Result<()> {
    let (c, _lock) = locked(g, id)?;
    match c.status {
        Status::Running | Status::Created => {}
        Status::Paused => bail!("container {id} is already paused"),
        Status::Stopped => bail!("container {id} is not running"),
        Status::Creating => bail!("container {id} is still being created"),
    }
    let cg = cgroup_of(&c)?;
    log::debug!("pause: freezing cgroup {}", cg.path());
    cg.freeze(FreezerState::Frozen)
}

pub fn resume(g: &Globals, id: &str) -> Result<()> {
    let (c, _lock) = locked(g, id)?;
    if c.status != Status::Paused {
        bail!("container {id} is not paused (it is {})", c.status);
    }
    let cg = cgroup_of(&c)?;
    log::debug!("resume: thawing cgroup {}", cg.path());
    cg.freeze(FreezerState::Thawed)
}

/// Apply `update` on top of the container's current resources, as `runc update`
/// does: the merged set is written (so memory and swap are ordered against
/// each other) and persisted for the next update. Device rules never change.
pub fn update(g: &Globals, id: &str, update: &Value, rdt: &RdtUpdate) -> Result<()> {
    let (c, _lock) = locked(g, id)?;
    if matches!(c.status, Status::Stopped | Status::Creating) {
        bail!("container {id} is not running");
    }
    log::debug!("update: resources {update} for container {id}");
    let mut spec: Spec = c.store.read_json(id, store::CONFIG_FILE)?;
    let mut linux = spec.linux().clone().unwrap_or_default();
    // runc checks the RDT flags before it changes anything.
    let root = crate::intelrdt::detect();
    let new_rdt = crate::intelrdt::updated(
        root.as_deref().map_err(String::as_str),
        linux.intel_rdt().as_ref(),
        rdt.l3_cache_schema.as_deref(),
        rdt.mem_bw_schema.as_deref(),
    )?;
    let current = serde_json::to_value(linux.resources().clone().unwrap_or_default())
        .ctx(|| "encode current resources")?;
    let mut merged = merge_resources(current, update);
    forget_shares_for_idle(&mut merged, update);
    let mut res: LinuxResources =
        serde_json::from_value(merged).ctx(|| "linux.resources after update")?;
    let devices = res.devices().clone();
    res.set_devices(None);
    cgroup_of(&c)?.set(&res)?;
    res.set_devices(devices);
    linux.set_resources(Some(res));
    if let Some(r) = new_rdt {
        // Then the container's resctrl group, as runc's Container.Set.
        let (Ok(root), Some(a)) = (root.as_deref(), c.state.intel_rdt.as_ref()) else {
            bail!("updating a non-existent Intel RDT configuration is not supported");
        };
        crate::intelrdt::write_schemata(root, a, &r)?;
        linux.set_intel_rdt(Some(r));
    }
    spec.set_linux(Some(linux));
    c.store.write_json(id, store::CONFIG_FILE, &spec)
}

/// `update --l3-cache-schema` and `--mem-bw-schema`.
#[derive(Debug, Default)]
pub struct RdtUpdate {
    pub l3_cache_schema: Option<String>,
    pub mem_bw_schema: Option<String>,
}

/// `cpu.idle` without `cpu.shares` in an update drops the stored shares, as
/// runc >= 1.2's update does: the kernel refuses a weight (EINVAL) while the
/// group is idle, and going back to 0 resets the weight to the default, so
/// writing the old shares around an idle change can only fail.
fn forget_shares_for_idle(merged: &mut Value, update: &Value) {
    let upd = update.get("cpu");
    let idle = upd
        .and_then(|c| c.get("idle"))
        .is_some_and(|v| !v.is_null());
    let shares = upd
        .and_then(|c| c.get("shares"))
        .is_some_and(|v| !v.is_null());
    if idle && !shares {
        if let Some(cpu) = merged.get_mut("cpu").and_then(Value::as_object_mut) {
            cpu.remove("shares");
        }
    }
}

/// runc's update semantics on JSON: objects merge key by key, device lists
/// (weights, throttles) and hugepage limits are upserted by their key, the
/// `devices` rules are never touched, anything else is replaced.
pub fn merge_resources(mut cur: Value, upd: &Value) -> Value {
    let (Some(c), Some(u)) = (cur.as_object_mut(), upd.as_object()) else {
        return cur;
    };
    for (k, v) in u {
        if k == "devices" || v.is_null() {
            continue;
        }
        let slot = c.entry(k.clone()).or_insert(Value::Null);
        if k == "hugepageLimits" {
            upsert(slot, v, &["pageSize"]);
        } else if k == "blockIO" && slot.is_object() && v.is_object() {
            for (bk, bv) in v.as_object().into_iter().flatten() {
                let bslot = slot
                    .as_object_mut()
                    .map(|o| o.entry(bk.clone()).or_insert(Value::Null));
                if let Some(bslot) = bslot {
                    if bk == "weightDevice" {
                        // runc 1.4: only the weights given change.
                        upsert_fields(bslot, bv, &["major", "minor"]);
                    } else if bv.is_array() {
                        upsert(bslot, bv, &["major", "minor"]);
                    } else {
                        *bslot = bv.clone();
                    }
                }
            }
        } else if slot.is_object() && v.is_object() && k != "unified" {
            let merged = merge_resources(slot.take(), v);
            *slot = merged;
        } else {
            *slot = v.clone();
        }
    }
    cur
}

/// Replace the entry with the same `keys` (the last one, since a list with
/// duplicates is written in order and the last write wins, as runc 1.4's
/// update picks it), or append.
fn upsert(slot: &mut Value, new: &Value, keys: &[&str]) {
    upsert_with(slot, new, keys, |old, item| *old = item.clone());
}

/// As `upsert`, but an existing entry keeps the fields the new one lacks.
fn upsert_fields(slot: &mut Value, new: &Value, keys: &[&str]) {
    upsert_with(slot, new, keys, |old, item| {
        match (old.as_object_mut(), item.as_object()) {
            (Some(o), Some(i)) => {
                for (k, v) in i.iter().filter(|(_, v)| !v.is_null()) {
                    o.insert(k.clone(), v.clone());
                }
            }
            _ => *old = item.clone(),
        }
    });
}

fn upsert_with(slot: &mut Value, new: &Value, keys: &[&str], put: impl Fn(&mut Value, &Value)) {
    let Some(items) = new.as_array() else {
        *slot = new.clone();
        return;
    };
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    let Some(list) = slot.as_array_mut() else {
        return;
    };
    for item in items {
        let same = |x: &&mut Value| keys.iter().all(|k| x.get(k) == item.get(k));
        match list.iter_mut().rev().find(same) {
            Some(x) => put(x, item),
            None => list.push(item.clone()),
        }
    }
}

/// Host PIDs of every process in the container's cgroup.
pub fn pids(g: &Globals, id: &str) -> Result<Vec<i32>> {
    let c = Container::load(g, id)?;
    if c.state.cgroup_path.is_empty() && c.status != Status::Stopped {
        return pids_in_pid_namespace(c.id(), c.state.pid);
    }
    let cg = cgroup_of(&c)?;
    match cg.pids() {
        Ok(p) => Ok(p),
        // A stopped container whose cgroup is gone has no processes.
        Err(_) if c.status == Status::Stopped => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// A container without a cgroup (rootless): its processes are those in its
/// init's PID namespace, when that is not ours.
fn pids_in_pid_namespace(id: &str, init: i32) -> Result<Vec<i32>> {
    let ns_of = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let theirs = ns_of(&init.to_string()).ok_or_else(|| {
        crate::error::Error::new(format!("container {id}: read /proc/{init}/ns/pid"))
    })?;
    if Some(&theirs) == ns_of("self").as_ref() {
        bail!("container {id} has no cgroup and shares this PID namespace: its processes cannot be told apart");
    }
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .ctx(|| "read /proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| ns_of(&p.to_string()).as_ref() == Some(&theirs))
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// runc's event object, fields in its order: {"type", "id", "data"}.
#[derive(serde::Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Stats>,
}

fn stats_event<'a>(id: &'a str, cg: &dyn Manager) -> Result<Event<'a>> {
    Ok(Event {
        kind: "stats",
        id,
        data: Some(cg.stats()?),
    })
}

fn emit(out: &mut dyn Write, ev: &Event) -> Result<()> {
    let line = serde_json::to_string(ev).ctx(|| "encode event")?;
    writeln!(out, "{line}").ctx(|| "write event")?;
    out.flush().ctx(|| "write event")
}

/// `events`: one stats object (`interval` None), or stats every `interval` and
/// OOM events as they happen, until the container stops.
pub fn events(
    g: &Globals,
    id: &str,
    interval: Option<Duration>,
    out: &mut dyn Write,
) -> Result<()> {
    let mut c = Container::load(g, id)?;
    if c.status == Status::Stopped {
        bail!("container with id {id} is not running");
    }
    let cg = cgroup_of(&c)?;
    let Some(every) = interval else {
        return emit(out, &stats_event(id, cg.as_ref())?);
    };
    let mut oom = match cg.oom_watch() {
        Ok(w) => Some(w),
        Err(e) => {
            log::warn!("no OOM notifications: {e}");
            None
        }
    };
    loop {
        let next = Instant::now() + every;
        while let Some(left) = next.checked_duration_since(Instant::now()) {
            if left.is_zero() {
                break;
            }
            match oom.as_mut() {
                Some(w) => match w.wait(left)? {
                    Some(n) => {
                        for _ in 0..n {
                            let oom = Event {
                                kind: "oom",
                                id,
                                data: None,
                            };
                            emit(out, &oom)?;
                        }
                    }
                    None => return Ok(()),
                },
                None => std::thread::sleep(left),
            }
        }
        c.refresh();
        if c.status == Status::Stopped {
            return Ok(());
        }
        match stats_event(id, cg.as_ref()) {
            Ok(ev) => emit(out, &ev)?,
            Err(e) => log::error!("{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn update_merges_like_runc() {
        let cur = json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 100, "swap": 200},
            "cpu": {"quota": 50000, "period": 100000, "cpus": "0"},
            "blockIO": {"weight": 100,
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]},
            "unified": {"a.b": "1"}
        });
        let upd = json!({
            "devices": [],
            "memory": {"limit": 300, "swap": 400},
            "cpu": {"quota": 20000},
            "blockIO": {"throttleReadBpsDevice": [
                {"major": 8, "minor": 0, "rate": 5}, {"major": 8, "minor": 16, "rate": 6}]},
            "pids": {"limit": 10},
            "unified": {"c.d": "2"}
        });
        let m = merge_resources(cur, &upd);
        assert_eq!(m["devices"], json!([{"allow": false, "access": "rwm"}]));
        assert_eq!(m["memory"], json!({"limit": 300, "swap": 400}));
        assert_eq!(
            m["cpu"],
            json!({"quota": 20000, "period": 100000, "cpus": "0"})
        );
        assert_eq!(m["blockIO"]["weight"], 100);
        assert_eq!(
            m["blockIO"]["throttleReadBpsDevice"],
            json!([{"major": 8, "minor": 0, "rate": 5}, {"major": 8, "minor": 16, "rate": 6}])
        );
        assert_eq!(m["pids"], json!({"limit": 10}));
        assert_eq!(m["unified"], json!({"c.d": "2"}));
    }

    #[test]
    fn update_picks_the_last_duplicate_and_keeps_unnamed_weights() {
        let cur = json!({"blockIO": {
            "throttleReadIOPSDevice": [
                {"major": 8, "minor": 0, "rate": 200}, {"major": 8, "minor": 0, "rate": 300}],
            "weightDevice": [{"major": 8, "minor": 0, "weight": 300, "leafWeight": 400}]}});
        let upd = json!({"blockIO": {
            "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 400}],
            "weightDevice": [{"major": 8, "minor": 0, "leafWeight": 500},
                             {"major": 8, "minor": 16, "weight": 600}]}});
        let m = merge_resources(cur, &upd);
        assert_eq!(
            m["blockIO"]["throttleReadIOPSDevice"],
            json!([{"major": 8, "minor": 0, "rate": 200}, {"major": 8, "minor": 0, "rate": 400}])
        );
        assert_eq!(
            m["blockIO"]["weightDevice"],
            json!([{"major": 8, "minor": 0, "weight": 300, "leafWeight": 500},
                   {"major": 8, "minor": 16, "weight": 600}])
        );
    }

    #[test]
    fn idle_without_shares_forgets_the_shares() {
        let cur = json!({"cpu": {"shares": 512, "quota": 1000}});
        for (upd, shares) in [
            (json!({"cpu": {"idle": 1}}), None),
            (json!({"cpu": {"idle": 0, "shares": 256}}), Some(256)),
            (json!({"memory": {"limit": 1}}), Some(512)),
        ] {
            let mut m = merge_resources(cur.clone(), &upd);
            forget_shares_for_idle(&mut m, &upd);
            assert_eq!(
                m["cpu"].get("shares").and_then(Value::as_u64),
                shares,
                "{upd}"
            );
            assert_eq!(m["cpu"]["quota"], 1000);
        }
    }
}
