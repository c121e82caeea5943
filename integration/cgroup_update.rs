//! `update` against runc: the same container and the same update under runc
//! (the oracle) and skiff, compared through the cgroup files each leaves. Where
//! runc 1.2-1.4 changed what `update` does and the installed runc is older,
//! the newer runc's result is written in the test with the version named.

use crate::support::{skip_unless_root, text, Bundle, OutputExt, Runtime};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn unified_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The container's cgroup directory holding `controller` (v2: the one directory).
fn cgroup_dir(rt: &Runtime, id: &str, controller: &str) -> PathBuf {
    let pid = rt.state(id)["pid"].as_i64().expect("pid");
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/pid/cgroup");
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let hit = if unified_host() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        if hit {
            // Never a host-wide directory: the tests write through these paths.
            assert!(path.len() > 1, "{id} is in the root cgroup: {text}");
            let mount = if unified_host() { "" } else { controller };
            return Path::new("/sys/fs/cgroup")
                .join(mount)
                .join(path.trim_start_matches('/'));
        }
    }
    panic!("{controller} not in /proc/{pid}/cgroup: {text}");
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

/// The runc in use is older than 1.2 (Debian's 1.1.5 here, 1.1.15 in the VM).
fn runc_1_1(runc: &Runtime) -> bool {
    let out = Command::new(runc.bin()).arg("--version").output();
    let v = out.map(|o| text(&o.stdout)).unwrap_or_default();
    v.lines()
        .next()
        .is_some_and(|l| l.starts_with("runc version 1.1.") || l.starts_with("runc version 1.0."))
}

/// "major:minor" of the whole disk under / (throttling refuses partitions):
/// the limits below go only into the test containers' own cgroups.
fn root_disk() -> Option<(u64, u64)> {
    let dev = fs::metadata("/").ok()?.dev();
    let (maj, min) = (libc::major(dev) as u64, libc::minor(dev) as u64);
    let sys = PathBuf::from(format!("/sys/dev/block/{maj}:{min}"));
    if !sys.exists() {
        return None;
    }
    if !sys.join("partition").exists() {
        return Some((maj, min));
    }
    let parent = fs::read_to_string(sys.join("../dev")).ok()?;
    let (a, b) = parent.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The four throttle limits of `dev` in the container's cgroup, in io.max's
/// words ("max" where none is set), from v1's four files or v2's io.max.
fn throttles(rt: &Runtime, id: &str, dev: &str) -> BTreeMap<&'static str, String> {
    let dir = cgroup_dir(rt, id, "blkio");
    let mut out = BTreeMap::new();
    let keys = [
        ("rbps", "read_bps"),
        ("wbps", "write_bps"),
        ("riops", "read_iops"),
        ("wiops", "write_iops"),
    ];
    if unified_host() {
        let io_max = read(&dir, "io.max");
        let line = io_max.lines().find(|l| l.starts_with(&format!("{dev} ")));
        for (k, _) in keys {
            let v = line
                .and_then(|l| {
                    l.split_whitespace()
                        .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                })
                .unwrap_or("max");
            out.insert(k, v.to_string());
        }
        return out;
    }
    for (k, f) in keys {
        let text = read(&dir, &format!("blkio.throttle.{f}_device"));
        let v = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{dev} ")))
            .unwrap_or("max");
        out.insert(k, v.to_string());
    }
    out
}

fn update_json(rt: &Runtime, bundle: &Bundle, id: &str, res: &Value) -> std::process::Output {
    let file = bundle.path().join(format!(
        "update-{}.json",
        rt.bin().display().to_string().len()
    ));
    fs::write(&file, res.to_string()).expect("write resources");
    rt.run(&["update", "-r", file.to_str().expect("utf8"), id])
}

