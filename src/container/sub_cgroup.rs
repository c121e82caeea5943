//! `exec --cgroup`: run the process in an existing sub-cgroup of the
//! container's. The forms, rules and words are runc's: `path` alone (every
//! hierarchy; only as the one flag) or `ctrl[,ctrl]:path` (those
//! controllers; runc 1.3+ splits at the first colon and refuses an empty or
//! repeated controller, where 1.1 split at every colon and took `:path` as
//! every hierarchy); `/` is the container's own cgroup; the sub-cgroup must
//! exist (runc never creates it) and must not climb out of the container's.

use crate::bail;
use crate::error::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The `--cgroup` flags as runc 1.3+ reads them: controller -> sub-path, ""
/// for "every hierarchy" (only ever alone).
fn parse(list: &[String]) -> Result<BTreeMap<String, String>> {
    let mut paths = BTreeMap::new();
    for c in list {
        match c.split_once(':') {
            Some((ctrls, sub)) => {
                for ctrl in ctrls.split(',') {
                    if ctrl.is_empty() {
                        bail!("invalid --cgroup argument: {c} (empty <controller> prefix)");
                    }
                    if paths.insert(ctrl.to_string(), sub.to_string()).is_some() {
                        bail!("invalid --cgroup argument(s): controller {ctrl} specified multiple times");
                    }
                }
            }
            None if list.len() != 1 => {
                bail!("invalid --cgroup argument: {c} (missing <controller>: prefix)")
            }
            None => {
                paths.insert(String::new(), c.clone());
            }
        }
    }
    Ok(paths)
}

/// `base` joined with `sub`, lexically; refused when `sub` climbs out of it
/// (runc 1.5's words). `/` and "" are `base` itself.
fn join(base: &str, sub: &str) -> Result<String> {
    let mut parts: Vec<&str> = Vec::new();
    for p in sub.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    bail!("bad sub cgroup path: {sub}");
                }
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Ok(base.to_string());
    }
    Ok(format!(
        "{}/{}",
        base.trim_end_matches('/'),
        parts.join("/")
    ))
}

/// The container's persisted cgroup path (a JSON object of hierarchy key,
/// "" for the unified one, to directory) with the `--cgroup` flags applied;
/// None without flags. Every directory that changed must exist.
pub fn apply(base: &str, list: &[String]) -> Result<Option<String>> {
    if list.is_empty() {
        return Ok(None);
    }
    let wanted = parse(list)?;
    let mut dirs: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(base).ctx(|| format!("container cgroup path {base:?}"))?;
    for (ctrl, sub) in &wanted {
        let mut matched = false;
        for (key, dir) in dirs.iter_mut() {
            // "cpu,cpuacct" is one hierarchy; any of its names selects it.
            let hit = ctrl.is_empty() || key.split(',').any(|k| k == ctrl);
            if let (true, Some(d)) = (hit, dir.as_str()) {
                let to = join(d, sub)?;
                if to != d && !Path::new(&to).is_dir() {
                    // runc: "error adding pid N to cgroups: failed to write N:
                    // openat2 DIR/cgroup.procs: no such file or directory".
                    bail!("error adding pid to cgroups: {to}/cgroup.procs: no such file or directory (--cgroup: the sub-cgroup must exist)");
                }
                *dir = serde_json::Value::from(to);
                matched = true;
            }
        }
        if !matched {
            bail!("unknown controller {ctrl} in SubCgroupPaths");
        }
    }
    Ok(Some(serde_json::Value::Object(dirs).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("skiff-subcg-{tag}-{}", std::process::id()));
        for sub in ["u/c/x/y", "cpu/c/s", "cpu/c/x/y", "m/c/s", "m/c/x/y"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        d
    }

    fn base(d: &Path) -> String {
        let d = d.display();
        format!(r#"{{"":"{d}/u/c","cpu,cpuacct":"{d}/cpu/c","memory":"{d}/m/c"}}"#)
    }

    fn get(json: &str, key: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v[key].as_str().unwrap().to_string()
    }

    #[test]
    fn sub_cgroups_extend_the_chosen_controllers() {
        let d = tree("extend");
        let b = base(&d);
        let all = apply(&b, &["x/y".into()]).unwrap().unwrap();
        assert_eq!(get(&all, "memory"), format!("{}/m/c/x/y", d.display()));
        assert_eq!(get(&all, ""), format!("{}/u/c/x/y", d.display()));
        let one = apply(&b, &["cpuacct,memory:s".into()]).unwrap().unwrap();
        assert_eq!(get(&one, "cpu,cpuacct"), format!("{}/cpu/c/s", d.display()));
        assert_eq!(get(&one, "memory"), format!("{}/m/c/s", d.display()));
        assert_eq!(get(&one, ""), format!("{}/u/c", d.display()));
        // "/" is the container's own cgroup (runc: path.Join(base, "/")).
        let root = apply(&b, &["/".into()]).unwrap().unwrap();
        assert_eq!(get(&root, "memory"), format!("{}/m/c", d.display()));
        assert!(apply(&b, &[]).unwrap().is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn runcs_refusals_and_words() {
        let d = tree("refuse");
        let b = base(&d);
        let err = |list: &[&str]| {
            let l: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            apply(&b, &l).unwrap_err().to_string()
        };
        assert_eq!(
            err(&["rdma:s"]),
            "unknown controller rdma in SubCgroupPaths"
        );
        assert_eq!(err(&["../x"]), "bad sub cgroup path: ../x");
        assert_eq!(err(&["memory:s/../../x"]), "bad sub cgroup path: s/../../x");
        assert_eq!(
            err(&["s", "memory:s"]),
            "invalid --cgroup argument: s (missing <controller>: prefix)"
        );
        assert_eq!(
            err(&[":s"]),
            "invalid --cgroup argument: :s (empty <controller> prefix)"
        );
        assert_eq!(
            err(&["memory:s", "memory,cpu:x"]),
            "invalid --cgroup argument(s): controller memory specified multiple times"
        );
        // runc never creates the sub-cgroup.
        let e = err(&["nosuch"]);
        assert!(e.starts_with("error adding pid to cgroups: "), "{e}");
        assert!(e.contains("no such file or directory"), "{e}");
        assert!(!d.join("m/c/nosuch").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
