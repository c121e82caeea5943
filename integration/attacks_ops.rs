//! Attacks from issue 9 on the runtime's own operations (exec capabilities,
//! device cgroup defaults, cleanup of a failed create, delete of a container
//! with corrupt state, flag bounds, pid files, error echo): each test drives
//! the attack the way a hostile bundle, caller or container would, and checks
//! what is left on the host. runc (/usr/sbin/runc) is the oracle where it has
//! the behaviour we want.

use crate::security::{hex, status_field};
use crate::support::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// A bundle whose process sleeps, to exec into.
fn sleeper() -> Bundle {
    Bundle::new().args(&["sleep", "1000"])
}

/// Run `bundle` detached under `rt` as a fresh ID and wait until it runs.
fn start_detached(rt: &Runtime, bundle: &Bundle) -> String {
    let id = rt.new_id();
    rt.create(&id, bundle).assert_success("create");
    rt.start(&id).assert_success("start");
    rt.wait_for_status(&id, "running", Duration::from_secs(10));
    id
}

// ---------------------------------------------------------------------------
// Item 4: exec --cap and the inheritable/ambient sets (CVE-2022-29162)

/// The capability sets of a process started by `exec --cap ...`.
fn exec_cap_sets(rt: &Runtime, bundle: &Bundle) -> BTreeMap<&'static str, u64> {
    let id = start_detached(rt, bundle);
    let out = rt.run(&[
        "exec",
        "--cap",
        "CAP_KILL",
        "--cap",
        "CAP_AUDIT_WRITE",
        "--cap",
        "CAP_NET_ADMIN",
        &id,
        "cat",
        "/proc/self/status",
    ]);
    out.assert_success(&format!("{} exec --cap", rt.bin().display()));
    let status = out.stdout_text();
    ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .into_iter()
        .map(|k| (k, hex(&status_field(&status, k))))
        .collect()
}

#[test]
fn exec_cap_never_fills_inheritable_or_ambient() {
    if skip_unless_root() {
        return;
    }
    let bundle = sleeper();
    let rt = Runtime::skiff();
    let ours = exec_cap_sets(&rt, &bundle);
    // The config has no inheritable set: nothing may reach it or ambient.
    assert_eq!(ours["CapInh"], 0, "CapInh: {ours:x?}");
    assert_eq!(ours["CapAmb"], 0, "CapAmb: {ours:x?}");
    const NET_ADMIN: u64 = 1 << 12;
    assert_ne!(
        ours["CapEff"] & NET_ADMIN,
        0,
        "CapEff lacks --cap: {ours:x?}"
    );
    if let Some(runc) = Runtime::runc() {
        let theirs = exec_cap_sets(&runc, &bundle);
        assert_eq!(ours, theirs, "skiff vs runc capability sets of exec --cap");
    }
}

// ---------------------------------------------------------------------------
// Item 5: no linux.resources.devices still means deny-all plus runc's defaults

/// A bundle with no `linux.resources` at all (so no device rules).
fn without_device_rules(b: Bundle) -> Bundle {
    let mut b = b;
    b.config_mut()["linux"]
        .as_object_mut()
        .expect("linux is an object")
        .remove("resources");
    b
}

/// A host device outside runc's allow-list that this host lets root read:
/// (node type, major, minor). A disk first (the first of /proc/partitions);
/// some sandboxed hosts refuse even root that, so then /dev/cpu_dma_latency
/// (c 10:259, a harmless read of 4 bytes). None, after saying why, if neither.
fn forbidden_host_device() -> Option<(char, u64, u64)> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let parts = std::fs::read_to_string("/proc/partitions").unwrap_or_default();
    let disk = parts
        .lines()
        .skip(2)
        .find_map(|l| l.split_whitespace().nth(3).map(|n| format!("/dev/{n}")));
    for path in disk
        .iter()
        .map(String::as_str)
        .chain(["/dev/cpu_dma_latency"])
    {
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        let readable = std::fs::File::open(path).and_then(|mut f| f.read(&mut [0u8; 1]));
        if readable.is_err() {
            eprintln!("{path}: not readable by root on this host, trying the next device");
            continue;
        }
        let kind = if meta.file_type().is_block_device() {
            'b'
        } else {
            'c'
        };
        let rdev = meta.rdev();
        return Some((kind, libc::major(rdev) as u64, libc::minor(rdev) as u64));
    }
    eprintln!("skipping the device attack: no host disk or /dev/cpu_dma_latency readable here");
    None
}

