//! Resource control: cgroup placement, every limit read back from the host and
//! from inside the container, pause/resume, update, ps, events, kill --all,
//! and no cgroup left behind however a container ends.

use crate::support::{skip_unless_root, text, Bundle, OutputExt, Runtime};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// Mount the container's own cgroups at /sys/fs/cgroup, as `runc spec` does.
fn with_cgroup_mount(mut b: Bundle) -> Bundle {
    b.config_mut()["mounts"]
        .as_array_mut()
        .expect("mounts")
        .push(
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
        );
    b
}

/// The host directory of `pid`'s cgroup in the hierarchy holding `controller`.
fn host_dir(pid: i64, controller: &str) -> PathBuf {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/pid/cgroup");
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let hit = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        if hit {
            let mount = match controller {
                "" if unified_host() => "",
                "" => "unified",
                "name=systemd" => "systemd",
                c => c,
            };
            return Path::new("/sys/fs/cgroup")
                .join(mount)
                .join(path.trim_start_matches('/'));
        }
    }
    panic!("{controller} not in /proc/{pid}/cgroup: {text}");
}

fn own_path(controller: &str) -> String {
    let text = fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
    text.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next(), f.next()?, f.next()?);
            c.split(',').any(|x| x == controller).then(|| p.to_string())
        })
        .expect("own cgroup")
}

/// "major:minor" of a real block device (throttling needs one), if any.
fn block_device() -> Option<String> {
    let mut names: Vec<_> = fs::read_dir("/sys/block").ok()?.flatten().collect();
    names.sort_by_key(|e| e.file_name());
    names
        .into_iter()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            !n.starts_with("loop") && !n.starts_with("ram")
        })
        .find_map(|e| fs::read_to_string(e.path().join("dev")).ok())
        .map(|d| d.trim().to_string())
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

fn pid_of(rt: &Runtime, id: &str) -> i64 {
    rt.state(id)["pid"].as_i64().expect("pid")
}

/// Wait for a file the container writes into its rootfs.
fn wait_file(path: &Path) -> String {
    let end = Instant::now() + WAIT;
    loop {
        if let Ok(s) = fs::read_to_string(path) {
            if s.ends_with("END\n") {
                return s;
            }
        }
        assert!(Instant::now() < end, "{} never completed", path.display());
        thread::sleep(Duration::from_millis(20));
    }
}

fn pids_alive(pids: &[i64]) -> Vec<i64> {
    pids.iter()
        .copied()
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        })
        .collect()
}

#[test]
fn every_limit_is_written_and_visible_inside() {
    if skip_unless_root() {
        return;
    }
    if unified_host() {
        eprintln!(
            "skipping every_limit_is_written_and_visible_inside: v1 files; \
             every_limit_on_v2_is_written covers a unified host"
        );
        return;
    }
    let script = "for f in memory/memory.limit_in_bytes memory/memory.soft_limit_in_bytes \
                  memory/memory.memsw.limit_in_bytes memory/memory.swappiness cpu/cpu.shares \
                  cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu/cpu.cfs_burst_us cpu/cpu.idle \
                  cpuset/cpuset.cpus cpuset/cpuset.mems pids/pids.max blkio/blkio.bfq.weight; \
                  do echo \"$f=$(cat /sys/fs/cgroup/$f)\"; done > /tmp/inside; \
                  ls /sys/fs/cgroup >> /tmp/inside; echo END >> /tmp/inside; sleep 100";
    let mut bundle = with_cgroup_mount(Bundle::new().args(&["sh", "-c", script]));
    bundle.config_mut()["linux"]["resources"] = json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728,
                   "swappiness": 10, "useHierarchy": true},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "burst": 1000, "idle": 0,
                "cpus": "0", "mems": "0"},
        "pids": {"limit": 42},
        "blockIO": {"weight": 300}
    });
    let r = &mut bundle.config_mut()["linux"]["resources"];
    r["memory"]["disableOOMKiller"] = json!(true);
    r["cpu"]["realtimePeriod"] = json!(1000000);
    r["cpu"]["realtimeRuntime"] = json!(10000);
    let dev = block_device();
    if let Some(d) = &dev {
        let (ma, mi) = d.split_once(':').expect("major:minor");
        let (ma, mi): (i64, i64) = (ma.parse().expect("major"), mi.parse().expect("minor"));
        r["blockIO"]["throttleReadBpsDevice"] =
            json!([{"major": ma, "minor": mi, "rate": 1048576}]);
        r["blockIO"]["throttleWriteIOPSDevice"] = json!([{"major": ma, "minor": mi, "rate": 300}]);
    }
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &bundle).assert_success("create");
    let pid = pid_of(&rt, &id);
    let mem = host_dir(pid, "memory");
    // Placed before the user process runs: init is already in every hierarchy.
    assert_eq!(
        mem,
        Path::new("/sys/fs/cgroup/memory").join(format!(
            "{}/{id}",
            own_path("memory").trim_start_matches('/')
        ))
    );
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "67108864");
    assert_eq!(read(&mem, "memory.soft_limit_in_bytes"), "33554432");
    assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "134217728");
    assert_eq!(read(&mem, "memory.swappiness"), "10");
    let cpu = host_dir(pid, "cpu");
    assert_eq!(read(&cpu, "cpu.shares"), "512");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "20000");
    assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
    assert_eq!(read(&cpu, "cpu.cfs_burst_us"), "1000");
    assert_eq!(read(&cpu, "cpu.rt_period_us"), "1000000");
    assert_eq!(read(&cpu, "cpu.rt_runtime_us"), "10000");
    assert_eq!(read(&host_dir(pid, "cpuset"), "cpuset.cpus"), "0");
    assert_eq!(read(&host_dir(pid, "cpuset"), "cpuset.mems"), "0");
    assert!(read(&mem, "memory.oom_control").contains("oom_kill_disable 1"));
    if let Some(d) = &dev {
        let blkio = host_dir(pid, "blkio");
        assert_eq!(
            read(&blkio, "blkio.throttle.read_bps_device"),
            format!("{d} 1048576")
        );
        assert_eq!(
            read(&blkio, "blkio.throttle.write_iops_device"),
            format!("{d} 300")
        );
    }
    assert_eq!(read(&host_dir(pid, "pids"), "pids.max"), "42");
    assert_eq!(read(&host_dir(pid, "blkio"), "blkio.bfq.weight"), "300");
    let devices = read(&host_dir(pid, "devices"), "devices.list");
    for want in ["c 1:3 rwm", "c *:* m", "b *:* m", "c 136:* rwm"] {
        assert!(
            devices.lines().any(|l| l == want),
            "{want} not in {devices}"
        );
    }
    assert!(!devices.contains("a *:* rwm"), "{devices}");
    // Hybrid host: also in the cgroup2 tree, and in the named systemd hierarchy.
    assert!(host_dir(pid, "").ends_with(&id));
    assert!(host_dir(pid, "name=systemd").ends_with(&id));

    rt.start(&id).assert_success("start");
    let inside = wait_file(&bundle.rootfs().join("tmp/inside"));
    for want in [
        "memory/memory.limit_in_bytes=67108864",
        "memory/memory.soft_limit_in_bytes=33554432",
        "memory/memory.memsw.limit_in_bytes=134217728",
        "memory/memory.swappiness=10",
        "cpu/cpu.shares=512",
        "cpu/cpu.cfs_quota_us=20000",
        "cpu/cpu.cfs_burst_us=1000",
        "cpu/cpu.idle=0",
        "cpuset/cpuset.cpus=0",
        "pids/pids.max=42",
        "blkio/blkio.bfq.weight=300",
        "systemd",
        "freezer",
    ] {
        assert!(
            inside.lines().any(|l| l == want),
            "{want:?} not in:\n{inside}"
        );
    }
    rt.delete_force(&id).assert_success("delete --force");
    rt.assert_no_leaks(&id, &bundle);
    assert!(!mem.exists());
}

