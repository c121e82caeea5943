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
    if !uids.is_empty() {
        crate::sys::procfs::write_pid(pid, "uid_map", map_text(uids).as_bytes())?;
    }
    if !gids.is_empty() {
        crate::sys::procfs::write_pid(pid, "gid_map", map_text(gids).as_bytes())?;
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
