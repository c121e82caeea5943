//! Spec namespaces to clone flags, joining namespaces by path, and uid/gid maps.

use crate::bail;
use crate::error::{Context, Result};
use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespace, LinuxNamespaceType};
use std::fs::File;
use std::path::PathBuf;

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name used under /proc/<pid>/ns/.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// What init does with the configured namespaces.
#[derive(Debug)]
pub struct Plan {
    /// Namespaces to join, user namespace first (so we hold capabilities in the others).
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
    /// A new user namespace is wanted (unshared on its own, before the rest).
    pub new_user: bool,
    /// Every other new namespace.
    pub unshare: CloneFlags,
}

/// Validate and order the namespaces of config.json (duplicates are an error, as in runc).
pub fn plan(namespaces: &[LinuxNamespace]) -> Result<Plan> {
    let mut p = Plan {
        join: Vec::new(),
        new_user: false,
        unshare: CloneFlags::empty(),
    };
    let mut seen = Vec::new();
    for ns in namespaces {
        let t = ns.typ();
        if seen.contains(&t) {
            bail!("malformed spec: duplicated namespace {}", proc_name(t));
        }
        seen.push(t);
        match ns.path() {
            Some(path) if !path.as_os_str().is_empty() => p.join.push((t, path.clone())),
            _ if t == LinuxNamespaceType::User => p.new_user = true,
            _ => p.unshare |= flag(t),
        }
    }
    p.join
        .sort_by_key(|(t, _)| if *t == LinuxNamespaceType::User { 0 } else { 1 });
    Ok(p)
}

pub fn has(namespaces: &[LinuxNamespace], t: LinuxNamespaceType) -> bool {
    namespaces.iter().any(|n| n.typ() == t)
}

/// setns(2) into each namespace given by path. Every path is opened first:
/// once we are in the container's mount namespace, /proc/<pid>/ns/* paths
/// (how `exec` names them) would resolve in the container's /proc instead.
pub fn join(list: &[(LinuxNamespaceType, PathBuf)]) -> Result<()> {
    let mut files = Vec::with_capacity(list.len());
    for (t, path) in list {
        let f = File::open(path)
            .ctx(|| format!("open {} namespace {}", proc_name(*t), path.display()))?;
        files.push(f);
    }
    for ((t, path), f) in list.iter().zip(&files) {
        setns(f, flag(*t))
            .ctx(|| format!("setns {} namespace {}", proc_name(*t), path.display()))?;
    }
    Ok(())
}

/// The text of /proc/<pid>/{uid,gid}_map for a list of mappings.
pub fn map_text(maps: &[LinuxIdMapping]) -> String {
    let mut s = String::new();
    for m in maps {
        s.push_str(&format!(
            "{} {} {}\n",
            m.container_id(),
            m.host_id(),
            m.size()
        ));
    }
    s
}

/// Written by the parent once init has unshared its user namespace.
pub fn write_id_maps(pid: i32, uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    if pid <= 0 {
        crate::bail!("invalid pid {pid} for its uid/gid maps");
    }
    let (u, g) = (map_text(uids), map_text(gids));
    let mut writes = Vec::new();
    if !uids.is_empty() {
        writes.push((
            format!("{pid}/uid_map"),
            u.as_bytes(),
            "write uid_map".to_string(),
        ));
    }
    if !gids.is_empty() {
        writes.push((
            format!("{pid}/gid_map"),
            g.as_bytes(),
            "write gid_map".to_string(),
        ));
    }
    crate::sys::procfs::write_all(writes)
}

/// The text of /proc/<pid>/timens_offsets for `linux.timeOffsets`, if any.
pub fn time_offsets_text(linux: &oci_spec::runtime::Linux) -> Result<Option<String>> {
    let Some(offs) = linux.time_offsets() else {
        return Ok(None);
    };
    let mut s = String::new();
    let mut clocks: Vec<_> = offs.iter().collect();
    clocks.sort_by(|a, b| a.0.cmp(b.0));
    for (clock, off) in clocks {
        if clock != "monotonic" && clock != "boottime" {
            crate::bail!("linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)");
        }
        s.push_str(&format!(
            "{} {} {}\n",
            clock,
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    Ok(Some(s))
}

/// Written by the parent once init has unshared its time namespace and before
/// anything enters it. The parent, not init: with a new user namespace init is
/// by then root only there and non-dumpable, and the file belongs to the
/// host's root (runc and youki write it from outside too).
pub fn write_time_offsets(pid: i32, linux: &oci_spec::runtime::Linux) -> Result<()> {
    if pid <= 0 {
        crate::bail!("invalid pid {pid} for its time offsets");
    }
    if let Some(t) = time_offsets_text(linux)? {
        crate::sys::procfs::write(&format!("{pid}/timens_offsets"), t.as_bytes())
            .ctx(|| "set time namespace offsets")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespaceBuilder};

    fn ns(t: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let mut b = LinuxNamespaceBuilder::default().typ(t);
        if let Some(p) = path {
            b = b.path(p);
        }
        b.build().unwrap()
    }

    #[test]
    fn plan_orders_user_first_and_splits_new_from_joined() {
        let p = plan(&[
            ns(LinuxNamespaceType::Network, Some("/run/netns/x")),
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::User, Some("/proc/1/ns/user")),
            ns(LinuxNamespaceType::Mount, None),
        ])
        .unwrap();
        assert_eq!(p.join[0].0, LinuxNamespaceType::User);
        assert_eq!(p.join[1].0, LinuxNamespaceType::Network);
        assert!(!p.new_user);
        assert_eq!(
            p.unshare,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS
        );
    }

    #[test]
    fn duplicate_namespace_is_an_error() {
        let e = plan(&[
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Pid, None),
        ]);
        assert!(e
            .unwrap_err()
            .message()
            .contains("duplicated namespace pid"));
    }

    #[test]
    fn map_lines() {
        let m = LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(1000u32)
            .size(65536u32)
            .build()
            .unwrap();
        assert_eq!(map_text(&[m]), "0 1000 65536\n");
    }
}