#[test]
fn no_device_rules_still_keep_host_devices_out_of_reach() {
    if skip_unless_root() {
        return;
    }
    let Some((kind, major, minor)) = forbidden_host_device() else {
        return;
    };
    let script = format!(
        "mknod /dev/probe {kind} {major} {minor} || echo MKNOD_FAILED; \
         if head -c 1 /dev/probe >/dev/null; then echo READ_OK; else echo READ_DENIED; fi; \
         head -c 1 /dev/zero | wc -c"
    );
    let mut b = without_device_rules(Bundle::new().args(&["sh", "-c", &script]));
    let caps = serde_json::json!(["CAP_MKNOD", "CAP_KILL", "CAP_AUDIT_WRITE"]);
    b.config_mut()["process"]["capabilities"] =
        serde_json::json!({"bounding": caps, "effective": caps, "permitted": caps});
    let rt = Runtime::skiff();
    let (code, out, err) = rt.run_leak_checked(&b);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    // runc's default rules allow mknod of any node ("b *:* m") but not its use.
    assert!(!out.contains("MKNOD_FAILED"), "mknod refused: {out}{err}");
    assert!(
        out.contains("READ_DENIED"),
        "host device readable: {out}{err}"
    );
    assert!(err.contains("Operation not permitted"), "{err}");
    // The default allow-list is there: /dev/zero still reads.
    assert!(out.ends_with("1\n"), "{out}");
}

/// The devices.list of the (v1) devices cgroup of process `pid`.
fn devices_list(pid: i64) -> Option<Vec<String>> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let rel = cg.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
        ctl.split(',')
            .any(|c| c == "devices")
            .then(|| path.to_string())
    })?;
    let list = std::fs::read_to_string(format!("/sys/fs/cgroup/devices{rel}/devices.list")).ok()?;
    let mut v: Vec<String> = list.lines().map(String::from).collect();
    // The kernel keeps the exceptions as a set; the order of writes is not part of it.
    v.sort();
    Some(v)
}

fn created_devices_list(rt: &Runtime, bundle: &Bundle) -> Vec<String> {
    let id = rt.new_id();
    rt.create(&id, bundle).assert_success("create");
    let pid = rt.state(&id)["pid"].as_i64().expect("state.pid");
    let list = devices_list(pid).expect("devices.list of the container's cgroup");
    rt.delete_force(&id).assert_success("delete --force");
    list
}

#[test]
fn no_device_rules_give_runcs_device_list() {
    if skip_unless_root() {
        return;
    }
    if !std::path::Path::new("/sys/fs/cgroup/devices/devices.list").exists() {
        eprintln!("skipping: no cgroup v1 devices hierarchy (the v2 program is checked by the mknod test)");
        return;
    }
    let b = without_device_rules(sleeper());
    let rt = Runtime::skiff();
    let ours = created_devices_list(&rt, &b);
    assert!(
        !ours.iter().any(|l| l == "a *:* rwm"),
        "allow-all: {ours:?}"
    );
    if let Some(runc) = Runtime::runc() {
        assert_eq!(
            ours,
            created_devices_list(&runc, &b),
            "skiff vs runc devices.list"
        );
    }
}

// ---------------------------------------------------------------------------
// Item 3: a failed create must not kill another container in its cgroup