/// Our own cgroup in the unified hierarchy ("0::" line).
fn own_v2() -> String {
    let text = fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
    text.lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .expect("0:: line")
}

fn unified_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

#[test]
fn cgroups_path_absolute_relative_and_default() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&["sleep", "100"]);
    let rt = Runtime::skiff();
    let tag = format!("skiff-it-cg-{}", std::process::id());
    // v1 (hybrid host): relative paths go under our own cgroup in each
    // hierarchy; unified: beside it, under its parent (runc's v2 code).
    let (ctl, base_a, base_b) = if unified_host() {
        let own = own_v2();
        let parent = own.rsplit_once('/').map_or("", |(p, _)| p).to_string();
        ("", parent.clone(), parent)
    } else {
        ("cpu", own_path("cpu"), own_path("memory"))
    };
    let line = |p: &str| {
        if ctl.is_empty() {
            format!("0::{p}\n")
        } else {
            format!(":cpu:{p}\n")
        }
    };
    let cases = [
        (
            None,
            format!("{}/ID", base_a.trim_end_matches('/')),
            format!("{}/ID", base_b.trim_end_matches('/')),
        ),
        (
            Some(format!("/{tag}/abs")),
            format!("/{tag}/abs"),
            format!("/{tag}/abs"),
        ),
        (
            Some(format!("{tag}/../{tag}/rel")),
            format!("{}/{tag}/rel", base_a.trim_end_matches('/')),
            format!("{}/{tag}/rel", base_b.trim_end_matches('/')),
        ),
    ];
    let mut b = bundle;
    for (path, want_a, want_b) in cases {
        let id = rt.new_id();
        match &path {
            Some(p) => b.config_mut()["linux"]["cgroupsPath"] = json!(p),
            None => {
                b.config_mut()["linux"]
                    .as_object_mut()
                    .expect("linux")
                    .remove("cgroupsPath");
            }
        }
        rt.create(&id, &b).assert_success("create");
        let pid = pid_of(&rt, &id);
        let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
        let want_a = want_a.replace("ID", &id).replace("//", "/");
        let want_b = want_b.replace("ID", &id).replace("//", "/");
        assert!(text.contains(&line(&want_a)), "{path:?}: {text}");
        if !ctl.is_empty() {
            assert!(
                text.contains(&format!(":memory:{want_b}\n")),
                "{path:?}: {text}"
            );
        }
        let dir = host_dir(pid, ctl);
        rt.delete_force(&id).assert_success("delete");
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    // runc removes only the container's own directory; tidy the parents.
    let own_mem = if ctl.is_empty() {
        base_b
    } else {
        own_path("memory")
    };
    let mut tops: Vec<PathBuf> = fs::read_dir("/sys/fs/cgroup")
        .expect("ls")
        .flatten()
        .map(|h| h.path())
        .collect();
    tops.push(PathBuf::from("/sys/fs/cgroup"));
    for top in tops {
        let mut parent = top.clone();
        if top.ends_with("memory") || ctl.is_empty() {
            parent = parent.join(own_mem.trim_start_matches('/'));
        }
        for d in [
            parent.join(&tag).join("abs"),
            parent.join(&tag).join("rel"),
            parent.join(&tag),
            top.join(&tag).join("abs"),
            top.join(&tag),
        ] {
            let _ = fs::remove_dir(d);
        }
    }
}

