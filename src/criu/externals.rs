//! The mounts CRIU cannot save and must be told about: whatever came from the
//! host (bind mounts, the cgroup binds, device binds, /dev/null over masked
//! files). On dump each gets a name in the images (its destination, or
//! "/dev/null" for masks); on restore each name is mapped to the host path
//! to bind there again.

use crate::cgroups::CgroupMount;

/// One spec mount, its destination already resolved inside the rootfs.
#[derive(Clone, Debug)]
pub struct SpecMount {
    pub dest: String,
    pub source: String,
    pub typ: String,
    pub options: Vec<String>,
}

impl SpecMount {
    /// runc's rule: a bind mount is type "bind" or has a bind/rbind option.
    pub fn is_bind(&self) -> bool {
        self.typ == "bind" || self.options.iter().any(|o| o == "bind" || o == "rbind")
    }
}

/// What the container's mounts look like, for both directions.
pub struct Layout<'a> {
    pub mounts: &'a [SpecMount],
    /// The binds skiff makes under the cgroup mount (see rootfs/mounts.rs).
    pub cgroups: &'a [CgroupMount],
    /// With a cgroup namespace on a unified host the cgroup mount is a real
    /// cgroup2 mount CRIU saves itself.
    pub cgroupns: bool,
    /// Device paths (defaults and linux.devices): bound from the host when mknod is refused.
    pub devices: &'a [String],
}

/// (destination, host source) of each bind skiff makes for a `cgroup` mount.
fn cgroup_binds(l: &Layout, dest: &str) -> Vec<(String, String)> {
    let unified = l.cgroups.len() == 1 && l.cgroups[0].name.is_empty();
    if unified && l.cgroupns {
        return Vec::new();
    }
    l.cgroups
        .iter()
        .map(|c| {
            let d = match c.name.as_str() {
                "" => dest.to_string(),
                n => format!("{}/{n}", dest.trim_end_matches('/')),
            };
            (d, c.host.display().to_string())
        })
        .collect()
}

/// (destination, host source) of everything external, masks aside.
fn binds(l: &Layout) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in l.mounts {
        if m.typ == "cgroup" {
            out.extend(cgroup_binds(l, &m.dest));
        } else if m.is_bind() {
            out.push((m.dest.clone(), m.source.clone()));
        }
    }
    for d in l.devices {
        out.push((d.clone(), d.clone()));
    }
    out
}

/// Dump: key = the mount point in the container, value = its name in the
/// images. `masked_files`: masked paths that are files (a dir mask is a tmpfs
/// CRIU saves).
pub fn for_dump(l: &Layout, masked_files: &[String]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        binds(l).into_iter().map(|(d, _)| (d.clone(), d)).collect();
    for p in masked_files {
        out.push((p.clone(), "/dev/null".into()));
    }
    out
}

/// Restore: key = the name in the images, value = the host path to bind.
pub fn for_restore(l: &Layout, any_masked: bool) -> Vec<(String, String)> {
    let mut out = binds(l);
    if any_masked {
        out.push(("/dev/null".into(), "/dev/null".into()));
    }
    out
}

/// Whether `path` lies on a tmpfs mounted by the spec (CRIU restores the
/// tmpfs contents, mount points included).
pub fn on_tmpfs(path: &str, mounts: &[SpecMount]) -> bool {
    mounts.iter().any(|m| {
        m.typ == "tmpfs" && path.starts_with(&format!("{}/", m.dest.trim_end_matches('/')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn m(dest: &str, source: &str, typ: &str, opts: &[&str]) -> SpecMount {
        SpecMount {
            dest: dest.into(),
            source: source.into(),
            typ: typ.into(),
            options: opts.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn mounts() -> Vec<SpecMount> {
        vec![
            m("/proc", "proc", "proc", &[]),
            m("/dev", "tmpfs", "tmpfs", &[]),
            m("/data", "/srv/data", "none", &["rbind", "ro"]),
            m("/etc/hosts", "/tmp/hosts", "bind", &[]),
            m("/sys/fs/cgroup", "cgroup", "cgroup", &[]),
        ]
    }

    #[test]
    fn dump_and_restore_v1() {
        let ms = mounts();
        let cg = vec![
            CgroupMount {
                name: "memory".into(),
                host: PathBuf::from("/sys/fs/cgroup/memory/c1"),
            },
            CgroupMount {
                name: "cpu,cpuacct".into(),
                host: PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c1"),
            },
        ];
        let devs = vec!["/dev/null".to_string()];
        let l = Layout {
            mounts: &ms,
            cgroups: &cg,
            cgroupns: true,
            devices: &devs,
        };
        let d = for_dump(&l, &["/proc/kcore".into()]);
        assert_eq!(
            d,
            [
                ("/data".into(), "/data".into()),
                ("/etc/hosts".into(), "/etc/hosts".into()),
                (
                    "/sys/fs/cgroup/memory".into(),
                    "/sys/fs/cgroup/memory".into()
                ),
                (
                    "/sys/fs/cgroup/cpu,cpuacct".into(),
                    "/sys/fs/cgroup/cpu,cpuacct".into()
                ),
                ("/dev/null".into(), "/dev/null".into()),
                ("/proc/kcore".into(), "/dev/null".into()),
            ]
        );
        let r = for_restore(&l, true);
        assert_eq!(r[0], ("/data".into(), "/srv/data".into()));
        assert_eq!(
            r[2],
            (
                "/sys/fs/cgroup/memory".into(),
                "/sys/fs/cgroup/memory/c1".into()
            )
        );
        assert_eq!(
            r.last().unwrap(),
            &("/dev/null".to_string(), "/dev/null".to_string())
        );
    }

    #[test]
    fn unified_cgroup_is_external_only_without_cgroupns() {
        let ms = mounts();
        let cg = vec![CgroupMount {
            name: String::new(),
            host: PathBuf::from("/sys/fs/cgroup/c1"),
        }];
        let l = Layout {
            mounts: &ms,
            cgroups: &cg,
            cgroupns: false,
            devices: &[],
        };
        assert!(
            for_restore(&l, false).contains(&("/sys/fs/cgroup".into(), "/sys/fs/cgroup/c1".into()))
        );
        let l = Layout {
            cgroupns: true,
            ..l
        };
        assert!(!for_restore(&l, false)
            .iter()
            .any(|(k, _)| k == "/sys/fs/cgroup"));
    }

    #[test]
    fn tmpfs_children() {
        let ms = mounts();
        assert!(on_tmpfs("/dev/shm", &ms));
        assert!(!on_tmpfs("/dev", &ms));
        assert!(!on_tmpfs("/devices", &ms));
    }
}
