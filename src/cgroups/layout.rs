//! The host's cgroup layout, detected once per command from one read of
//! /proc/self/mountinfo: pure v1, hybrid (v1 controllers plus an empty cgroup2
//! mount, as on this host) or unified v2.

use crate::error::{Context, Result};
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Legacy,
    Hybrid,
    Unified,
}

/// One mounted v1 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Its controllers as /proc/self/cgroup lists them ("cpu,cpuacct", "name=systemd").
    pub key: String,
    pub mount: PathBuf,
    /// The cgroup mounted there (not "/" inside a container that got its parent's view).
    pub root: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub mode: Mode,
    pub v1: Vec<Hierarchy>,
    /// The cgroup2 mount point and its root (Hybrid: /sys/fs/cgroup/unified).
    pub unified: Option<(PathBuf, String)>,
}

/// v1 controllers we know; superblock options carry other words (rw, noprefix, ...).
const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// The host layout, read once per process.
pub fn get() -> Result<&'static Layout> {
    static L: OnceLock<std::result::Result<Layout, String>> = OnceLock::new();
    L.get_or_init(|| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("read /proc/self/mountinfo: {e}"))
            .and_then(|s| parse_mountinfo(&s))
    })
    .as_ref()
    .map_err(|e| crate::error::Error::new(e.clone()))
}

/// Build the layout from mountinfo text. The first mount of each hierarchy wins
/// (later ones are binds of it, e.g. into a container rootfs).
pub fn parse_mountinfo(text: &str) -> std::result::Result<Layout, String> {
    let mut v1: Vec<Hierarchy> = Vec::new();
    let mut unified = None;
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = pre.split(' ').collect();
        let g: Vec<&str> = post.split(' ').collect();
        if f.len() < 5 || g.len() < 3 {
            continue;
        }
        let (root, mount) = (unescape(f[3]), PathBuf::from(unescape(f[4])));
        match g[0] {
            "cgroup2" if unified.is_none() => unified = Some((mount, root)),
            "cgroup" => {
                let mut ctrls: Vec<&str> = g[2]
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                    .collect();
                if ctrls.is_empty() {
                    continue;
                }
                // /proc/self/cgroup lists named hierarchies last, controllers in kernel order.
                ctrls.sort_by_key(|c| {
                    V1_CONTROLLERS
                        .iter()
                        .position(|k| k == c)
                        .unwrap_or(usize::MAX)
                });
                let key = ctrls.join(",");
                if !v1.iter().any(|h| h.key == key) {
                    v1.push(Hierarchy { key, mount, root });
                }
            }
            _ => {}
        }
    }
    let has_controllers = v1.iter().any(|h| !h.key.starts_with("name="));
    let mode = match (has_controllers, unified.is_some()) {
        (false, true) => Mode::Unified,
        (true, true) => Mode::Hybrid,
        (true, false) => Mode::Legacy,
        (false, false) => return Err("no cgroup filesystem is mounted".into()),
    };
    if mode == Mode::Unified {
        v1.clear();
    }
    Ok(Layout { mode, v1, unified })
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's cgroup in each hierarchy: (controllers key, path). The v2
/// entry has key "". Read only when a relative cgroupsPath needs it.
pub fn own_cgroups() -> Result<Vec<(String, String)>> {
    let s = std::fs::read_to_string("/proc/self/cgroup").ctx(|| "read /proc/self/cgroup")?;
    Ok(parse_proc_cgroup(&s))
}

pub fn parse_proc_cgroup(s: &str) -> Vec<(String, String)> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let key = it.next()?;
            let path = it.next()?;
            Some((key.to_string(), path.to_string()))
        })
        .collect()
}

/// Find the entry of hierarchy `key` in /proc/self/cgroup output, comparing
/// controller sets (the kernel's order may differ from ours).
pub fn own_path<'a>(own: &'a [(String, String)], key: &str) -> Option<&'a str> {
    let want = sorted(key);
    own.iter()
        .find(|(k, _)| sorted(k) == want)
        .map(|(_, p)| p.as_str())
}

fn sorted(k: &str) -> Vec<&str> {
    let mut v: Vec<&str> = k.split(',').filter(|s| !s.is_empty()).collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
90 80 0:32 /x /tmp/r/sys/fs/cgroup/memory ro - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_is_detected() {
        let l = parse_mountinfo(HYBRID).unwrap();
        assert_eq!(l.mode, Mode::Hybrid);
        let keys: Vec<&str> = l.v1.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, ["cpu", "cpuacct", "memory", "name=systemd"]);
        assert_eq!(l.v1[2].mount, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(
            l.unified,
            Some((PathBuf::from("/sys/fs/cgroup/unified"), "/".into()))
        );
    }

    #[test]
    fn unified_and_legacy() {
        let u = parse_mountinfo("1 0 0:2 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
            .unwrap();
        assert_eq!(u.mode, Mode::Unified);
        assert!(u.v1.is_empty());
        let l = parse_mountinfo(
            "1 0 0:2 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu\n",
        )
        .unwrap();
        assert_eq!(l.mode, Mode::Legacy);
        assert_eq!(l.v1[0].key, "cpu,cpuacct");
        assert!(parse_mountinfo("").is_err());
    }

    #[test]
    fn proc_cgroup_lookup_ignores_order() {
        let own = parse_proc_cgroup("4:memory:/a/b\n2:cpuacct,cpu:/\n0::/u\n");
        assert_eq!(own_path(&own, "memory"), Some("/a/b"));
        assert_eq!(own_path(&own, "cpu,cpuacct"), Some("/"));
        assert_eq!(own_path(&own, ""), Some("/u"));
        assert_eq!(own_path(&own, "pids"), None);
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
    }
}