#[test]
fn failed_create_spares_a_container_sharing_its_cgroup() {
    if skip_unless_root() {
        return;
    }
    let mut a = sleeper();
    let mut b = sleeper();
    let rt = Runtime::skiff();
    let id_a = rt.new_id();
    let path = format!("/skiff-shared-{id_a}");
    a.config_mut()["linux"]["cgroupsPath"] = serde_json::json!(path);
    b.config_mut()["linux"]["cgroupsPath"] = serde_json::json!(path);
    // B fails in init, after it was placed in the shared cgroup.
    b.config_mut()["mounts"]
        .as_array_mut()
        .expect("mounts")
        .push(serde_json::json!({"destination": "/x", "type": "bind",
            "source": format!("/nonexistent-{id_a}"), "options": ["rbind"]}));
    rt.create(&id_a, &a).assert_success("create A");
    rt.start(&id_a).assert_success("start A");
    let pid_a = rt.wait_for_status(&id_a, "running", Duration::from_secs(10))["pid"].clone();
    let id_b = rt.new_id();
    let out = rt.create(&id_b, &b);
    assert_ne!(
        out.status.code(),
        Some(0),
        "create B with a bad mount succeeded"
    );
    let st = rt.state(&id_a);
    assert_eq!(st["status"], "running", "A after B's failed create: {st}");
    assert_eq!(st["pid"], pid_a);
    rt.delete_force(&id_a).assert_success("delete A");
    rt.assert_no_leaks(&id_a, &a);
    let left: Vec<_> = ["memory", "pids", "cpu", "devices", "freezer", "unified"]
        .iter()
        .map(|h| std::path::PathBuf::from(format!("/sys/fs/cgroup/{h}{path}")))
        .filter(|p| p.exists())
        .collect();
    assert!(
        left.is_empty(),
        "shared cgroup left after both are gone: {left:?}"
    );
}

// ---------------------------------------------------------------------------
// Item 11: --preserve-fds bounds, and pid files that are not regular files

#[test]
fn preserve_fds_that_cannot_be_fds_are_refused() {
    if skip_unless_root() {
        return;
    }
    let b = sleeper();
    let rt = Runtime::skiff();
    for n in ["4294967295", "4294967293", "2147483647", "100000000"] {
        let id = rt.new_id();
        let out = rt.create_with(&id, &b, &["--preserve-fds", n]);
        let err = out.stderr_text();
        assert_eq!(
            out.status.code(),
            Some(1),
            "create --preserve-fds {n}: {err}"
        );
        assert!(
            err.contains("--preserve-fds"),
            "error does not name the flag: {err}"
        );
        rt.assert_no_leaks(&id, &b);
    }
    let id = start_detached(&rt, &b);
    let out = rt.run(&["exec", "--preserve-fds", "4294967295", &id, "true"]);
    // exec that fails before its process starts exits 255, as runc's does.
    assert_eq!(out.status.code(), Some(255), "exec: {}", out.stderr_text());
    assert!(
        out.stderr_text().contains("--preserve-fds"),
        "{}",
        out.stderr_text()
    );
}

/// A fifo and a char device (1:7, what /dev/full is) made in a private
/// directory: the host's /dev is never touched.
fn non_regular_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut v = Vec::new();
    for (name, mode, dev) in [
        ("fifo", libc::S_IFIFO, 0),
        ("full", libc::S_IFCHR, libc::makedev(1, 7)),
    ] {
        let p = dir.join(name);
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        let r = unsafe { libc::mknod(c.as_ptr(), mode | 0o600, dev) };
        assert_eq!(
            r,
            0,
            "mknod {}: {}",
            p.display(),
            std::io::Error::last_os_error()
        );
        v.push(p);
    }
    v.push(dir.to_path_buf());
    v
}

fn assert_refused(out: &std::process::Output, what: &str, path: &std::path::Path) {
    let err = out.stderr_text();
    assert_eq!(
        out.status.code(),
        Some(if what.starts_with("exec") { 255 } else { 1 }),
        "{what} --pid-file {}: {err}",
        path.display()
    );
    assert!(
        err.contains("--pid-file"),
        "{what}: error does not name the flag: {err}"
    );
}