#[test]
fn v2_run_from_a_busy_cgroup_leaves_it_alone() {
    if skip_unless_root() {
        return;
    }
    if !unified_host() {
        eprintln!("skipping v2_run_from_a_busy_cgroup_leaves_it_alone: needs unified cgroup v2");
        return;
    }
    let own = Path::new("/sys/fs/cgroup").join(own_v2().trim_start_matches('/'));
    let before = (
        read(&own, "cgroup.type"),
        read(&own, "cgroup.subtree_control"),
    );
    let rt = Runtime::skiff();
    let (code, out, err) = rt.run_leak_checked(&Bundle::new().args(&["echo", "hi"]));
    assert_eq!((code, out.as_str()), (0, "hi\n"), "{err}");
    // runc (1.1.15 in the VM lane's guest) runs it from here too, beside us.
    if let Some(runc) = Runtime::runc() {
        let (code, out, err) = runc.run_leak_checked(&Bundle::new().args(&["echo", "hi"]));
        assert_eq!((code, out.as_str()), (0, "hi\n"), "runc: {err}");
    }
    let after = (
        read(&own, "cgroup.type"),
        read(&own, "cgroup.subtree_control"),
    );
    assert_eq!(
        before,
        after,
        "our own cgroup {} was changed",
        own.display()
    );
    assert_eq!(after.0, "domain");
}

/// A cgroup beside ours that no process in it can fork from (pids.max 1,
/// the process moved in being its only one); removed on drop.
struct NoForkCgroup(PathBuf);

impl NoForkCgroup {
    fn new() -> NoForkCgroup {
        let own = own_v2();
        let parent = own.rsplit_once('/').map_or("", |(p, _)| p);
        let dir = Path::new("/sys/fs/cgroup")
            .join(parent.trim_start_matches('/'))
            .join(format!("skiff-it-nofork-{}", std::process::id()));
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let cg = NoForkCgroup(dir);
        fs::write(cg.0.join("pids.max"), "1").expect("write pids.max of the caller's cgroup");
        cg
    }
}

impl Drop for NoForkCgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

