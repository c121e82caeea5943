//! Idmapped bind mounts (runc 1.2+): `mounts[].uidMappings/gidMappings`
//! and the `idmap`/`ridmap` options. A file the source filesystem records as
//! owned by id N shows in the container as the id N maps to through the
//! mount's mappings (N as a "containerID", seen as the matching "hostID").
//!
//! The kernel sets MOUNT_ATTR_IDMAP only on a detached mount, and only for a
//! caller privileged over the filesystem's user namespace (the host's): init
//! is no longer that once it is in the container's user namespace, and may no
//! longer even reach the source then. So stage 1 of init, still the host's
//! root, makes each idmapped tree before it joins or creates any namespace
//! (runc does the same from its parent, in a thread), and stage 2 attaches it
//! onto the destination it resolved inside the rootfs.
//!
//! With a container user namespace, the tree is cloned inside a mount
//! namespace owned by a new user namespace (a holder process's): the kernel
//! locks the flags of every mount copied into such a namespace, so the
//! container can no more clear a source's ro, nosuid, nodev or noexec on an
//! idmapped mount than on any other (runc clones inside the container's own
//! mount namespace, with the same effect).

use super::mounts;
use super::options::{self, Parsed};
use crate::bail;
use crate::error::{Context, Result};
use crate::namespaces;
use crate::sys::{newmount, procfs, userns::Holder};
use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Where the user namespace of a mount's idmapping comes from.
#[derive(Debug, PartialEq, Eq)]
enum Mapping {
    /// A new user namespace with these uid and gid mappings.
    Maps(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>),
    /// The container's user namespace, joined by this path.
    Joined(PathBuf),
}

/// What one idmapped mount asks for.
#[derive(Debug)]
struct Request {
    index: usize,
    /// `ridmap`: every mount of the tree idmapped, not only its root.
    recursive: bool,
    mapping: Mapping,
}

fn named(i: usize, m: &Mount) -> String {
    format!("mounts[{i}] ({})", m.destination().display())
}

/// The request of mount `i`, or None when it is not idmapped; runc 1.2's
/// rules (libcontainer/configs/validate checkIDMapMounts, specconv): mappings
/// of its own or the `idmap`/`ridmap` option make a mount idmapped, only a
/// bind may be, and it needs both uid and gid mappings: its own, else the
/// container's user namespace (its mappings, or the namespace joined).
fn request(spec: &Spec, i: usize, m: &Mount) -> Result<Option<Request>> {
    let p = options::parse(m.options().as_deref().unwrap_or_default());
    let own = m.uid_mappings().is_some() || m.gid_mappings().is_some();
    let field = match p.idmap {
        Some(true) => "option ridmap",
        Some(false) => "option idmap",
        None if own => "uidMappings/gidMappings",
        None => return Ok(None),
    };
    let shown = named(i, m);
    if !mounts::is_bind(m, &p) {
        bail!("{shown}: {field}: id-mapped mounts are only supported for bind-mounts");
    }
    let both = "id-mapped mounts must have both uid and gid mappings specified";
    let mapping = if own {
        let (u, g) = (m.uid_mappings(), m.gid_mappings());
        Mapping::Maps(u.clone().unwrap_or_default(), g.clone().unwrap_or_default())
    } else {
        container_mapping(spec).ctx(|| format!("{shown}: {field}: {both}"))?
    };
    if let Mapping::Maps(u, g) = &mapping {
        if u.is_empty() || g.is_empty() {
            bail!("{shown}: {field}: {both}");
        }
    }
    Ok(Some(Request {
        index: i,
        recursive: p.idmap == Some(true),
        mapping,
    }))
}

/// `idmap` without mappings of its own: the container's user namespace.
fn container_mapping(spec: &Spec) -> Result<Mapping> {
    let linux = spec.linux().clone().unwrap_or_default();
    let nss = linux.namespaces().clone().unwrap_or_default();
    let Some(ns) = nss.iter().find(|n| n.typ() == LinuxNamespaceType::User) else {
        bail!("the container has no user namespace to take them from");
    };
    match ns.path() {
        Some(p) if !p.as_os_str().is_empty() => Ok(Mapping::Joined(p.clone())),
        _ => Ok(Mapping::Maps(
            linux.uid_mappings().clone().unwrap_or_default(),
            linux.gid_mappings().clone().unwrap_or_default(),
        )),
    }
}

fn requests(spec: &Spec) -> Result<Vec<Request>> {
    let mut out = Vec::new();
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        out.extend(request(spec, i, m)?);
    }
    Ok(out)
}

/// Config validation: every idmapped mount is one that can be made.
pub fn check(spec: &Spec) -> Result<()> {
    requests(spec).map(drop)
}

