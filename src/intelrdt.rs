//! `linux.intelRdt`: resctrl groups (Intel RDT / AMD QoS), as runc 1.4-1.5.
//! The container's CLOS group is `closID` (shared, maybe made by someone
//! else) or the container ID; `schemata` gets l3CacheSchema, memBwSchema and
//! the schemata lines; `enableMonitoring` adds a mon_groups/<id> group. The
//! resctrl root is a parameter of everything here, so the logic is tested
//! against a fake tree; only `detect` looks at the real system.

use crate::bail;
use crate::error::{Context, Result};
use oci_spec::runtime::LinuxIntelRdt;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const DEFAULT_ROOT: &str = "/sys/fs/resctrl";

/// Where resctrl is mounted, or why it cannot be used (the words say which
/// of "no support" and "not mounted" it is).
pub fn detect() -> std::result::Result<PathBuf, String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if let Some(root) = root_from_mountinfo(&info) {
        return Ok(root);
    }
    if Path::new(DEFAULT_ROOT).exists() {
        Err(format!(
            "the resctrl filesystem is not mounted ({DEFAULT_ROOT} exists: mount -t resctrl resctrl {DEFAULT_ROOT})"
        ))
    } else {
        Err(format!(
            "this kernel or CPU has no resctrl support ({DEFAULT_ROOT} does not exist)"
        ))
    }
}