fn expect(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// Per-device throttles: create writes the same files as runc; an update
/// replaces the named device's value and keeps the rest (runc >= 1.4's
/// upsert; runc 1.1 ignored these lists in `update`), the last duplicate of a
/// device being the one replaced since it is the one the kernel kept.
#[test]
fn update_replaces_per_device_io_limits() {
    if skip_unless_root() {
        return;
    }
    let Some((maj, min)) = root_disk() else {
        eprintln!("skipping update_replaces_per_device_io_limits: / is not on a block device");
        return;
    };
    let dev = format!("{maj}:{min}");
    let d = |rate: u64| json!({"major": maj, "minor": min, "rate": rate});
    let mut bundle = Bundle::new().args(&["sleep", "100"]);
    bundle.config_mut()["linux"]["resources"]["blockIO"] = json!({
        "throttleReadBpsDevice": [d(1048576)],
        "throttleWriteIOPSDevice": [d(100)],
        "throttleReadIOPSDevice": [d(200), d(300)],
    });
    let created = expect(&[
        ("rbps", "1048576"),
        ("wbps", "max"),
        ("riops", "300"),
        ("wiops", "100"),
    ]);
    let first = json!({"blockIO": {
        "throttleReadBpsDevice": [d(2097152)],
        "throttleWriteBpsDevice": [d(555000)],
        "throttleReadIOPSDevice": [d(400)],
    }});
    let after_first = expect(&[
        ("rbps", "2097152"),
        ("wbps", "555000"),
        ("riops", "400"),
        ("wiops", "100"),
    ]);
    let second = json!({"blockIO": {"throttleWriteIOPSDevice": [d(50)]}});
    let after_second = expect(&[
        ("rbps", "2097152"),
        ("wbps", "555000"),
        ("riops", "400"),
        ("wiops", "50"),
    ]);

    let skiff = Runtime::skiff();
    let id = skiff.new_id();
    skiff.create(&id, &bundle).assert_success("skiff create");
    assert_eq!(throttles(&skiff, &id, &dev), created, "skiff after create");
    update_json(&skiff, &bundle, &id, &first).assert_success("skiff update");
    assert_eq!(
        throttles(&skiff, &id, &dev),
        after_first,
        "skiff, 1st update"
    );
    update_json(&skiff, &bundle, &id, &second).assert_success("skiff update 2");
    assert_eq!(
        throttles(&skiff, &id, &dev),
        after_second,
        "skiff, 2nd update"
    );
    skiff.delete_force(&id).assert_success("delete");
    skiff.assert_no_leaks(&id, &bundle);

    let Some(runc) = Runtime::runc() else { return };
    let id = runc.new_id();
    runc.create(&id, &bundle).assert_success("runc create");
    assert_eq!(throttles(&runc, &id, &dev), created, "runc after create");
    update_json(&runc, &bundle, &id, &first).assert_success("runc update");
    if runc_1_1(&runc) {
        // runc 1.1 applies no per-device list in `update` (1.4 added it).
        assert_eq!(throttles(&runc, &id, &dev), created, "runc 1.1 kept all");
    } else {
        assert_eq!(throttles(&runc, &id, &dev), after_first, "runc 1st update");
        update_json(&runc, &bundle, &id, &second).assert_success("runc update 2");
        assert_eq!(throttles(&runc, &id, &dev), after_second, "runc 2nd");
    }
    runc.delete_force(&id).assert_success("runc delete");
}

/// `update --cpu-idle 1` then `0` on a container with shares: runc >= 1.2
/// writes cpu.idle and, when no shares come with it, forgets the stored
/// shares (the kernel refuses a weight on an idle group and resets it to the
/// default on leaving idle). runc 1.1 has no --cpu-idle.
#[test]
fn update_cpu_idle_both_ways() {
    if skip_unless_root() {
        return;
    }
    let mut bundle = Bundle::new().args(&["sleep", "100"]);
    bundle.config_mut()["linux"]["resources"]["cpu"] = json!({"shares": 512});
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &bundle).assert_success("create");
    let dir = cgroup_dir(&rt, &id, "cpu");
    if !dir.join("cpu.idle").exists() {
        eprintln!("skipping update_cpu_idle_both_ways: no cpu.idle (Linux < 5.15)");
        return;
    }
    let (weight_file, default) = if unified_host() {
        ("cpu.weight", "100")
    } else {
        ("cpu.shares", "1024")
    };
    assert_ne!(read(&dir, weight_file), default, "shares 512 applied");
    rt.run(&["update", "--cpu-idle", "1", &id])
        .assert_success("idle 1");
    assert_eq!(read(&dir, "cpu.idle"), "1");
    rt.run(&["update", "--cpu-idle", "0", &id])
        .assert_success("idle 0");
    assert_eq!(read(&dir, "cpu.idle"), "0");
    // The kernel's default on leaving idle; runc 1.2 does not write it back.
    assert_eq!(read(&dir, weight_file), default);
    // Later updates do not bring the forgotten shares back.
    rt.run(&["update", "--cpu-idle", "1", &id])
        .assert_success("idle 1 again");
    rt.run(&["update", "--pids-limit", "50", &id])
        .assert_success("pids while idle");
    assert_eq!(read(&dir, "cpu.idle"), "1");
    // Idle and shares together, leaving idle: both apply.
    rt.run(&["update", "--cpu-idle", "0", "--cpu-share", "2048", &id])
        .assert_success("idle 0 with shares");
    assert_eq!(read(&dir, "cpu.idle"), "0");
    // v2: runc >= 1.3's shares->weight formula gives 174 for 2048.
    let want = if unified_host() { "174" } else { "2048" };
    assert_eq!(read(&dir, weight_file), want);
    rt.delete_force(&id).assert_success("delete");
    rt.assert_no_leaks(&id, &bundle);
}