#[test]
fn pid_file_never_replaces_a_device_fifo_or_directory() {
    if skip_unless_root() {
        return;
    }
    use std::os::unix::fs::FileTypeExt;
    let tmp = crate::security::TempDir::new("pidfile");
    let targets = non_regular_files(tmp.path());
    let b = sleeper();
    let rt = Runtime::skiff();
    let running = start_detached(&rt, &b);
    for t in &targets {
        let ts = t.to_str().expect("utf-8 path");
        let id = rt.new_id();
        assert_refused(&rt.create_with(&id, &b, &["--pid-file", ts]), "create", t);
        rt.assert_no_leaks(&id, &b);
        let id = rt.new_id();
        let out = rt.run(&["run", "-d", "--pid-file", ts, "--bundle", b.path_str(), &id]);
        assert_refused(&out, "run -d", t);
        let out = rt.run(&["exec", "-d", "--pid-file", ts, &running, "true"]);
        assert_refused(&out, "exec -d", t);
    }
    let ft = |p: &std::path::Path| std::fs::symlink_metadata(p).unwrap().file_type();
    assert!(ft(&targets[0]).is_fifo(), "the fifo was replaced");
    assert!(ft(&targets[1]).is_char_device(), "the device was replaced");
}

// ---------------------------------------------------------------------------
// Item 14: error messages echo input bounded and escaped

#[test]
fn errors_echo_hostile_input_bounded_and_escaped() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let big = "A".repeat(10 << 20);
    let cases = [
        // A 10 MB capability name (the warning quotes it: runc 1.1+ ignores
        // unknown names with a warning rather than failing).
        format!("CAP_{big}"),
        // NUL and a terminal escape.
        "CAP_\u{0}\u{1b}[31mRED".to_string(),
    ];
    for cap in cases {
        let mut b = sleeper();
        b.config_mut()["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .expect("bounding")
            .push(serde_json::json!(cap));
        b.flush();
        let id = rt.new_id();
        let out = rt.run(&["create", "--bundle", b.path_str(), &id]);
        out.assert_success("create with a hostile capability name");
        rt.delete_force(&id).assert_success("delete");
        let stderr = out.stderr;
        let log_path = b.path().join("log.json");
        let id = rt.new_id();
        rt.run_json_log(&log_path, &["create", "--bundle", b.path_str(), &id])
            .assert_success("create with --log");
        rt.delete_force(&id).assert_success("delete");
        let log = std::fs::read(&log_path).unwrap_or_default();
        for (what, bytes) in [("stderr", &stderr), ("log", &log)] {
            assert!(bytes.len() < 8192, "{what}: {} bytes", bytes.len());
            assert!(!bytes.contains(&0), "{what}: raw NUL: {:?}", text(bytes));
            assert!(!bytes.contains(&0x1b), "{what}: raw ESC: {:?}", text(bytes));
        }
        assert!(text(&stderr).contains("CAP_"), "{}", text(&stderr));
        let last = text(&log)
            .lines()
            .last()
            .map(String::from)
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&last).expect("log line is JSON");
        assert_eq!(v["level"], "warning", "{last}");
        // JSON could escape a NUL as \u0000; the message itself must not hold one.
        assert!(!v["msg"].as_str().unwrap_or("").contains('\0'), "{last}");
    }
}

// ---------------------------------------------------------------------------
// Item 10: delete --force of a container whose state.json is unreadable

