//! Where a container's cgroup goes: runc's rules for `linux.cgroupsPath` with the
//! cgroupfs driver (absolute, relative to our own cgroup, default `<id>`), and
//! systemd's `slice:prefix:name` naming.

use super::layout::{self, Layout, Mode};
use crate::bail;
use crate::error::Result;
use std::path::{Path, PathBuf};

/// The cgroup path below each hierarchy, before it meets a mount point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inner {
    /// Below each hierarchy's root.
    Absolute(String),
    /// Below the cgroup the runtime itself runs in (runc: joined with the caller's
    /// cgroup in each hierarchy, which is how nested runtimes keep to their subtree).
    Relative(String),
}

/// Lexical clean as runc does it: absolute paths keep their root, relative ones
/// cannot climb above it ("../../x" is "x"). Empty stays empty.
pub fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if p.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// The cgroupfs driver's path for a container.
pub fn fs_inner(cgroups_path: Option<&str>, id: &str) -> Inner {
    match cgroups_path.map(clean).filter(|p| !p.is_empty()) {
        Some(p) if p.starts_with('/') => Inner::Absolute(p),
        Some(p) => Inner::Relative(p),
        None => Inner::Relative(id.to_string()),
    }
}

/// A systemd driver's unit and the slice it goes in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemdName {
    pub slice: String,
    pub unit: String,
}

/// The systemd driver's names: `slice:prefix:name` is unit `<prefix>-<name>.scope`
/// in `slice` (default `system.slice:runc:<id>`, as runc).
pub fn systemd_name(cgroups_path: Option<&str>, id: &str) -> Result<SystemdName> {
    systemd_name_in(cgroups_path, id, "system.slice")
}

/// As `systemd_name`, with `default_slice` when the path names none (runc:
/// "user.slice" for a rootless container in the user's systemd instance).
pub fn systemd_name_in(
    cgroups_path: Option<&str>,
    id: &str,
    default_slice: &str,
) -> Result<SystemdName> {
    let (slice, prefix, name) = match cgroups_path.filter(|p| !p.is_empty()) {
        None => ("", "runc", id),
        Some(p) => {
            let parts: Vec<&str> = p.split(':').collect();
            if parts.len() != 3 {
                bail!("expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {p:?} instead");
            }
            (parts[0], parts[1], parts[2])
        }
    };
    if name.is_empty() || name.contains('/') || prefix.contains('/') {
        bail!("invalid systemd cgroupsPath {cgroups_path:?}: bad unit name");
    }
    let slice = if slice.is_empty() {
        default_slice
    } else {
        slice
    };
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(SystemdName {
        slice: slice.to_string(),
        unit,
    })
}

/// The systemd driver's path: `/<expanded slice>/<unit>`.
pub fn systemd_inner(cgroups_path: Option<&str>, id: &str) -> Result<Inner> {
    let n = systemd_name(cgroups_path, id)?;
    let base = expand_slice(&n.slice)?;
    Ok(Inner::Absolute(format!(
        "{}/{}",
        base.trim_end_matches('/'),
        n.unit
    )))
}

/// systemd slice nesting: "a-b-c.slice" lives at /a.slice/a-b.slice/a-b-c.slice.
pub fn expand_slice(slice: &str) -> Result<String> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        bail!("invalid systemd slice {slice:?}: must end in .slice");
    };
    if slice.contains('/') {
        bail!("invalid systemd slice {slice:?}: contains '/'");
    }
    if stem == "-" {
        return Ok("/".into());
    }
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        bail!("invalid systemd slice {slice:?}");
    }
    let mut out = String::new();
    let mut prefix = String::new();
    for comp in stem.split('-') {
        out.push('/');
        out.push_str(&prefix);
        out.push_str(comp);
        out.push_str(".slice");
        prefix.push_str(comp);
        prefix.push('-');
    }
    Ok(out)
}

/// systemd is running when /run/systemd/system exists (sd_booted(3)).
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// The container's directory in every hierarchy: (key, dir), key "" for cgroup2.
pub fn resolve(layout: &Layout, inner: &Inner) -> Result<Vec<(String, PathBuf)>> {
    let own = match inner {
        Inner::Relative(_) => Some(layout::own_cgroups()?),
        Inner::Absolute(_) => None,
    };
    resolve_from(layout, inner, own)
}