/// Stage 1 of init, as the host's root, before any namespace: one detached,
/// idmapped tree per idmapped mount (None for the others), with the mount's
/// flags already applied. `container_userns`: the container has a user
/// namespace (new or joined), so the clones must carry locked flags.
pub fn prepare(
    spec: &Spec,
    bundle: &Path,
    rootfs: &Path,
    container_userns: bool,
) -> Result<Vec<Option<OwnedFd>>> {
    let reqs = requests(spec)?;
    if reqs.is_empty() {
        return Ok(Vec::new());
    }
    let ms = spec.mounts().clone().unwrap_or_default();
    for r in &reqs {
        refuse_source_under_earlier_mount(&ms, r.index, bundle, rootfs)?;
    }
    let mut holders: Vec<(&Mapping, Holder, OwnedFd)> = Vec::new();
    let mut userns = Vec::with_capacity(reqs.len());
    for r in &reqs {
        let shown = named(r.index, &ms[r.index]);
        let fd = match &r.mapping {
            Mapping::Joined(path) => std::fs::File::open(path)
                .map(OwnedFd::from)
                .ctx(|| format!("{shown}: open user namespace {}", path.display()))?,
            Mapping::Maps(u, g) => match holders.iter().find(|(m, _, _)| *m == &r.mapping) {
                Some((_, _, fd)) => fd.try_clone().ctx(|| format!("{shown}: dup userns fd"))?,
                None => {
                    let (h, fd) = mapped_holder(u, g).ctx(|| shown.clone())?;
                    let dup = fd.try_clone().ctx(|| format!("{shown}: dup userns fd"))?;
                    holders.push((&r.mapping, h, fd));
                    dup
                }
            },
        };
        userns.push(fd);
    }
    let trees = clone_all(&reqs, &ms, bundle, container_userns)?;
    let mut out: Vec<Option<OwnedFd>> = (0..ms.len()).map(|_| None).collect();
    for ((r, tree), ns) in reqs.iter().zip(trees).zip(&userns) {
        let src = mounts::source_path(bundle, &ms[r.index]);
        newmount::set_idmap(tree.as_fd(), r.recursive, ns.as_fd()).map_err(|e| {
            let hint = if e.raw_os_error() == Some(libc::EINVAL) {
                " (maybe the filesystem used doesn't support idmap mounts on this kernel?)"
            } else {
                ""
            };
            crate::error::Error::new(format!(
                "{}: failed to set MOUNT_ATTR_IDMAP on {}: {e}{hint}",
                named(r.index, &ms[r.index]),
                src.display()
            ))
        })?;
        out[r.index] = Some(tree);
    }
    Ok(out)
}

/// Sources are cloned before any mount of the container exists: a source
/// inside the rootfs under the destination of an earlier mount would be the
/// directory that mount covers, not (as in runc, which clones it in the
/// container's mount namespace when its turn comes) what the mount put
/// there. Refused rather than silently different.
fn refuse_source_under_earlier_mount(
    ms: &[Mount],
    i: usize,
    bundle: &Path,
    rootfs: &Path,
) -> Result<()> {
    let src = mounts::source_path(bundle, &ms[i]);
    for earlier in &ms[..i] {
        let d = earlier.destination();
        let d = rootfs.join(d.strip_prefix("/").unwrap_or(d));
        if src.starts_with(&d) {
            bail!(
                "{}: source {} is inside the earlier mount at {}: an idmapped mount's source must exist before the container's mounts",
                named(i, &ms[i]),
                src.display(),
                earlier.destination().display()
            );
        }
    }
    Ok(())
}

/// A holder whose user namespace has the mappings `u`/`g`, and its fd.
fn mapped_holder(u: &[LinuxIdMapping], g: &[LinuxIdMapping]) -> Result<(Holder, OwnedFd)> {
    let h = Holder::spawn()?;
    namespaces::write_id_maps(h.pid(), u, g).ctx(|| "idmap user namespace")?;
    let fd = procfs::open_ns(Some(h.pid()), "user")?;
    Ok((h, fd))
}

/// The detached clones with their flags: made inside a holder's mount
/// namespace when the container has a user namespace (see the module doc),
/// else where we are. Our own mount namespace and cwd are restored after.
fn clone_all(
    reqs: &[Request],
    ms: &[Mount],
    bundle: &Path,
    container_userns: bool,
) -> Result<Vec<OwnedFd>> {
    let each = || -> Result<Vec<OwnedFd>> {
        let mut v = Vec::with_capacity(reqs.len());
        for r in reqs {
            v.push(clone_one(&ms[r.index], r.index, bundle)?);
        }
        Ok(v)
    };
    if !container_userns {
        return each();
    }
    let locked = Holder::spawn().ctx(|| "idmapped mounts: mount namespace for the clones")?;
    let there = procfs::open_ns(Some(locked.pid()), "mnt")?;
    let here = procfs::open_ns(None, "mnt")?;
    let cwd = nix::fcntl::open(
        ".",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "open the current directory")?;
    setns(&there, CloneFlags::CLONE_NEWNS)
        .ctx(|| "idmapped mounts: setns into the clones' mount namespace")?;
    let made = each();
    // Back before anything else happens, whether the clones were made or not.
    setns(&here, CloneFlags::CLONE_NEWNS)
        .ctx(|| "idmapped mounts: setns back into our mount namespace")?;
    nix::unistd::fchdir(&cwd).ctx(|| "idmapped mounts: back to the current directory")?;
    made
}