/// runc 1.4 starts `exec`'s process inside the container's cgroup with
/// clone3(CLONE_INTO_CGROUP) (runc 1.1 forks it in the caller's cgroup and
/// moves it through cgroup.procs). Seen from outside: an exec whose caller
/// sits in a cgroup that cannot fork any more still starts, because the new
/// process is charged to the container's cgroup from its first instruction,
/// never to the caller's; and an exec into a container at its pids.max fails
/// at the clone, saying so, instead of migrating in over the limit (which
/// cgroup.procs allows). runc cannot run in the first case at all (its Go
/// runtime's threads count as tasks), so skiff is checked alone.
#[test]
fn exec_is_cloned_into_the_container_cgroup() {
    if skip_unless_root() {
        return;
    }
    if !unified_host() {
        eprintln!("skipping exec_is_cloned_into_the_container_cgroup: CLONE_INTO_CGROUP takes a cgroup v2 directory, and this hybrid host keeps pids and the other controllers in v1 hierarchies (its cgroup2 mount has none), so skiff joins them through cgroup.procs as runc does; the VM lane runs this test");
        return;
    }
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let b = Bundle::new().args(&["sleep", "100"]);
    rt.create(&id, &b).assert_success("create");
    rt.start(&id).assert_success("start");
    let nofork = NoForkCgroup::new();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#)
        .arg(&nofork.0)
        .arg(rt.bin())
        .arg("--root")
        .arg(rt.root())
        .args(["exec", &id, "echo", "cloned-in"]);
    let out = rt.output(cmd);
    out.assert_success("exec from a cgroup that cannot fork");
    assert_eq!(out.stdout_text(), "cloned-in\n");
    let events = read(&nofork.0, "pids.events");
    assert!(
        events.lines().any(|l| l == "max 0"),
        "a fork was refused in the caller's cgroup: {events}"
    );
    // The container at its limit: init is its one task.
    let dir = host_dir(pid_of(&rt, &id), "");
    fs::write(dir.join("pids.max"), "1").expect("write pids.max");
    let out = rt.run(&["exec", &id, "echo", "over"]);
    // A failed exec exits 255, as runc's does.
    assert_eq!(out.status.code(), Some(255), "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains("pids.max"),
        "{}",
        out.stderr_text()
    );
    assert_eq!(read(&dir, "pids.current"), "1");
    rt.delete_force(&id).assert_success("delete");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn systemd_driver_without_systemd_fails_clearly() {
    if skip_unless_root() {
        return;
    }
    if Path::new("/run/systemd/system").exists() {
        eprintln!("skipping systemd_driver_without_systemd_fails_clearly: systemd runs here (systemd.rs tests the driver)");
        return;
    }
    let mut bundle = Bundle::new().args(&["true"]);
    bundle.config_mut()["linux"]["cgroupsPath"] = json!("system.slice:skiff:x");
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let out = rt.run(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        bundle.path_str(),
        &id,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr_text());
    assert!(
        out.stderr_text()
            .contains("systemd is not running on this host (no /run/systemd/system)"),
        "{}",
        out.stderr_text()
    );
    rt.assert_no_leaks(&id, &bundle);
    // Without a cgroupsPath (runc's default scope), `run` says which unit.
    bundle.config_mut()["linux"]
        .as_object_mut()
        .expect("linux")
        .remove("cgroupsPath");
    bundle.flush();
    let id = rt.new_id();
    let out = rt.run(&[
        "--systemd-cgroup",
        "run",
        "--bundle",
        bundle.path_str(),
        &id,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains(&format!(
            "the default system.slice:runc:{id} cannot be placed"
        )),
        "{}",
        out.stderr_text()
    );
    rt.assert_no_leaks(&id, &bundle);
}

#[test]
fn device_rules_apply_in_order() {
    if skip_unless_root() {
        return;
    }
    let script = "mknod /dev/mem2 c 1 1; mknod /dev/null2 c 1 3; \
                  (head -c1 /dev/mem2 >/dev/null 2>&1 && echo mem=open || echo mem=denied); \
                  (echo x > /dev/null2 && echo null=open || echo null=denied); \
                  (head -c1 /dev/zero | wc -c); echo END";
    let mut bundle = Bundle::new().args(&["sh", "-c", script]);
    let caps = json!(["CAP_MKNOD", "CAP_KILL"]);
    let p = &mut bundle.config_mut()["process"]["capabilities"];
    p["bounding"] = caps.clone();
    p["effective"] = caps.clone();
    p["permitted"] = caps;
    bundle.config_mut()["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 1, "access": "rw"},
        {"allow": false, "type": "c", "major": 1, "minor": 1, "access": "r"}
    ]);
    let rt = Runtime::skiff();
    let (status, out, err) = rt.run_container(&bundle);
    assert!(status.success(), "{err}");
    assert!(out.contains("mem=denied"), "{out}");
    assert!(out.contains("null=open"), "{out}");
    assert!(out.contains("1\n"), "{out}");
}

#[test]
fn pause_resume_and_paused_state() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&["sleep", "100"]);
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &bundle).assert_success("create");
    rt.start(&id).assert_success("start");
    // v1: freezer.state; unified: cgroup.freeze (runc's v2 freezer).
    let (freezer, file, frozen, thawed) = if unified_host() {
        (host_dir(pid_of(&rt, &id), ""), "cgroup.freeze", "1", "0")
    } else {
        let d = host_dir(pid_of(&rt, &id), "freezer");
        (d, "freezer.state", "FROZEN", "THAWED")
    };
    rt.run(&["pause", &id]).assert_success("pause");
    assert_eq!(rt.state(&id)["status"], "paused");
    assert_eq!(read(&freezer, file), frozen);
    let again = rt.run(&["pause", &id]);
    assert_ne!(again.status.code(), Some(0));
    assert!(
        again.stderr_text().contains("already paused"),
        "{}",
        again.stderr_text()
    );
    let start = rt.start(&id);
    assert!(
        start.stderr_text().contains("paused"),
        "{}",
        start.stderr_text()
    );
    let del = rt.delete(&id);
    assert!(
        del.stderr_text().contains("paused"),
        "{}",
        del.stderr_text()
    );
    // ps and stats still work on a paused container.
    rt.run(&["ps", "--format", "json", &id])
        .assert_success("ps");
    rt.run(&["resume", &id]).assert_success("resume");
    assert_eq!(rt.state(&id)["status"], "running");
    assert_eq!(read(&freezer, file), thawed);
    let again = rt.run(&["resume", &id]);
    assert!(
        again.stderr_text().contains("not paused"),
        "{}",
        again.stderr_text()
    );
    // SIGKILL to a paused container kills it (the cgroup is thawed for it).
    rt.run(&["pause", &id]).assert_success("pause");
    rt.kill(&id, "KILL").assert_success("kill");
    rt.wait_for_status(&id, "stopped", WAIT);
    rt.delete(&id).assert_success("delete");
    rt.assert_no_leaks(&id, &bundle);
}