/// The cgroup directories of process `pid`, one per hierarchy (v1 and v2).
fn cgroup_dirs_of(pid: i64) -> Vec<std::path::PathBuf> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    cg.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
            let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
            let hier = match ctl {
                // The "0::" line: /sys/fs/cgroup itself on a unified host.
                "" if unified => String::new(),
                "" => "unified/".to_string(),
                c => format!("{}/", c.strip_prefix("name=").unwrap_or(c)),
            };
            let dir = std::path::PathBuf::from(format!(
                "/sys/fs/cgroup/{hier}{}",
                path.trim_start_matches('/')
            ));
            // Skip the hierarchies where the container sits in the root or in ours.
            (path != "/" && dir.exists()).then_some(dir)
        })
        .filter(|d| d.to_string_lossy().contains("skiffit"))
        .collect()
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !matches!(
            s.rsplit(") ").next().and_then(|r| r.chars().next()),
            Some('Z' | 'X')
        )
    })
}

/// Corrupt the state of a running container with `corrupt`, then check that
/// `delete --force` leaves no process and no cgroup of it, or refuses clearly
/// and keeps the state to retry.
fn delete_corrupt(rt: &Runtime, bundle: &Bundle, what: &str, corrupt: impl Fn(&std::path::Path)) {
    let id = start_detached(rt, bundle);
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    let cgroups = cgroup_dirs_of(pid);
    assert!(!cgroups.is_empty(), "{what}: no cgroup found for {pid}");
    let state = rt.root().join(&id).join("state.json");
    corrupt(&state);
    let out = rt.delete_force(&id);
    let err = out.stderr_text();
    if out.status.code() == Some(0) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !alive(pid),
            "{what}: delete --force exited 0, init {pid} still runs: {err}"
        );
        let left: Vec<_> = cgroups.iter().filter(|d| d.exists()).collect();
        assert!(left.is_empty(), "{what}: cgroups left: {left:?}: {err}");
        rt.assert_no_leaks(&id, bundle);
    } else {
        assert!(err.contains("state"), "{what}: unclear refusal: {err}");
        assert!(
            rt.root().join(&id).exists(),
            "{what}: refused but state removed"
        );
    }
}

#[test]
fn delete_force_with_unreadable_state_leaves_nothing_running() {
    if skip_unless_root() {
        return;
    }
    let b = sleeper();
    let rt = Runtime::skiff();
    let write = |data: &'static [u8]| {
        move |p: &std::path::Path| std::fs::write(p, data).expect("write state.json")
    };
    delete_corrupt(&rt, &b, "garbage", write(b"\x00\xffnot json at all"));
    delete_corrupt(&rt, &b, "empty", write(b""));
    delete_corrupt(&rt, &b, "null", write(b"null"));
    delete_corrupt(&rt, &b, "truncated", |p: &std::path::Path| {
        let data = std::fs::read(p).expect("read state.json");
        std::fs::write(p, &data[..data.len() / 2]).expect("truncate");
    });
    delete_corrupt(&rt, &b, "directory", |p: &std::path::Path| {
        std::fs::remove_file(p).expect("rm state.json");
        std::fs::create_dir(p).expect("mkdir state.json");
    });
}

#[test]
fn delete_force_with_state_and_config_unreadable_refuses_and_keeps_state() {
    if skip_unless_root() {
        return;
    }
    let b = sleeper();
    let rt = Runtime::skiff();
    let id = start_detached(&rt, &b);
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    let dir = rt.root().join(&id);
    let config = std::fs::read(dir.join("config.json")).expect("frozen config.json");
    std::fs::write(dir.join("state.json"), b"{").unwrap();
    std::fs::write(dir.join("config.json"), b"{").unwrap();
    let out = rt.delete_force(&id);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains("unreadable"),
        "{}",
        out.stderr_text()
    );
    assert!(dir.exists(), "state removed after a refusal");
    assert!(alive(pid), "refused, yet the container was killed");
    // The retry the message asks for, once the config is readable again.
    std::fs::write(dir.join("config.json"), config).unwrap();
    rt.delete_force(&id).assert_success("delete --force again");
    assert!(
        !alive(pid) || {
            std::thread::sleep(Duration::from_millis(500));
            !alive(pid)
        }
    );
    rt.assert_no_leaks(&id, &b);
}
