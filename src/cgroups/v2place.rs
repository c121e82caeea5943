//! Making a container's cgroup in the unified tree as runc's v2 code does, with
//! its rules kept strictly: cgroup v2 allows processes only in leaves (the root
//! excepted), so a cgroup holding processes never gets a new child, and the
//! caller's own cgroup never gets its `subtree_control` written; no cgroup's
//! type is ever changed (a "domain invalid" cgroup is refused instead of being
//! made threaded, which would also turn its parent "domain threaded").

use super::files;
use crate::bail;
use crate::error::Result;
use std::path::{Path, PathBuf};

/// Create `dir` below the cgroup2 mount `root`, enabling every available
/// controller on the way down. `own` is the caller's own cgroup directory.
/// Returns the directories created (outermost first); on error nothing this
/// call made is left.
pub fn create(root: &Path, dir: &Path, own: Option<&Path>) -> Result<Vec<PathBuf>> {
    let Ok(rel) = dir.strip_prefix(root) else {
        bail!(
            "cgroup {} is not below the cgroup2 mount {}",
            dir.display(),
            root.display()
        );
    };
    let mut made = Vec::new();
    let r = walk(root, rel, own, &mut made);
    if r.is_err() {
        for d in made.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
        made.clear();
    }
    r.map(|()| made)
}