#[test]
fn update_changes_limits_and_refuses_nonsense() {
    if skip_unless_root() {
        return;
    }
    if unified_host() {
        // The v2 side of update: cgroups::update_on_v2_writes_v2_files and
        // systemd::update_tells_systemd_and_survives_daemon_reload.
        eprintln!("skipping update_changes_limits_and_refuses_nonsense: reads cgroup v1 files (memory.limit_in_bytes, cpu.cfs_quota_us)");
        return;
    }
    let mut bundle = Bundle::new().args(&["sleep", "100"]);
    bundle.config_mut()["linux"]["resources"]["memory"] = json!({"limit": 104857600});
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &bundle).assert_success("create");
    let pid = pid_of(&rt, &id);
    let (mem, cpu) = (host_dir(pid, "memory"), host_dir(pid, "cpu"));
    rt.run(&[
        "update",
        "--memory",
        "200M",
        "--memory-swap",
        "300M",
        "--memory-reservation",
        "50m",
        "--cpu-shares",
        "256",
        "--cpu-quota",
        "30000",
        "--cpu-period",
        "60000",
        "--pids-limit",
        "33",
        "--cpuset-cpus",
        "1",
        "--blkio-weight",
        "700",
        &id,
    ])
    .assert_success("update flags");
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "209715200");
    assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "314572800");
    assert_eq!(read(&mem, "memory.soft_limit_in_bytes"), "52428800");
    assert_eq!(read(&cpu, "cpu.shares"), "256");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "30000");
    assert_eq!(read(&cpu, "cpu.cfs_period_us"), "60000");
    assert_eq!(read(&host_dir(pid, "pids"), "pids.max"), "33");
    assert_eq!(read(&host_dir(pid, "cpuset"), "cpuset.cpus"), "1");
    assert_eq!(read(&host_dir(pid, "blkio"), "blkio.bfq.weight"), "700");
    // Only the period: the quota stays.
    rt.run(&["update", "--cpu-period", "90000", &id])
        .assert_success("period");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "30000");
    assert_eq!(read(&cpu, "cpu.cfs_period_us"), "90000");
    // --resources FILE, linux.resources JSON (podman passes a path).
    let file = bundle.path().join("res.json");
    fs::write(&file, r#"{"memory": {"limit": 157286400, "swap": -1}, "cpu": {"shares": 2048}, "pids": {"limit": -1}}"#).expect("write");
    rt.run(&["update", "--resources", file.to_str().expect("utf8"), &id])
        .assert_success("-r");
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "157286400");
    assert_eq!(read(&cpu, "cpu.shares"), "2048");
    assert_eq!(read(&host_dir(pid, "pids"), "pids.max"), "max");
    // --resources - reads stdin, as containerd's shim sends it.
    let mut cmd = rt.command();
    cmd.args(["update", "--resources", "-", &id])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = cmd.spawn().expect("spawn update");
    std::io::Write::write_all(
        child.stdin.as_mut().expect("stdin"),
        br#"{"cpu": {"shares": 768}}"#,
    )
    .expect("stdin");
    drop(child.stdin.take());
    assert!(child.wait().expect("wait").success());
    assert_eq!(read(&cpu, "cpu.shares"), "768");
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "157286400");

    let refused = [
        (vec!["--cpu-quota", "-5"], "cpu.quota"),
        (vec!["--memory", "1000"], "memory.limit"),
        (
            vec!["--memory", "300M", "--memory-swap", "100M"],
            "memory.swap",
        ),
        // runc's words: "Intel RDT/CAT: l3 cache schema is not enabled" (no
        // resctrl), or "updating a non-existent Intel RDT configuration is
        // not supported" (this container has no intelRdt).
        (vec!["--l3-cache-schema", "L3:0=f"], "Intel RDT"),
        (vec!["--mem-bw-schema", "MB:0=70"], "Intel RDT"),
        (vec!["--cpu-period", "x"], "cpu-period"),
    ];
    for (flags, want) in refused {
        let mut args = vec!["update"];
        args.extend(&flags);
        args.push(&id);
        let out = rt.run(&args);
        assert_ne!(out.status.code(), Some(0), "{flags:?}");
        assert!(
            out.stderr_text().contains(want),
            "{flags:?}: {}",
            out.stderr_text()
        );
    }
    fs::write(&file, r#"{"unified": {"memory.max": "1000000"}}"#).expect("write");
    let out = rt.run(&["update", "-r", file.to_str().expect("utf8"), &id]);
    assert!(
        out.stderr_text()
            .contains("unified: cannot be used on cgroup v1"),
        "{}",
        out.stderr_text()
    );
    // Accepted and ignored, as runc does.
    rt.run(&["update", "--kernel-memory", "10M", &id])
        .assert_success("kernel-memory");
    rt.delete_force(&id).assert_success("delete");
    let out = rt.run(&["update", "--memory", "10M", &id]);
    assert!(
        out.stderr_text().contains("does not exist"),
        "{}",
        out.stderr_text()
    );
    rt.assert_no_leaks(&id, &bundle);
}

#[test]
fn update_on_v2_writes_v2_files() {
    if skip_unless_root() {
        return;
    }
    if !unified_host() {
        eprintln!("skipping update_on_v2_writes_v2_files: needs unified cgroup v2");
        return;
    }
    let mut bundle = Bundle::new().args(&["sleep", "100"]);
    bundle.config_mut()["linux"]["resources"] = json!({"memory": {"limit": 104857600}});
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &bundle).assert_success("create");
    let dir = host_dir(pid_of(&rt, &id), "");
    let mut cmd = rt.command();
    cmd.args([
        "update",
        "--memory",
        "200m",
        "--cpu-share",
        "1024",
        "--cpu-quota",
        "30000",
    ]);
    cmd.args(["--cpu-period", "60000", "--pids-limit", "33", &id]);
    rt.output(cmd).assert_success("update");
    assert_eq!(read(&dir, "memory.max"), "209715200");
    // runc >= 1.3's shares->weight: 1024 is the default weight 100.
    assert_eq!(read(&dir, "cpu.weight"), "100");
    assert_eq!(read(&dir, "cpu.max"), "30000 60000");
    assert_eq!(read(&dir, "pids.max"), "33");
    rt.delete_force(&id).assert_success("delete");
    rt.assert_no_leaks(&id, &bundle);
}