/// `resolve` given our own cgroups (/proc/self/cgroup; None for absolute paths).
fn resolve_from(
    layout: &Layout,
    inner: &Inner,
    own: Option<Vec<(String, String)>>,
) -> Result<Vec<(String, PathBuf)>> {
    let place = |key: &str, mount: &Path, root: &str| -> Result<PathBuf> {
        let rel = match inner {
            Inner::Absolute(p) => p.trim_start_matches('/').to_string(),
            Inner::Relative(p) => {
                let own = own.as_deref().unwrap_or_default();
                let Some(mine) = layout::own_path(own, key) else {
                    bail!("cgroup hierarchy {key:?} is not listed in /proc/self/cgroup");
                };
                // Inside a container the mount shows only our subtree: strip its root.
                let mine = mine.strip_prefix(root).unwrap_or(mine);
                let base = if key.is_empty() && layout.mode == Mode::Unified {
                    v2_base(mine)
                } else {
                    mine
                };
                clean(&format!("{}/{p}", base.trim_start_matches('/')))
                    .trim_start_matches('/')
                    .to_string()
            }
        };
        Ok(mount.join(rel))
    };
    let mut out = Vec::new();
    for h in &layout.v1 {
        out.push((h.key.clone(), place(&h.key, &h.mount, &h.root)?));
    }
    if let Some((mount, root)) = &layout.unified {
        if layout.mode != Mode::Legacy {
            out.push((String::new(), place("", mount, root)?));
        }
    }
    Ok(out)
}

/// Where a relative path starts on a unified host: the PARENT of our own cgroup,
/// as runc's v2 code does. Our own cgroup holds processes (us, and in a systemd
/// service the service's), and cgroup v2 allows processes only in leaves: a
/// child there could get no controllers, and turning controllers on would need
/// the caller's own subtree_control (or a threaded type) changed under it.
fn v2_base(own: &str) -> &str {
    match own.trim_end_matches('/').rsplit_once('/') {
        Some((parent, _)) => parent,
        None => "",
    }
}

/// The persisted form of a manager's directories: a JSON object key -> dir.
pub fn encode(dirs: &[(String, PathBuf)]) -> String {
    let m: serde_json::Map<String, serde_json::Value> = dirs
        .iter()
        .map(|(k, d)| (k.clone(), serde_json::Value::from(d.display().to_string())))
        .collect();
    serde_json::Value::Object(m).to_string()
}

