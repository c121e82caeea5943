//! Confinement: capabilities, no_new_privs, LSM requests, personality,
//! scheduler, I/O priority, CPU affinity and oom score, each checked from
//! inside the container. Seccomp is in seccomp.rs, the runc advisories in
//! hardening.rs; both share the helpers here.

use crate::support::*;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// (exit code, stdout, stderr) of `run` of `bundle`, checking nothing leaked.
pub(crate) fn run(bundle: &Bundle) -> (i32, String, String) {
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let out = rt.run_container_as(&id, bundle);
    let r = (
        out.status.code().unwrap_or(-1),
        out.stdout_text(),
        out.stderr_text(),
    );
    rt.assert_no_leaks(&id, bundle);
    r
}

pub(crate) fn sh(script: &str) -> Bundle {
    Bundle::new().args(&["sh", "-c", script])
}

/// The value of `Key:` in /proc/self/status output.
pub(crate) fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

pub(crate) fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

const CAP_KILL: u64 = 1 << 5;
const CAP_NET_BIND_SERVICE: u64 = 1 << 10;
const CAP_SYS_RESOURCE: u64 = 1 << 24;
const CAP_AUDIT_WRITE: u64 = 1 << 29;

/// Our own bounding set: what any container here can be granted at most.
fn host_bounding() -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap();
    hex(&status_field(&s, "CapBnd"))
}

/// Every capability name the kernel knows (oci-spec's list, up to cap_last_cap).
pub(crate) fn all_cap_names() -> Vec<&'static str> {
    let names = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
    let last: usize = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    names[..=last.min(names.len() - 1)].to_vec()
}

pub(crate) fn set_caps(b: &mut Bundle, sets: Value) {
    b.config_mut()["process"]["capabilities"] = sets;
}

pub(crate) fn seccomp(b: &mut Bundle, profile: Value) {
    b.config_mut()["linux"]["seccomp"] = profile;
}

/// A private scratch directory, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = PathBuf::from(format!(
            "/tmp/skiff-sec-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn wait_for(path: &Path, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

pub(crate) fn bind(b: &mut Bundle, host: &Path, dest: &str) {
    b.config_mut()["mounts"].as_array_mut().unwrap().push(
        json!({"destination": dest, "type": "bind", "source": host, "options": ["rbind", "rw"]}),
    );
}

// ---------------------------------------------------------------------------
// Capabilities and no_new_privs

#[test]
fn capability_sets_are_exactly_the_configured_ones() {
    if skip_unless_root() {
        return;
    }
    let b = sh("cat /proc/self/status");
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    let want = CAP_AUDIT_WRITE | CAP_KILL | CAP_NET_BIND_SERVICE;
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(hex(&status_field(&out, set)), want, "{set}");
    }
    assert_eq!(hex(&status_field(&out, "CapInh")), 0);
    assert_eq!(hex(&status_field(&out, "CapAmb")), 0);
}

#[test]
fn non_root_user_gets_ambient_capabilities() {
    if skip_unless_root() {
        return;
    }
    let mut b = sh("cat /proc/self/status");
    b.config_mut()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let c = json!(["CAP_NET_BIND_SERVICE", "CAP_KILL"]);
    set_caps(
        &mut b,
        json!({"bounding": c, "permitted": c, "effective": c, "inheritable": c,
               "ambient": ["CAP_NET_BIND_SERVICE"]}),
    );
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    // Across execve a non-root process keeps only its ambient capabilities.
    assert_eq!(
        status_field(&out, "Uid").split_whitespace().next(),
        Some("1000")
    );
    assert_eq!(hex(&status_field(&out, "CapAmb")), CAP_NET_BIND_SERVICE);
    assert_eq!(hex(&status_field(&out, "CapEff")), CAP_NET_BIND_SERVICE);
    assert_eq!(hex(&status_field(&out, "CapPrm")), CAP_NET_BIND_SERVICE);
    assert_eq!(
        hex(&status_field(&out, "CapInh")),
        CAP_NET_BIND_SERVICE | CAP_KILL
    );
    assert_eq!(
        hex(&status_field(&out, "CapBnd")),
        CAP_NET_BIND_SERVICE | CAP_KILL
    );
}

#[test]
fn non_root_user_without_ambient_has_no_effective_capabilities() {
    if skip_unless_root() {
        return;
    }
    let mut b = sh("cat /proc/self/status");
    b.config_mut()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(hex(&status_field(&out, "CapEff")), 0);
    assert_eq!(hex(&status_field(&out, "CapPrm")), 0);
}