/// The v2 files runc writes for the same resources (runc's v1->v2
/// conversions: swap is memory+swap minus memory, reservation is memory.low;
/// shares->weight with runc >= 1.3's formula, where 1024 is the default 100).
#[test]
fn every_limit_on_v2_is_written() {
    if skip_unless_root() {
        return;
    }
    if !unified_host() {
        eprintln!("skipping every_limit_on_v2_is_written: needs unified cgroup v2");
        return;
    }
    let mut bundle = Bundle::new().args(&["sh", "-c", "cat /sys/fs/cgroup/pids.max; sleep 100"]);
    bundle.config_mut()["linux"]["resources"] = json!({
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
        "cpu": {"shares": 1024, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 42}
    });
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &bundle).assert_success("create");
    let dir = host_dir(pid_of(&rt, &id), "");
    for (file, want) in [
        ("memory.max", "67108864"),
        ("memory.low", "33554432"),
        ("memory.swap.max", "67108864"),
        ("cpu.weight", "100"),
        ("cpu.max", "20000 100000"),
        ("cpuset.cpus", "0"),
        ("cpuset.mems", "0"),
        ("pids.max", "42"),
    ] {
        assert_eq!(read(&dir, file), want, "{file}");
    }
    rt.delete_force(&id).assert_success("delete --force");
    rt.assert_no_leaks(&id, &bundle);
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn ps_lists_every_process() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&["sh", "-c", "sleep 101 & sleep 102 & wait"]);
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &bundle).assert_success("create");
    rt.start(&id).assert_success("start");
    let end = Instant::now() + WAIT;
    let pids: Vec<i64> = loop {
        let out = rt.run(&["ps", "--format", "json", &id]);
        out.assert_success("ps json");
        let v: Vec<i64> = serde_json::from_str(out.stdout_text().trim()).expect("json array");
        if v.len() == 3 || Instant::now() > end {
            break v;
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert!(pids.contains(&pid_of(&rt, &id)));
    let table = rt.run(&["ps", &id]);
    table.assert_success("ps");
    let t = table.stdout_text();
    assert!(t.starts_with("UID") && t.contains("PID"), "{t}");
    assert_eq!(t.lines().count(), 4, "{t}");
    let custom = rt.run(&["ps", &id, "-o", "pid,comm"]);
    let c = custom.stdout_text();
    assert_eq!(c.lines().filter(|l| l.ends_with("sleep")).count(), 2, "{c}");
    // kill --all reaches every process, not only init.
    rt.run(&["kill", "--all", &id, "KILL"])
        .assert_success("kill --all");
    let end = Instant::now() + WAIT;
    while !pids_alive(&pids).is_empty() {
        assert!(Instant::now() < end, "still alive: {:?}", pids_alive(&pids));
        thread::sleep(Duration::from_millis(20));
    }
    rt.delete(&id).assert_success("delete");
    rt.assert_no_leaks(&id, &bundle);
}

#[test]
fn events_stats_and_stream() {
    if skip_unless_root() {
        return;
    }
    let mut bundle = Bundle::new().args(&["sleep", "100"]);
    bundle.config_mut()["linux"]["resources"]["memory"] = json!({"limit": 52428800});
    bundle.config_mut()["linux"]["resources"]["pids"] = json!({"limit": 20});
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &bundle).assert_success("create");
    rt.start(&id).assert_success("start");
    let out = rt.run(&["events", "--stats", &id]);
    out.assert_success("events --stats");
    let text = out.stdout_text();
    assert!(
        text.starts_with(&format!("{{\"type\":\"stats\",\"id\":\"{id}\",\"data\":")),
        "{text}"
    );
    let ev: Value = serde_json::from_str(text.trim()).expect("one JSON object");
    let d = &ev["data"];
    for k in ["cpu", "memory", "pids", "blkio", "hugetlb"] {
        assert!(d.get(k).is_some(), "{k} missing: {d}");
    }
    assert_eq!(d["memory"]["usage"]["limit"], 52428800);
    assert!(
        d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{d}"
    );
    assert_eq!(d["pids"]["current"], 1);
    assert_eq!(d["pids"]["limit"], 20);
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0, "{d}");

    let bad = rt.run(&["events", "--interval", "0s", &id]);
    assert!(
        bad.stderr_text().contains("greater than 0"),
        "{}",
        bad.stderr_text()
    );

    // Streaming: a stats object every interval until the container stops.
    let log = bundle.path().join("events.out");
    let mut cmd = rt.command();
    cmd.args(["events", "--interval", "100ms", &id])
        .stdout(fs::File::create(&log).expect("create"))
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn events");
    thread::sleep(Duration::from_millis(550));
    rt.kill(&id, "KILL").assert_success("kill");
    let end = Instant::now() + WAIT;
    while child.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < end,
            "events did not stop with the container"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let lines = fs::read_to_string(&log).expect("read");
    let n = lines
        .lines()
        .filter(|l| l.starts_with("{\"type\":\"stats\""))
        .count();
    assert!(n >= 3, "{n} stats lines:\n{lines}");
    rt.delete(&id).assert_success("delete");
    rt.assert_no_leaks(&id, &bundle);
}