pub fn decode(s: &str) -> Result<Vec<(String, PathBuf)>> {
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(s)
        .map_err(|e| crate::error::Error::new(format!("bad cgroup path {s:?} in state: {e}")))?;
    let mut out = Vec::new();
    for (k, d) in v {
        let Some(d) = d.as_str() else {
            bail!("bad cgroup path {s:?} in state");
        };
        out.push((k, PathBuf::from(d)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::layout::parse_mountinfo;

    #[test]
    fn cleaning_matches_runc() {
        assert_eq!(clean("/a/../b/./c/"), "/b/c");
        assert_eq!(clean("../../x/y"), "x/y");
        assert_eq!(clean("/../../"), "/");
        assert_eq!(clean(""), "");
    }

    #[test]
    fn fs_paths() {
        assert_eq!(fs_inner(None, "c1"), Inner::Relative("c1".into()));
        assert_eq!(fs_inner(Some(""), "c1"), Inner::Relative("c1".into()));
        assert_eq!(
            fs_inner(Some("/docker/x/../c1"), "c1"),
            Inner::Absolute("/docker/c1".into())
        );
        assert_eq!(
            fs_inner(Some("testdir/cgrouptest/container"), "c1"),
            Inner::Relative("testdir/cgrouptest/container".into())
        );
    }

    #[test]
    fn systemd_naming() {
        assert_eq!(
            systemd_inner(Some("system.slice:docker:abc"), "x").unwrap(),
            Inner::Absolute("/system.slice/docker-abc.scope".into())
        );
        assert_eq!(
            systemd_inner(Some("machine-foo.slice::abc"), "x").unwrap(),
            Inner::Absolute("/machine.slice/machine-foo.slice/abc.scope".into())
        );
        assert_eq!(
            systemd_inner(None, "x").unwrap(),
            Inner::Absolute("/system.slice/runc-x.scope".into())
        );
        assert_eq!(
            systemd_inner(Some(":p:my.slice"), "x").unwrap(),
            Inner::Absolute("/system.slice/my.slice".into())
        );
        assert_eq!(
            systemd_inner(Some("-.slice:p:n"), "x").unwrap(),
            Inner::Absolute("/p-n.scope".into())
        );
        let e = systemd_inner(Some("/abs/path"), "x").unwrap_err();
        assert!(e.message().contains("slice:prefix:name"), "{e}");
        assert!(expand_slice("a--b.slice").is_err());
        assert!(expand_slice("foo").is_err());
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
    }

    #[test]
    fn v2_relative_paths_go_beside_our_own_cgroup() {
        assert_eq!(v2_base("/system.slice/vmtest.service"), "/system.slice");
        assert_eq!(
            v2_base("/user.slice/u.slice/session-1.scope/"),
            "/user.slice/u.slice"
        );
        assert_eq!(v2_base("/a"), "");
        assert_eq!(v2_base("/"), "");
        assert_eq!(v2_base(""), "");
    }

    #[test]
    fn v2_default_path_is_beside_the_callers_cgroup() {
        let l = parse_mountinfo("1 0 0:2 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n").unwrap();
        let own = || {
            Some(layout::parse_proc_cgroup(
                "0::/system.slice/vmtest.service\n",
            ))
        };
        let d = resolve_from(&l, &fs_inner(None, "e-skiff-1"), own()).unwrap();
        assert_eq!(
            d,
            vec![(
                String::new(),
                PathBuf::from("/sys/fs/cgroup/system.slice/e-skiff-1")
            )]
        );
        let d = resolve_from(&l, &fs_inner(Some("a/b"), "x"), own()).unwrap();
        assert_eq!(d[0].1, PathBuf::from("/sys/fs/cgroup/system.slice/a/b"));
        // In the root cgroup (or a cgroup namespace), beside is the root.
        let root = Some(layout::parse_proc_cgroup("0::/\n"));
        let d = resolve_from(&l, &fs_inner(None, "c1"), root).unwrap();
        assert_eq!(d[0].1, PathBuf::from("/sys/fs/cgroup/c1"));
    }

    #[test]
    fn hybrid_relative_paths_stay_under_our_own_cgroup() {
        // runc's v1 code joins relative paths with our own cgroup in each hierarchy.
        let l = parse_mountinfo(
            "1 0 0:2 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             2 0 0:3 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        )
        .unwrap();
        let own = layout::parse_proc_cgroup("4:memory:/user.slice\n0::/user.slice/s.scope\n");
        let d = resolve_from(&l, &fs_inner(None, "c1"), Some(own)).unwrap();
        assert_eq!(d[0].1, PathBuf::from("/sys/fs/cgroup/memory/user.slice/c1"));
        assert_eq!(
            d[1].1,
            PathBuf::from("/sys/fs/cgroup/unified/user.slice/s.scope/c1")
        );
    }

    #[test]
    fn absolute_resolution_uses_mounts() {
        let l = parse_mountinfo(
            "1 0 0:2 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             2 0 0:3 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        )
        .unwrap();
        let d = resolve(&l, &Inner::Absolute("/a/b".into())).unwrap();
        assert_eq!(
            d,
            vec![
                (
                    "memory".to_string(),
                    PathBuf::from("/sys/fs/cgroup/memory/a/b")
                ),
                (String::new(), PathBuf::from("/sys/fs/cgroup/unified/a/b")),
            ]
        );
        let back = decode(&encode(&d)).unwrap();
        assert_eq!(back.len(), 2);
        assert!(back.contains(&d[0]) && back.contains(&d[1]));
    }
}