#[test]
fn ungrantable_capabilities_warn_and_the_container_runs() {
    if skip_unless_root() {
        return;
    }
    // Everything the kernel knows, CAP_SYS_RESOURCE included: on this host it
    // is not in our bounding set, and the runtime-spec says warn, not fail.
    let mut b = sh("cat /proc/self/status");
    let all = json!(all_cap_names());
    set_caps(
        &mut b,
        json!({"bounding": all, "permitted": all, "effective": all, "inheritable": all}),
    );
    b.flush();
    let rt = Runtime::skiff();
    let log = b.path().join("log.json");
    let id = rt.new_id();
    let out = rt.run_json_log(&log, &["run", "--bundle", b.path_str(), &id]);
    out.assert_success("run with every capability");
    let got = hex(&status_field(&out.stdout_text(), "CapBnd"));
    assert_eq!(
        got,
        host_bounding(),
        "bounding set is everything we could grant"
    );
    if host_bounding() & CAP_SYS_RESOURCE == 0 {
        let log = fs::read_to_string(&log).unwrap_or_default();
        let warned = log.lines().any(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_default();
            v["level"] == "warning"
                && v["msg"]
                    .as_str()
                    .is_some_and(|m| m.contains("CAP_SYS_RESOURCE"))
        });
        assert!(
            warned,
            "no warning about CAP_SYS_RESOURCE in the log:\n{log}"
        );
        assert_eq!(got & CAP_SYS_RESOURCE, 0);
    }
}

/// The `level=warning` lines' messages in runc's text log format.
fn warnings(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(" level=warning "))
        .filter_map(|l| {
            l.split_once(" msg=")
                .map(|(_, m)| m.trim_matches('"').to_string())
        })
        .collect()
}

/// Runtime-spec 1.1+: a capability name the runtime cannot map MUST be
/// logged as a warning and SHOULD NOT fail the container; runc (1.1.5, and
/// the same words through 1.5) prints one warning naming them, sorted, and
/// ignores them. Ambient capabilities that cannot be raised (CAP_NET_ADMIN is
/// not inheritable here) are dropped with no warning at all.
#[test]
fn unknown_capability_names_warn_and_are_ignored() {
    if skip_unless_root() {
        return;
    }
    let mut b = sh("grep Cap /proc/self/status");
    let known = ["CAP_KILL", "CAP_AUDIT_WRITE", "CAP_NET_ADMIN"];
    let with_unknown = json!([
        "CAP_KILL",
        "CAP_FOO",
        "CAP_AUDIT_WRITE",
        "CAP_NET_ADMIN",
        "CAP_BAR",
        "CAP_FOO"
    ]);
    set_caps(
        &mut b,
        json!({"bounding": with_unknown, "effective": with_unknown, "permitted": known,
               "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL", "CAP_NET_ADMIN"]}),
    );
    let mut sets = Vec::new();
    let mut rts = vec![("skiff", Runtime::skiff())];
    rts.extend(Runtime::runc().map(|r| ("runc", r)));
    for (name, rt) in rts {
        let (st, out, err) = rt.run_container(&b);
        assert!(st.success(), "{name}: {err}");
        assert_eq!(
            warnings(&err),
            ["ignoring unknown or unavailable capabilities: [CAP_BAR CAP_FOO]"],
            "{name}: {err}"
        );
        assert_eq!(hex(&status_field(&out, "CapAmb")), CAP_KILL, "{name}");
        sets.push(out);
    }
    if sets.len() == 2 {
        assert_eq!(sets[0], sets[1], "skiff's capability sets, then runc's");
    }
}

/// `exec --cap` with a name that is no capability (runc looks names up
/// exactly, so `net_admin` is unknown too): runc 1.1.5 warns with the same
/// words and runs the process with the rest.
#[test]
fn exec_cap_with_unknown_names_warns_and_runs() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&["sleep", "1000"]);
    let mut rts = vec![("skiff", Runtime::skiff())];
    rts.extend(Runtime::runc().map(|r| ("runc", r)));
    let mut sets = Vec::new();
    for (name, rt) in &rts {
        let id = rt.new_id();
        rt.create(&id, &bundle).assert_success("create");
        rt.start(&id).assert_success("start");
        let out = rt.run(&[
            "exec",
            "--cap",
            "CAP_NOPE",
            "--cap",
            "net_admin",
            "--cap",
            "CAP_SYS_ADMIN",
            &id,
            "grep",
            "Cap",
            "/proc/self/status",
        ]);
        out.assert_success(&format!("{name} exec --cap CAP_NOPE"));
        assert_eq!(
            warnings(&out.stderr_text()),
            ["ignoring unknown or unavailable capabilities: [CAP_NOPE net_admin]"],
            "{name}"
        );
        let bnd = hex(&status_field(&out.stdout_text(), "CapBnd"));
        assert_ne!(bnd & (1 << 21), 0, "{name}: CAP_SYS_ADMIN added");
        assert_eq!(bnd & (1 << 12), 0, "{name}: net_admin is not CAP_NET_ADMIN");
        sets.push(out.stdout_text());
    }
    if sets.len() == 2 {
        assert_eq!(sets[0], sets[1], "skiff's capability sets, then runc's");
    }
}

#[test]
fn no_new_privileges_follows_the_config() {
    if skip_unless_root() {
        return;
    }
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let mut b = sh("grep NoNewPrivs /proc/self/status");
        b.config_mut()["process"]["noNewPrivileges"] = json!(nnp);
        let (code, out, err) = run(&b);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.trim(), format!("NoNewPrivs:\t{want}"));
    }
}