#[test]
fn oom_kill_is_an_event() {
    if skip_unless_root() {
        return;
    }
    // Grow a shell variable past the limit.
    let script = "sleep 0.5; x=a; while true; do x=$x$x; done";
    let mut bundle = Bundle::new().args(&["sh", "-c", script]);
    bundle.config_mut()["linux"]["resources"]["memory"] =
        json!({"limit": 16777216, "swap": 16777216});
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &bundle).assert_success("create");
    let log = bundle.path().join("events.out");
    let mut cmd = rt.command();
    cmd.args(["events", "--interval", "200ms", &id])
        .stdout(fs::File::create(&log).expect("create"))
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn events");
    rt.start(&id).assert_success("start");
    let end = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            panic!(
                "events still running: {}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
    let lines = fs::read_to_string(&log).expect("read");
    assert!(
        lines
            .lines()
            .any(|l| l == format!("{{\"type\":\"oom\",\"id\":\"{id}\"}}")),
        "no oom event:\n{lines}"
    );
    rt.delete(&id).assert_success("delete");
    rt.assert_no_leaks(&id, &bundle);
}

#[test]
fn no_cgroup_leaks_however_containers_end() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&["sh", "-c", "sleep 100 & sleep 100"]);
    let mut failing = Bundle::new().args(&["true"]);
    failing.config_mut()["hooks"] = json!({"prestart": [{"path": "/bin/false"}]});
    let rt = Runtime::skiff();
    for i in 0..12 {
        let id = rt.new_id();
        rt.create(&id, &bundle).assert_success("create");
        match i % 4 {
            // Killed with SIGKILL, then deleted.
            0 => {
                rt.start(&id).assert_success("start");
                rt.kill(&id, "KILL").assert_success("kill");
                rt.wait_for_status(&id, "stopped", WAIT);
                rt.delete(&id).assert_success("delete");
            }
            // Paused, then deleted with --force.
            1 => {
                rt.start(&id).assert_success("start");
                rt.run(&["pause", &id]).assert_success("pause");
                rt.delete_force(&id).assert_success("delete --force");
            }
            // Never started: delete kills it.
            2 => {
                rt.delete(&id).assert_success("delete created");
            }
            // init killed behind our back, children left in the cgroup.
            _ => {
                rt.start(&id).assert_success("start");
                let pid = pid_of(&rt, &id);
                Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .expect("kill");
                rt.wait_for_status(&id, "stopped", WAIT);
                rt.delete(&id).assert_success("delete after init died");
            }
        }
        rt.assert_no_leaks(&id, &bundle);
    }
    // create fails after the cgroup exists (a prestart hook fails).
    let id = rt.new_id();
    let out = rt.create(&id, &failing);
    assert_ne!(out.status.code(), Some(0));
    rt.assert_no_leaks(&id, &failing);
}

/// The resource-control acceptance run: 200 containers created, run and
/// deleted (some killed with SIGKILL, some paused and then deleted with
/// --force), and afterwards not one cgroup directory of theirs on the host.
#[test]
fn two_hundred_containers_leave_no_cgroup_behind() {
    if skip_unless_root() {
        return;
    }
    let sleeper = Bundle::new().args(&["sleep", "100"]);
    let quick = Bundle::new().args(&["true"]);
    let rt = Runtime::skiff();
    let mut ids = Vec::new();
    for i in 0..200 {
        let id = rt.new_id();
        match i % 4 {
            // Run to completion in the foreground (run deletes it).
            0 => {
                rt.run_container_as(&id, &quick).assert_success("run");
            }
            // Killed with SIGKILL, then deleted.
            1 => {
                rt.create(&id, &sleeper).assert_success("create");
                rt.start(&id).assert_success("start");
                rt.kill(&id, "KILL").assert_success("kill");
                rt.wait_for_status(&id, "stopped", WAIT);
                rt.delete(&id).assert_success("delete");
            }
            // Paused, then deleted with --force.
            2 => {
                rt.create(&id, &sleeper).assert_success("create");
                rt.start(&id).assert_success("start");
                rt.run(&["pause", &id]).assert_success("pause");
                rt.delete_force(&id).assert_success("delete --force");
            }
            // Running, deleted with --force.
            _ => {
                rt.create(&id, &sleeper).assert_success("create");
                rt.start(&id).assert_success("start");
                rt.delete_force(&id).assert_success("delete --force");
            }
        }
        ids.push((id, if i % 4 == 0 { &quick } else { &sleeper }));
    }
    for (id, bundle) in &ids {
        rt.assert_no_leaks(id, bundle);
    }
}

/// The freezer directory of absolute cgroup path `p` on this host.
fn freezer_dir(p: &str) -> (PathBuf, &'static str, &'static str) {
    let p = p.trim_start_matches('/');
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        (Path::new("/sys/fs/cgroup").join(p), "cgroup.freeze", "1")
    } else {
        (
            Path::new("/sys/fs/cgroup/freezer").join(p),
            "freezer.state",
            "FROZEN",
        )
    }
}