/// One detached clone of mount `m`'s source, recursive for `rbind` (runc:
/// the open_tree follows MS_REC, the idmap follows `ridmap`), with the
/// flags a bind gets.
fn clone_one(m: &Mount, i: usize, bundle: &Path) -> Result<OwnedFd> {
    let src = mounts::source_path(bundle, m);
    let shown = format!(
        "{}: mount {} onto {}",
        named(i, m),
        src.display(),
        m.destination().display()
    );
    let p: Parsed = mounts::bind_options(m);
    mounts::refuse_bind_data(&p, &shown)?;
    mounts::detached_bind(&src, &p, &shown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> Spec {
        let mut base = json!({"ociVersion": "1.2.0", "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["true"], "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}]}});
        for (k, x) in v.as_object().unwrap() {
            base[k] = x.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn err(s: &Spec) -> String {
        check(s).unwrap_err().message().to_string()
    }

    const MAP: &str = r#"[{"containerID": 0, "hostID": 1000, "size": 10}]"#;

    #[test]
    fn only_binds_with_both_mappings() {
        let map: serde_json::Value = serde_json::from_str(MAP).unwrap();
        let s = spec(json!({"mounts": [{"destination": "/t", "type": "tmpfs",
            "source": "tmpfs", "options": ["idmap"]}]}));
        assert!(err(&s).contains(
            "mounts[0] (/t): option idmap: id-mapped mounts are only supported for bind-mounts"
        ));
        let s = spec(json!({"mounts": [{"destination": "/t", "source": "/x",
            "options": ["bind"], "uidMappings": map}]}));
        assert!(err(&s).contains("uidMappings/gidMappings: id-mapped mounts must have both"));
        // `idmap` without mappings nor a container user namespace.
        let s = spec(json!({"mounts": [{"destination": "/t", "source": "/x",
            "options": ["rbind", "ridmap"]}]}));
        assert!(err(&s).contains("option ridmap: id-mapped mounts must have both"));
        // Mappings of its own: fine without a user namespace (runc 1.2).
        let s = spec(json!({"mounts": [{"destination": "/t", "source": "/x",
            "options": ["bind"], "uidMappings": map, "gidMappings": map}]}));
        let r = requests(&s).unwrap();
        assert_eq!(r.len(), 1);
        assert!(!r[0].recursive);
    }

    #[test]
    fn a_source_under_an_earlier_mount_is_refused() {
        let s = spec(json!({"mounts": [
            {"destination": "/data", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/t", "source": "/b/rootfs/data/x", "options": ["bind", "idmap"]},
            {"destination": "/u", "source": "rootfs/other", "options": ["bind", "idmap"]}]}));
        let ms = s.mounts().clone().unwrap();
        let (bundle, rootfs) = (Path::new("/b"), Path::new("/b/rootfs"));
        let e = refuse_source_under_earlier_mount(&ms, 1, bundle, rootfs).unwrap_err();
        assert!(e.message().contains(
            "mounts[1] (/t): source /b/rootfs/data/x is inside the earlier mount at /data"
        ));
        assert!(refuse_source_under_earlier_mount(&ms, 2, bundle, rootfs).is_ok());
    }

    #[test]
    fn idmap_takes_the_containers_user_namespace() {
        let map: serde_json::Value = serde_json::from_str(MAP).unwrap();
        let s = spec(json!({"mounts": [{"destination": "/t", "source": "/x",
            "options": ["rbind", "idmap"]}, {"destination": "/n", "source": "/y",
            "options": ["bind"]}],
            "linux": {"namespaces": [{"type": "user"}], "uidMappings": map,
            "gidMappings": map}}));
        let r = requests(&s).unwrap();
        assert_eq!(r.len(), 1);
        assert!(matches!(&r[0].mapping, Mapping::Maps(u, g) if u.len() == 1 && g.len() == 1));
        let s = spec(json!({"mounts": [{"destination": "/t", "source": "/x",
            "options": ["bind", "ridmap"]}],
            "linux": {"namespaces": [{"type": "user", "path": "/proc/1/ns/user"}]}}));
        let r = requests(&s).unwrap();
        assert!(r[0].recursive);
        assert_eq!(
            r[0].mapping,
            Mapping::Joined(PathBuf::from("/proc/1/ns/user"))
        );
    }
}