fn walk(root: &Path, rel: &Path, own: Option<&Path>, made: &mut Vec<PathBuf>) -> Result<()> {
    let mut level = root.to_path_buf();
    for comp in rel.components() {
        let child = level.join(comp);
        let busy = level != root && has_processes(&level)?;
        if !child.is_dir() {
            if busy {
                bail!(
                    "cannot create cgroup {}: its parent {} has processes, and cgroup v2 allows processes only in leaf cgroups (choose a linux.cgroupsPath outside it)",
                    child.display(),
                    level.display()
                );
            }
            match std::fs::create_dir(&child) {
                Ok(()) => made.push(child.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => bail!("mkdir {}: {e}", child.display()),
            }
        }
        if Some(level.as_path()) == own {
            log::debug!(
                "{}: our own cgroup, its subtree_control is left alone",
                level.display()
            );
        } else if busy {
            log::debug!(
                "{}: has processes, its subtree_control is left alone",
                level.display()
            );
        } else {
            enable_all(&level)?;
        }
        level = child;
    }
    check_type(&level)
}

/// A cgroup with a process in it (its own cgroup.procs, not its children's).
fn has_processes(dir: &Path) -> Result<bool> {
    match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(s) => Ok(s.split_whitespace().next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => bail!("read {}/cgroup.procs: {e}", dir.display()),
    }
}

/// Turn on in `dir`'s subtree_control every controller `dir` has that is not on
/// yet. A controller the kernel refuses is only logged here: `set` names it if
/// a limit needs it (runc: "caught in the setXXX functions").
fn enable_all(dir: &Path) -> Result<()> {
    let avail = files::read(dir, "cgroup.controllers")?;
    let on = files::read(dir, "cgroup.subtree_control")?;
    let on: Vec<&str> = on.split_whitespace().collect();
    let missing: Vec<&str> = avail
        .split_whitespace()
        .filter(|c| !on.contains(c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if files::write(dir, "cgroup.subtree_control", &all.join(" ")).is_err() {
        // One at a time: one refused controller must not keep the others off.
        for c in &missing {
            if let Err(e) = files::write(dir, "cgroup.subtree_control", &format!("+{c}")) {
                log::debug!("enable {c}: {e}");
            }
        }
    }
    Ok(())
}

/// Refuse a cgroup whose type would have to change for a container to live
/// in it ("domain invalid": joining fails with EOPNOTSUPP; "threaded": domain
/// controllers like memory and io cannot work there).
fn check_type(dir: &Path) -> Result<()> {
    let t = match std::fs::read_to_string(dir.join("cgroup.type")) {
        Ok(t) => t,
        // The root has no cgroup.type; old kernels neither.
        Err(_) => return Ok(()),
    };
    match t.trim() {
        "domain" | "domain threaded" | "" => Ok(()),
        t => bail!(
            "cannot use cgroup {}: its cgroup.type is {t:?} (a threaded subtree or a parent with processes); skiff does not change cgroup types",
            dir.display()
        ),
    }
}

/// The controller `file` (an interface file like "memory.max") belongs to,
/// when that controller must be enabled for it to exist.
pub fn controller_of(file: &str) -> Option<&str> {
    let c = file.split('.').next()?;
    matches!(
        c,
        "cpu" | "cpuset" | "memory" | "io" | "pids" | "hugetlb" | "rdma" | "misc"
    )
    .then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tree(name: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("cgroups-v2place-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        cg(&root, "", "");
        root
    }

    /// A cgroup directory as the kernel makes it: interface files, no controllers on.
    fn cg(dir: &Path, procs: &str, typ: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        fs::write(dir.join("cgroup.procs"), procs).unwrap();
        if !typ.is_empty() {
            fs::write(dir.join("cgroup.type"), typ).unwrap();
        }
    }

    fn read(p: PathBuf) -> String {
        fs::read_to_string(p).unwrap()
    }

    #[test]
    fn beside_a_busy_service_enables_only_the_parent() {
        let root = tree("beside");
        let slice = root.join("system.slice");
        cg(&slice, "", "domain");
        let svc = slice.join("vmtest.service");
        cg(&svc, "640\n641\n", "domain");
        let dir = slice.join("c1");
        let made = create(&root, &dir, Some(&svc)).unwrap();
        assert_eq!(made, vec![dir.clone()]);
        assert_eq!(
            read(slice.join("cgroup.subtree_control")),
            "+cpu +io +memory +pids"
        );
        assert_eq!(read(svc.join("cgroup.subtree_control")), "");
        assert_eq!(read(svc.join("cgroup.type")), "domain");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn never_a_child_of_a_cgroup_with_processes() {
        let root = tree("under");
        let svc = root.join("svc.service");
        cg(&svc, "640\n", "domain");
        let e = create(&root, &svc.join("a/c1"), None).unwrap_err();
        assert!(e.message().contains("has processes"), "{e}");
        assert!(!svc.join("a").exists(), "a directory was left behind");
        // Neither its subtree_control nor its type was touched.
        assert_eq!(read(svc.join("cgroup.subtree_control")), "");
        assert_eq!(read(svc.join("cgroup.type")), "domain");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn our_own_empty_cgroup_keeps_its_subtree_control() {
        // An absolute path below our own cgroup: it may be made (the kernel
        // then refuses the controllers) but we never write our own cgroup's file.
        let root = tree("own");
        let own = root.join("me");
        cg(&own, "", "domain");
        create(&root, &own.join("c1"), Some(&own)).unwrap();
        assert_eq!(read(own.join("cgroup.subtree_control")), "");
        assert_eq!(
            read(root.join("cgroup.subtree_control")),
            "+cpu +io +memory +pids"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn invalid_types_are_refused_not_changed() {
        let root = tree("types");
        let dir = root.join("c1");
        cg(&dir, "", "domain invalid");
        let e = create(&root, &dir, None).unwrap_err();
        assert!(e.message().contains("domain invalid"), "{e}");
        assert_eq!(read(dir.join("cgroup.type")), "domain invalid");
        cg(&dir, "", "domain threaded");
        create(&root, &dir, None).unwrap();
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn controllers_of_files() {
        assert_eq!(controller_of("memory.max"), Some("memory"));
        assert_eq!(controller_of("cpu.max.burst"), Some("cpu"));
        assert_eq!(controller_of("cgroup.freeze"), None);
        assert_eq!(controller_of("io.bfq.weight"), Some("io"));
    }
}