/// The mount point of the first resctrl filesystem in a mountinfo text.
pub fn root_from_mountinfo(info: &str) -> Option<PathBuf> {
    info.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split(' ').next()? != "resctrl" {
            return None;
        }
        left.split(' ').nth(4).map(|p| PathBuf::from(unescape(p)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b.get(i + 1..i + 4).and_then(|d| {
            let t = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(t, 8).ok()
        });
        match (b[i], oct) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether monitoring is asked for (runtime-spec 1.3's enableMonitoring; the
/// older enableCMT/enableMBM asked for the same group's counters).
#[allow(deprecated)]
fn monitoring(r: &LinuxIntelRdt) -> bool {
    r.enable_monitoring().unwrap_or(false)
        || r.enable_cmt().unwrap_or(false)
        || r.enable_mbm().unwrap_or(false)
}

/// runc 1.4's validator, given where resctrl is (or why it is not).
pub fn validate(r: &LinuxIntelRdt, root: std::result::Result<&Path, &str>) -> Result<()> {
    let root = match root {
        Ok(p) => p,
        Err(why) => bail!(
            "linux.intelRdt: intelRdt is specified in config, but Intel RDT is not enabled: {why}"
        ),
    };
    if let Some(c) = r.clos_id().as_deref() {
        if c == "." || c == ".." || (c.len() > 1 && c.contains('/')) || c.contains('\0') {
            bail!("linux.intelRdt: invalid intelRdt.ClosID {c:?}");
        }
    }
    let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    if set(r.l3_cache_schema()) && !root.join("info/L3").exists() {
        bail!("linux.intelRdt: intelRdt.l3CacheSchema is specified in config, but Intel RDT/CAT is not enabled");
    }
    if set(r.mem_bw_schema()) && !root.join("info/MB").exists() {
        bail!("linux.intelRdt: intelRdt.memBwSchema is specified in config, but Intel RDT/MBA is not enabled");
    }
    Ok(())
}

/// The lines written to the group's `schemata`: l3CacheSchema, memBwSchema,
/// then each of `schemata`, one per line (runc's order); empty when none.
pub fn schemata_text(r: &LinuxIntelRdt) -> String {
    let mut lines: Vec<&str> = Vec::new();
    lines.extend(r.l3_cache_schema().as_deref());
    lines.extend(r.mem_bw_schema().as_deref());
    lines.extend(r.schemata().iter().flatten().map(String::as_str));
    lines
        .into_iter()
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

/// What a container got, kept in its state for delete.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The CLOS group directory.
    pub path: PathBuf,
    /// mon_groups/<id> when monitoring was asked for.
    #[serde(default)]
    pub mon_path: Option<PathBuf>,
    /// Remove the CLOS group on delete: skiff made it and it is the
    /// container's own (no closID), as runc 1.5.
    #[serde(default)]
    pub remove_group: bool,
}

/// Join (or make) the container's group under `root` with `pid`, its
/// schemata written first. On failure nothing made here is left.
pub fn apply(root: &Path, r: &LinuxIntelRdt, id: &str, pid: i32) -> Result<Applied> {
    let clos = r.clos_id().as_deref().filter(|c| !c.is_empty());
    let path = match clos.unwrap_or(id) {
        "/" => root.to_path_buf(),
        c => root.join(c),
    };
    let text = schemata_text(r);
    // runtime-spec: a closID with no schemata names a group that must exist.
    if clos.is_some() && text.is_empty() && !path.is_dir() {
        bail!("linux.intelRdt: clos dir {} not accessible (must be pre-created when schemata, l3CacheSchema and memBwSchema are empty)", path.display());
    }
    let created = match std::fs::create_dir(&path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(last_cmd(root, e)).ctx(|| format!("mkdir {}", path.display())),
    };
    let mut a = Applied {
        path,
        mon_path: None,
        remove_group: created && clos.is_none(),
    };
    let r2 = join(root, r, id, pid, &text, &mut a);
    if r2.is_err() {
        let _ = destroy(&a);
    }
    r2.map(|()| a)
}

fn join(
    root: &Path,
    r: &LinuxIntelRdt,
    id: &str,
    pid: i32,
    text: &str,
    a: &mut Applied,
) -> Result<()> {
    if !text.is_empty() {
        let f = a.path.join("schemata");
        std::fs::write(&f, text)
            .map_err(|e| last_cmd(root, e))
            .ctx(|| format!("linux.intelRdt: write {:?} to {}", text, f.display()))?;
    }
    write_task(root, &a.path, pid)?;
    if monitoring(r) {
        let m = a.path.join("mon_groups").join(id);
        match std::fs::create_dir(&m) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(last_cmd(root, e))
                    .ctx(|| format!("linux.intelRdt: mkdir {}", m.display()))
            }
        }
        a.mon_path = Some(m.clone());
        write_task(root, &m, pid)?;
    }
    Ok(())
}

fn write_task(root: &Path, dir: &Path, pid: i32) -> Result<()> {
    let f = dir.join("tasks");
    std::fs::write(&f, pid.to_string())
        .map_err(|e| last_cmd(root, e))
        .ctx(|| format!("linux.intelRdt: unable to add pid {pid} to {}", f.display()))
}

/// resctrl explains its EINVALs in info/last_cmd_status: add it.
fn last_cmd(root: &Path, e: std::io::Error) -> String {
    match std::fs::read_to_string(root.join("info/last_cmd_status")) {
        Ok(s) if !s.trim().is_empty() => format!("{e}, last_cmd_status: {}", s.trim()),
        _ => e.to_string(),
    }
}

/// `update --l3-cache-schema/--mem-bw-schema` as runc (update.go, 1.1.5
/// through 1.5): an empty value is no value; a value resctrl cannot take
/// (no CAT, no MBA, or no resctrl at all) or a container without intelRdt
/// is refused in runc's words, before anything changes. Returns the
/// container's intelRdt with the new values, None when neither flag is set.
pub fn updated(
    root: std::result::Result<&Path, &str>,
    current: Option<&LinuxIntelRdt>,
    l3: Option<&str>,
    mb: Option<&str>,
) -> Result<Option<LinuxIntelRdt>> {
    let l3 = l3.filter(|s| !s.is_empty());
    let mb = mb.filter(|s| !s.is_empty());
    let has = |sub: &str| root.is_ok_and(|r| r.join("info").join(sub).is_dir());
    if l3.is_some() && !has("L3") {
        bail!("Intel RDT/CAT: l3 cache schema is not enabled");
    }
    if mb.is_some() && !has("MB") {
        bail!("Intel RDT/MBA: memory bandwidth schema is not enabled");
    }
    if l3.is_none() && mb.is_none() {
        return Ok(None);
    }
    let Some(cur) = current else {
        bail!("updating a non-existent Intel RDT configuration is not supported");
    };
    let mut r = cur.clone();
    if let Some(v) = l3 {
        r.set_l3_cache_schema(Some(v.to_string()));
    }
    if let Some(v) = mb {
        r.set_mem_bw_schema(Some(v.to_string()));
    }
    Ok(Some(r))
}

/// Write `r`'s whole schemata to the container's group again (runc's
/// intelrdt Manager.Set, which `update` calls), resctrl's last_cmd_status
/// added to a refusal.
pub fn write_schemata(root: &Path, a: &Applied, r: &LinuxIntelRdt) -> Result<()> {
    let text = schemata_text(r);
    if text.is_empty() {
        return Ok(());
    }
    let f = a.path.join("schemata");
    std::fs::write(&f, &text)
        .map_err(|e| last_cmd(root, e))
        .ctx(|| format!("intelrdt: unable to write {text:?} to {}", f.display()))
}

/// Remove what the container owns: its own group if skiff made it, else its
/// monitoring group (a shared closID group stays for its other users).
pub fn destroy(a: &Applied) -> Result<()> {
    let dir = if a.remove_group {
        Some(&a.path)
    } else {
        a.mon_path.as_ref()
    };
    match dir.map(std::fs::remove_dir) {
        Some(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => Err(e).ctx(|| {
            format!(
                "intelRdt: remove {}",
                dir.map_or(Path::new(""), |d| d).display()
            )
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A fake resctrl root: info/L3, info/MB, info/last_cmd_status, and the
    /// files the kernel would put in the root group.
    struct Fake(PathBuf);

    impl Fake {
        fn new(tag: &str) -> Fake {
            let p = std::env::temp_dir().join(format!("skiff-rdt-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            for d in ["info/L3", "info/MB", "info/L3_MON"] {
                fs::create_dir_all(p.join(d)).unwrap();
            }
            fs::write(p.join("info/last_cmd_status"), "ok\n").unwrap();
            fs::write(p.join("schemata"), "L3:0=fff\nMB:0=100\n").unwrap();
            fs::write(p.join("tasks"), "").unwrap();
            Fake(p)
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn rdt(v: serde_json::Value) -> LinuxIntelRdt {
        serde_json::from_value(v).unwrap()
    }

    /// What the kernel does on rmdir of a group: its files go with it.
    fn kernel_files_gone(dir: &Path) {
        for f in ["schemata", "tasks"] {
            let _ = fs::remove_file(dir.join(f));
        }
    }

    #[test]
    fn update_refusals_in_runcs_words() {
        let f = Fake::new("upd-refuse");
        let r = rdt(serde_json::json!({"l3CacheSchema": "L3:0=f"}));
        let e = |root, cur, l3, mb| updated(root, cur, l3, mb).unwrap_err().to_string();
        let absent: std::result::Result<&Path, &str> = Err("no resctrl");
        assert_eq!(
            e(absent, Some(&r), Some("L3:0=3"), None),
            "Intel RDT/CAT: l3 cache schema is not enabled"
        );
        assert_eq!(
            e(absent, Some(&r), None, Some("MB:0=50")),
            "Intel RDT/MBA: memory bandwidth schema is not enabled"
        );
        assert_eq!(
            e(Ok(&f.0), None, Some("L3:0=3"), None),
            "updating a non-existent Intel RDT configuration is not supported"
        );
        fs::remove_dir(f.0.join("info/MB")).unwrap();
        assert_eq!(
            e(Ok(&f.0), Some(&r), None, Some("MB:0=50")),
            "Intel RDT/MBA: memory bandwidth schema is not enabled"
        );
        // Empty values are no values, as runc's flag defaults.
        assert!(updated(absent, None, Some(""), Some("")).unwrap().is_none());
    }

    #[test]
    fn update_rewrites_the_whole_schemata_with_the_new_values() {
        let f = Fake::new("upd-write");
        let r = rdt(
            serde_json::json!({"l3CacheSchema": "L3:0=f", "memBwSchema": "MB:0=70", "schemata": ["L2:0=1"]}),
        );
        let a = apply(&f.0, &r, "ctr", 4242).unwrap();
        assert_eq!(
            fs::read_to_string(a.path.join("schemata")).unwrap(),
            "L3:0=f\nMB:0=70\nL2:0=1\n"
        );
        let n = updated(Ok(&f.0), Some(&r), None, Some("MB:0=20"))
            .unwrap()
            .unwrap();
        assert_eq!(n.l3_cache_schema().as_deref(), Some("L3:0=f"));
        assert_eq!(n.mem_bw_schema().as_deref(), Some("MB:0=20"));
        write_schemata(&f.0, &a, &n).unwrap();
        assert_eq!(
            fs::read_to_string(a.path.join("schemata")).unwrap(),
            "L3:0=f\nMB:0=20\nL2:0=1\n"
        );
        let n = updated(Ok(&f.0), Some(&n), Some("L3:0=3"), Some(""))
            .unwrap()
            .unwrap();
        write_schemata(&f.0, &a, &n).unwrap();
        assert_eq!(
            fs::read_to_string(a.path.join("schemata")).unwrap(),
            "L3:0=3\nMB:0=20\nL2:0=1\n"
        );
        kernel_files_gone(&a.path);
        destroy(&a).unwrap();
    }

    #[test]
    fn finds_resctrl_in_mountinfo() {
        let info = "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n\
                    40 22 0:35 / /mnt/rdt\\040x rw,relatime - resctrl resctrl rw,mba_MBps\n";
        assert_eq!(root_from_mountinfo(info), Some(PathBuf::from("/mnt/rdt x")));
        assert_eq!(
            root_from_mountinfo("22 1 0:21 / /sys rw - sysfs sysfs rw\n"),
            None
        );
        assert_eq!(root_from_mountinfo("garbage\n - \n\n"), None);
    }

    #[test]
    fn validation_as_runc_1_4() {
        let f = Fake::new("val");
        let e = validate(&rdt(serde_json::json!({})), Err("no support")).unwrap_err();
        assert!(
            e.message().starts_with(
                "linux.intelRdt: intelRdt is specified in config, but Intel RDT is not enabled"
            ),
            "{e}"
        );
        for bad in [".", "..", "a/b", "/a"] {
            let e = validate(&rdt(serde_json::json!({"closID": bad})), Ok(&f.0)).unwrap_err();
            assert!(
                e.message().contains("invalid intelRdt.ClosID"),
                "{bad}: {e}"
            );
        }
        validate(&rdt(serde_json::json!({"closID": "/"})), Ok(&f.0))
            .expect("runc lets / be the root group");
        let both = rdt(serde_json::json!({"l3CacheSchema": "L3:0=f", "memBwSchema": "MB:0=20"}));
        validate(&both, Ok(&f.0)).expect("CAT and MBA present");
        fs::remove_dir(f.0.join("info/L3")).unwrap();
        let e = validate(&both, Ok(&f.0)).unwrap_err();
        assert!(e.message().contains("Intel RDT/CAT is not enabled"), "{e}");
        fs::remove_dir(f.0.join("info/MB")).unwrap();
        let e = validate(
            &rdt(serde_json::json!({"memBwSchema": "MB:0=20"})),
            Ok(&f.0),
        )
        .unwrap_err();
        assert!(e.message().contains("Intel RDT/MBA is not enabled"), "{e}");
    }

    #[test]
    fn schemata_lines_in_runcs_order() {
        let r = rdt(serde_json::json!({
            "schemata": ["L2:0=3", ""], "memBwSchema": "MB:0=20", "l3CacheSchema": "L3:0=f0"
        }));
        assert_eq!(schemata_text(&r), "L3:0=f0\nMB:0=20\nL2:0=3\n");
        assert_eq!(schemata_text(&rdt(serde_json::json!({"closID": "x"}))), "");
    }

    #[test]
    fn own_group_is_made_written_joined_and_removed() {
        let f = Fake::new("own");
        let r = rdt(serde_json::json!({"l3CacheSchema": "L3:0=f", "enableMonitoring": false}));
        let a = apply(&f.0, &r, "ctr1", 4242).expect("apply");
        assert_eq!(a.path, f.0.join("ctr1"));
        assert!(a.remove_group && a.mon_path.is_none());
        assert_eq!(
            fs::read_to_string(f.0.join("ctr1/schemata")).unwrap(),
            "L3:0=f\n"
        );
        assert_eq!(fs::read_to_string(f.0.join("ctr1/tasks")).unwrap(), "4242");
        kernel_files_gone(&a.path);
        destroy(&a).expect("destroy");
        assert!(!a.path.exists(), "own group left");
    }

    #[test]
    fn shared_clos_group_stays_and_its_mon_group_goes() {
        let f = Fake::new("shared");
        let g = f.0.join("gold");
        fs::create_dir_all(g.join("mon_groups")).unwrap();
        let r = rdt(serde_json::json!({"closID": "gold", "enableMonitoring": true}));
        let a = apply(&f.0, &r, "ctr2", 77).expect("apply");
        assert!(!a.remove_group, "a closID group is not ours to remove");
        assert_eq!(
            a.mon_path.as_deref(),
            Some(g.join("mon_groups/ctr2").as_path())
        );
        assert_eq!(fs::read_to_string(g.join("tasks")).unwrap(), "77");
        assert_eq!(
            fs::read_to_string(g.join("mon_groups/ctr2/tasks")).unwrap(),
            "77"
        );
        assert!(
            !g.join("schemata").exists(),
            "no schemata asked, none written"
        );
        kernel_files_gone(&g.join("mon_groups/ctr2"));
        destroy(&a).expect("destroy");
        assert!(g.is_dir() && !g.join("mon_groups/ctr2").exists());
    }

    #[test]
    fn group_that_existed_without_closid_is_kept() {
        let f = Fake::new("pre");
        fs::create_dir(f.0.join("ctr3")).unwrap();
        let a = apply(
            &f.0,
            &rdt(serde_json::json!({"memBwSchema": "MB:0=50"})),
            "ctr3",
            5,
        )
        .expect("apply");
        assert!(!a.remove_group, "skiff did not make it (runc 1.5)");
        kernel_files_gone(&a.path);
        destroy(&a).expect("destroy");
        assert!(a.path.is_dir());
    }

    #[test]
    fn closid_without_schemata_must_exist_and_nothing_is_made() {
        let f = Fake::new("missing");
        let e = apply(&f.0, &rdt(serde_json::json!({"closID": "nope"})), "c", 1).unwrap_err();
        assert!(e.message().contains("must be pre-created"), "{e}");
        assert!(!f.0.join("nope").exists());
    }

    #[test]
    fn failure_after_mkdir_removes_the_group_and_quotes_last_cmd_status() {
        let f = Fake::new("fail");
        fs::write(
            f.0.join("info/last_cmd_status"),
            "Unknown or unsupported resource\n",
        )
        .unwrap();
        // A monitoring group under a fresh group fails here (no mon_groups in
        // the fake tree): what was made must go.
        let r = rdt(serde_json::json!({"l3CacheSchema": "L3:0=f", "enableMonitoring": true}));
        let e = apply(&f.0, &r, "ctr4", 9);
        let e = e.unwrap_err();
        assert!(
            e.message()
                .contains("last_cmd_status: Unknown or unsupported resource"),
            "{e}"
        );
        assert!(e.message().contains("mon_groups/ctr4"), "{e}");
        // (The fake's group keeps its plain files, so its rmdir fails here;
        // resctrl's rmdir takes them along.)
    }
}