// ---------------------------------------------------------------------------
// LSMs and per-process settings

#[test]
fn lsm_requests_without_the_lsm_fail_clearly() {
    if skip_unless_root() {
        return;
    }
    let apparmor = Path::new("/sys/kernel/security/apparmor").is_dir();
    let selinux = Path::new("/sys/fs/selinux/enforce").exists();
    if !apparmor {
        let mut b = sh("true");
        b.config_mut()["process"]["apparmorProfile"] = json!("acme_secure_profile");
        let (code, _, err) = run(&b);
        assert_ne!(code, 0);
        assert!(
            err.contains("AppArmor is not enabled") && err.contains("acme_secure_profile"),
            "{err}"
        );
    }
    if !selinux {
        let mut b = sh("true");
        b.config_mut()["process"]["selinuxLabel"] =
            json!("system_u:system_r:svirt_lxc_net_t:s0:c124,c675");
        let (code, _, err) = run(&b);
        assert_ne!(code, 0);
        assert!(err.contains("SELinux is not enabled"), "{err}");
        // mountLabel only adds a mount option: ignored with a warning, as runc does.
        let mut b = sh("echo ok");
        b.config_mut()["linux"]["mountLabel"] =
            json!("system_u:object_r:svirt_sandbox_file_t:s0:c715,c811");
        let (code, out, err) = run(&b);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "ok\n");
    }
}

#[test]
fn personality_scheduler_ioprio_and_oom_score() {
    if skip_unless_root() {
        return;
    }
    let mut b = sh("uname -m; cat /proc/self/oom_score_adj; ionice -p $$; \
                    awk '{print $19}' /proc/self/stat; grep -E '^policy' /proc/self/sched");
    b.config_mut()["linux"]["personality"] = json!({"domain": "LINUX32"});
    b.config_mut()["process"]["oomScoreAdj"] = json!(250);
    b.config_mut()["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    b.config_mut()["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    let (code, out, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 5, "{out}");
    assert!(
        matches!(lines[0], "i686" | "i386"),
        "uname -m under LINUX32: {out}"
    );
    assert_eq!(lines[1], "250");
    assert_eq!(lines[2], "best-effort: prio 6");
    assert_eq!(lines[3], "7", "nice");
    assert!(lines[4].ends_with(" 3"), "SCHED_BATCH is policy 3: {out}");
}

#[test]
fn invalid_scheduler_and_ioprio_fail_create() {
    if skip_unless_root() {
        return;
    }
    let mut b = sh("true");
    b.config_mut()["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "priority": 5});
    let (code, _, err) = run(&b);
    assert_ne!(code, 0);
    assert!(err.contains("scheduler.priority"), "{err}");
    let mut b = sh("true");
    b.config_mut()["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 9});
    let (code, _, err) = run(&b);
    assert_ne!(code, 0);
    assert!(err.contains("ioPriority"), "{err}");
}

#[test]
fn exec_cpu_affinity_final_applies_to_exec() {
    if skip_unless_root() {
        return;
    }
    let b = Bundle::new().args(&["sleep", "30"]);
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &b).assert_success("create");
    rt.start(&id).assert_success("start");
    let dir = TempDir::new("aff");
    let process = dir.path().join("process.json");
    let mut p = b.config()["process"].clone();
    p["args"] = json!(["grep", "Cpus_allowed_list", "/proc/self/status"]);
    p["execCPUAffinity"] = json!({"initial": "0", "final": "0"});
    fs::write(&process, serde_json::to_vec(&p).unwrap()).unwrap();
    let out = rt.run(&["exec", "--process", process.to_str().unwrap(), &id]);
    out.assert_success("exec with execCPUAffinity");
    assert_eq!(
        out.stdout_text().split_whitespace().last(),
        Some("0"),
        "{}",
        out.stdout_text()
    );
    // Without one, exec does not inherit a pinned caller's affinity.
    p["execCPUAffinity"] = Value::Null;
    fs::write(&process, serde_json::to_vec(&p).unwrap()).unwrap();
    let mut cmd = rt.command();
    cmd.args(["exec", "--process", process.to_str().unwrap(), &id]);
    let cmd = with_affinity(cmd, 0);
    let out = rt.output(cmd);
    out.assert_success("exec from a pinned caller");
    let all = fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(
        out.stdout_text().split_whitespace().last(),
        Some(status_field(&all, "Cpus_allowed_list").as_str()),
    );
    rt.kill(&id, "KILL");
    rt.wait_for_status(&id, "stopped", Duration::from_secs(10));
}

fn with_affinity(mut cmd: std::process::Command, cpu: usize) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: sched_setaffinity between fork and exec touches only the child.
    unsafe {
        cmd.pre_exec(move || {
            let mut set = nix::sched::CpuSet::new();
            set.set(cpu).map_err(std::io::Error::from)?;
            nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
                .map_err(std::io::Error::from)
        });
    }
    cmd
}