// runc 1.2 refuses both (1.1.5 here only warns "container's cgroup is not
// empty ... DEPRECATED"); the words are runc 1.2's.
#[test]
fn a_busy_or_frozen_cgroup_is_refused() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let shared = format!("/skiff-it-shared-{}", std::process::id());
    let mut b = Bundle::new().args(&["sleep", "100"]);
    b.config_mut()["linux"]["cgroupsPath"] = json!(shared);
    let (a, c) = (rt.new_id(), rt.new_id());
    rt.create(&a, &b).assert_success("create");
    rt.start(&a).assert_success("start");
    let out = rt.create(&c, &b);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr_text());
    assert!(
        out.stderr_text()
            .contains("container's cgroup is not empty: 1 process(es) found"),
        "{}",
        out.stderr_text()
    );
    rt.assert_no_leaks(&c, &b);
    assert_eq!(rt.state(&a)["status"], "running", "the first one was hurt");
    rt.delete_force(&a).assert_success("delete --force");
    rt.assert_no_leaks(&a, &b);

    let frozen = format!("/skiff-it-frozen-{}", std::process::id());
    let (dir, file, value) = freezer_dir(&frozen);
    fs::create_dir_all(&dir).expect("mkdir freezer cgroup");
    fs::write(dir.join(file), value).expect("freeze");
    b.config_mut()["linux"]["cgroupsPath"] = json!(frozen);
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    let _ = fs::write(dir.join(file), if value == "1" { "0" } else { "THAWED" });
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr_text());
    assert!(
        out.stderr_text()
            .contains("container's cgroup unexpectedly frozen"),
        "{}",
        out.stderr_text()
    );
    rt.assert_no_leaks(&id, &b);
    assert!(dir.exists(), "a cgroup that was not ours was removed");
    for h in fs::read_dir("/sys/fs/cgroup").expect("ls").flatten() {
        let _ = fs::remove_dir(h.path().join(frozen.trim_start_matches('/')));
    }
    let _ = fs::remove_dir(&dir);
}

#[test]
fn the_root_cgroup_is_refused() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let mut b = Bundle::new();
    b.config_mut()["linux"]["cgroupsPath"] = json!("/");
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("root cgroup"),
        "{}",
        text(&out.stderr)
    );
    rt.assert_no_leaks(&id, &b);
}

#[test]
fn create_killed_midway_is_cleaned_up_by_delete_force() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let b = Bundle::new().args(&["sleep", "100"]);
    b.flush();
    for i in 0..30u64 {
        let id = rt.new_id();
        let mut cmd = rt.command();
        cmd.args(["create", "--bundle", b.path_str(), &id]);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn create");
        // Kill it at a different point of its work each time.
        thread::sleep(Duration::from_micros(300 * i));
        let _ = child.kill();
        let _ = child.wait();
        rt.delete_force(&id)
            .assert_success("delete --force after a killed create");
        rt.assert_no_leaks(&id, &b);
    }
}

/// Linux (major, minor) from uname -r.
fn kernel_version() -> (u32, u32) {
    let r = fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let mut it = r.trim().split(['.', '-']).map(|x| x.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// memory.kernelTCP is applied on cgroup v1, where memory.kmem.tcp exists;
/// memory.kernel is applied where the kernel keeps it (v1, Linux < 5.16),
/// else it draws runc's warning, word for word: "Kernel memory settings are
/// ignored and will be removed" (runc 1.1+, which applies neither), and the
/// container runs. On cgroup v2 both draw that one warning.
#[test]
fn kernel_memory_applied_where_honoured_else_runcs_warning() {
    if skip_unless_root() {
        return;
    }
    const WARN: &str = "Kernel memory settings are ignored and will be removed";
    let mut b = Bundle::new().args(&["sleep", "30"]);
    b.config_mut()["linux"]["resources"]["memory"] =
        json!({"kernel": 10485760, "kernelTCP": 20971520});
    // runc 1.1.5 warns in the same words (and applies neither).
    if let Some(runc) = Runtime::runc() {
        let id = runc.new_id();
        let out = runc.create(&id, &b);
        out.assert_success("runc create");
        assert!(
            out.stderr_text().contains(WARN),
            "runc: {}",
            out.stderr_text()
        );
    }
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    out.assert_success("create with kernel memory limits");
    let err = out.stderr_text();
    let old_kmem = kernel_version() < (5, 16);
    if unified_host() {
        assert!(err.contains(WARN), "v2: {err}");
    } else {
        let mem = host_dir(pid_of(&rt, &id), "memory");
        assert_eq!(read(&mem, "memory.kmem.tcp.limit_in_bytes"), "20971520");
        if old_kmem {
            assert_eq!(read(&mem, "memory.kmem.limit_in_bytes"), "10485760");
            assert!(!err.contains(WARN), "honoured, yet: {err}");
        } else {
            assert_ne!(read(&mem, "memory.kmem.limit_in_bytes"), "10485760");
            assert!(
                err.contains(WARN),
                "ignored by Linux >= 5.16, no warning: {err}"
            );
        }
    }
    rt.delete_force(&id).assert_success("delete");
    rt.assert_no_leaks(&id, &b);
}
