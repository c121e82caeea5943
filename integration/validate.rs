//! Config that runc's validator refuses before anything starts, and every
//! config field skiff either applies or refuses with an error naming it
//! (issue 11, section 1). runc 1.1.5 (/usr/sbin/runc) is the oracle where it
//! knows the field; newer runc's behaviour is written out with its version.

use crate::support::*;
use serde_json::{json, Value};

/// The runtimes to compare: runc first when it is installed, then skiff.
fn runtimes() -> Vec<(&'static str, Runtime)> {
    let mut v = Vec::new();
    if let Some(r) = Runtime::runc() {
        v.push(("runc", r));
    }
    v.push(("skiff", Runtime::skiff()));
    v
}

/// Run `b` under `rt`; Ok(stdout) or Err(stderr, with runc's logfmt quoting
/// of `"` undone), and nothing left behind.
fn outcome(rt: &Runtime, b: &Bundle) -> Result<String, String> {
    let (code, out, err) = rt.run_leak_checked(b);
    if code == 0 {
        Ok(out)
    } else {
        Err(err.replace("\\\"", "\""))
    }
}

/// A bundle with these namespaces and sysctls, printing `cat <file>`.
fn sysctl_bundle(nss: Value, sysctl: Value, file: &str) -> Bundle {
    let mut b = Bundle::new().args(&["cat", file]);
    let c = b.config_mut();
    c["linux"]["namespaces"] = nss;
    c["linux"]["sysctl"] = sysctl;
    if c["linux"]["namespaces"]
        .as_array()
        .is_some_and(|a| !a.iter().any(|n| n["type"] == "uts"))
    {
        c.as_object_mut().map(|o| o.remove("hostname"));
    }
    b
}

/// runc's sysctl rules, each case run under runc 1.1.5 and skiff: the same
/// outcome, and for refusals runc's words (which name the key).
#[test]
fn sysctl_namespace_rules_match_runc() {
    if skip_unless_root() {
        return;
    }
    let full = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}]);
    let bare = json!([{"type": "pid"}, {"type": "mount"}]);
    let hostnet = json!([{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": "/proc/self/ns/net"}]);
    // (namespaces, sysctl, file to print, Ok(output) or Err(runc's words))
    let cases: Vec<(Value, Value, &str, Result<&str, &str>)> = vec![
        // sysctl.d(5) slash spelling: runc accepts and applies it.
        (full.clone(), json!({"net/ipv4/ip_forward": "1"}), "/proc/sys/net/ipv4/ip_forward", Ok("1\n")),
        (full.clone(), json!({"kernel.shmmax": "100000"}), "/proc/sys/kernel/shmmax", Ok("100000\n")),
        (full.clone(), json!({"kernel.domainname": "dom"}), "/proc/sys/kernel/domainname", Ok("dom\n")),
        (full.clone(), json!({"kernel.hostname": "x"}), "/proc/sys/kernel/hostname",
            Err("sysctl \"kernel.hostname\" is not allowed as it conflicts with the OCI \"hostname\" field")),
        (bare.clone(), json!({"net.ipv4.ip_forward": "1"}), "/proc/sys/net/ipv4/ip_forward",
            Err("sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace")),
        (bare.clone(), json!({"net/ipv4/ip_forward": "1"}), "/proc/sys/net/ipv4/ip_forward",
            Err("sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace")),
        // A path to the runtime's own netns is the host's, too.
        (hostnet, json!({"net.ipv4.ip_forward": "1"}), "/proc/sys/net/ipv4/ip_forward",
            Err("sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace")),
        (bare.clone(), json!({"kernel.shmmax": "100000"}), "/proc/sys/kernel/shmmax",
            Err("sysctl \"kernel.shmmax\" is not allowed in the hosts ipc namespace")),
        (bare.clone(), json!({"fs.mqueue.queues_max": "100"}), "/proc/sys/fs/mqueue/queues_max",
            Err("sysctl \"fs.mqueue.queues_max\" is not allowed in the hosts ipc namespace")),
        (bare.clone(), json!({"kernel.domainname": "dom"}), "/proc/sys/kernel/domainname",
            Err("sysctl \"kernel.domainname\" is not in a separate kernel namespace")),
        (full.clone(), json!({"kernel.panic": "1"}), "/proc/sys/kernel/panic",
            Err("sysctl \"kernel.panic\" is not in a separate kernel namespace")),
        // runc 1.2+ allows user.* with a user namespace; 1.1.5 never does.
        (full, json!({"user.max_user_namespaces": "10"}), "/proc/sys/user/max_user_namespaces",
            Err("sysctl \"user.max_user_namespaces\" is not in a separate kernel namespace")),
    ];
    for (name, rt) in runtimes() {
        for (nss, sysctl, file, want) in &cases {
            let b = sysctl_bundle(nss.clone(), sysctl.clone(), file);
            let got = outcome(&rt, &b);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{name}: {sysctl}"),
                (Err(w), Err(e)) => assert!(e.contains(w), "{name}: {sysctl}: {e}"),
                _ => panic!("{name}: {sysctl} in {nss}: want {want:?}, got {got:?}"),
            }
        }
    }
}

/// `linux.timeOffsets` without a new time namespace would be silently
/// dropped: runc 1.2+ refuses it (runc 1.1.5 knows no time namespace, so the
/// words are written out from runc 1.2's validator).
#[test]
fn time_offsets_need_a_new_time_namespace() {
    if skip_unless_root() {
        return;
    }
    let offsets = json!({"monotonic": {"secs": 10, "nanosecs": 0}});
    let rt = Runtime::skiff();
    let mut b = Bundle::new().args(&["true"]);
    b.config_mut()["linux"]["timeOffsets"] = offsets.clone();
    let err = outcome(&rt, &b).expect_err("offsets without a time namespace ran");
    assert!(
        err.contains(
            "time namespace offsets specified, but time namespace isn't enabled in the config"
        ),
        "{err}"
    );
    let mut b = Bundle::new().args(&["true"]);
    let c = b.config_mut();
    c["linux"]["timeOffsets"] = offsets;
    c["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "time", "path": "/proc/self/ns/time"}));
    let err = outcome(&rt, &b).expect_err("offsets for a joined time namespace ran");
    assert!(
        err.contains("time namespace enabled, but both namespace path and time offsets specified -- you may only provide one"),
        "{err}"
    );
    // A new time namespace still gets them.
    let mut b = Bundle::new().args(&["cat", "/proc/self/timens_offsets"]);
    let c = b.config_mut();
    c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 10}});
    c["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "time"}));
    let out = outcome(&rt, &b).expect("new time namespace with offsets");
    assert!(
        out.starts_with("monotonic") && out.lines().next().unwrap_or("").contains(" 10 "),
        "{out}"
    );
}

/// `linux.memoryPolicy` (runc 1.4; runc 1.1.5 ignores the field, so the
/// expectations are runc 1.4's): the policy is in force in the container
/// (numa_maps shows it per mapping), bad modes, nodes and flags are refused
/// with the field named.
#[test]
fn memory_policy_applied_or_refused() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let run = |pol: Value| {
        let mut b = Bundle::new().args(&["head", "-n1", "/proc/self/numa_maps"]);
        b.config_mut()["linux"]["memoryPolicy"] = pol;
        outcome(&rt, &b)
    };
    let out = run(json!({"mode": "MPOL_BIND", "nodes": "0"})).expect("MPOL_BIND 0");
    assert!(out.contains(" bind:0 "), "{out}");
    let out =
        run(json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}))
            .expect("MPOL_INTERLEAVE static 0");
    assert!(out.contains(" interleave=static:0 "), "{out}");
    for (pol, words) in [
        (json!({"mode": "MPOL_BIND"}), "requires at least one node"),
        (
            json!({"mode": "MPOL_LOCAL", "nodes": "0"}),
            "requires 0 nodes",
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "4096"}),
            "linux.memoryPolicy.nodes",
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}),
            "linux.memoryPolicy.flags",
        ),
        // Node 63 exists on no machine this runs on: the kernel's EINVAL, named.
        (
            json!({"mode": "MPOL_BIND", "nodes": "63"}),
            "linux.memoryPolicy: set_mempolicy",
        ),
        (json!({"mode": "MPOL_BOGUS"}), "MPOL_BOGUS"),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_BOGUS"]}),
            "MPOL_F_BOGUS",
        ),
    ] {
        let err = run(pol.clone()).expect_err(&format!("{pol} ran"));
        assert!(err.contains(words), "{pol}: {err}");
    }
}

/// intelRdt where resctrl is absent is refused by name, whatever it asks
/// (runc 1.1.5 refuses too; runc 1.4's validator refuses any intelRdt, a bare
/// closID included: "intelRdt is specified in config, but Intel RDT is not
/// enabled"), and skiff says why: no resctrl support in this kernel or CPU,
/// or resctrl not mounted. Nothing is left behind.
#[test]
fn intel_rdt_is_refused_by_name_without_resctrl() {
    if skip_unless_root() {
        return;
    }
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .contains(" - resctrl ");
    if mounted {
        eprintln!("resctrl is mounted here: skipping the intelRdt-absent case");
        return;
    }
    let why = if std::path::Path::new("/sys/fs/resctrl").exists() {
        "the resctrl filesystem is not mounted"
    } else {
        "this kernel or CPU has no resctrl support (/sys/fs/resctrl does not exist)"
    };
    // runc 1.1.5 refuses the first (no CAT) but runs the others, ignoring
    // intelRdt; runc 1.4.0 (commit e846add59) refuses any intelRdt there.
    for (i, rdt) in [
        json!({"closID": "skiffit", "l3CacheSchema": "L3:0=f"}),
        json!({"closID": "skiffit"}),
        json!({"enableMonitoring": true}),
    ]
    .into_iter()
    .enumerate()
    {
        for (name, rt) in runtimes() {
            if name == "runc" && i > 0 {
                continue;
            }
            let mut b = Bundle::new().args(&["true"]);
            b.config_mut()["linux"]["intelRdt"] = rdt.clone();
            let err = outcome(&rt, &b).expect_err(&format!("{name}: intelRdt ran"));
            assert!(
                err.contains("intelRdt")
                    && err.contains("Intel RDT")
                    && err.contains("not enabled"),
                "{name} {rdt}: {err}"
            );
            if name == "skiff" {
                let want = format!(
                    "linux.intelRdt: intelRdt is specified in config, but Intel RDT is not enabled: {why}"
                );
                assert!(err.contains(&want), "{rdt}: {err}");
            }
        }
    }
}

/// The allowed CPUs of this machine's cpuset root, as the kernel lists them.
fn all_cpus() -> String {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .expect("read /sys/devices/system/cpu/online")
        .trim()
        .to_string()
}

/// Run under `taskset -c 0`, the container's process still gets every CPU
/// its cgroup allows (runc 1.2+, changelog "Container processes will no
/// longer inherit the CPU affinity of runc"; runc 1.1.5 inherits CPU 0, so
/// it is no oracle here), both for `run` and for `exec` without
/// execCPUAffinity; execCPUAffinity.final is honoured for exec.
#[test]
fn container_process_does_not_inherit_runtime_affinity() {
    if skip_unless_root() {
        return;
    }
    let all = all_cpus();
    if all == "0" {
        eprintln!("one CPU online: affinity cannot be told apart, skipping");
        return;
    }
    let rt = Runtime::skiff();
    let b = Bundle::new().args(&[
        "sh",
        "-c",
        "grep Cpus_allowed_list /proc/self/status; sleep 30",
    ]);
    let id = rt.new_id();
    let pinned = |args: &[&str]| {
        let mut cmd = std::process::Command::new("taskset");
        cmd.args(["-c", "0"])
            .arg(rt.bin())
            .arg("--root")
            .arg(rt.root())
            .args(args);
        rt.output(cmd)
    };
    b.flush();
    let out = pinned(&["create", "--bundle", b.path_str(), &id]);
    assert!(out.status.success(), "create: {}", out.stderr_text());
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list"))
        .unwrap_or("");
    assert_eq!(
        line.split_whitespace().nth(1),
        Some(all.as_str()),
        "init: {line}"
    );
    let out = pinned(&[
        "exec",
        &id,
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]);
    assert!(out.status.success(), "exec: {}", out.stderr_text());
    assert_eq!(
        out.stdout_text().split_whitespace().nth(1),
        Some(all.as_str()),
        "exec"
    );
    let proc_json = b.path().join("proc-aff.json");
    let mut p = b.config()["process"].clone();
    p["args"] = json!(["grep", "Cpus_allowed_list", "/proc/self/status"]);
    p["execCPUAffinity"] = json!({"initial": "0", "final": "1"});
    std::fs::write(&proc_json, p.to_string()).expect("write process.json");
    let out = rt.run(&["exec", "--process", proc_json.to_str().expect("utf8"), &id]);
    assert!(out.status.success(), "exec final: {}", out.stderr_text());
    assert_eq!(
        out.stdout_text().split_whitespace().nth(1),
        Some("1"),
        "exec final"
    );
    rt.delete_force(&id);
}

/// `features` lists what runc 1.5 lists (seccomp knownFlags and
/// supportedFlags, memoryPolicy modes and flags, netDevices, intelRdt,
/// potentiallyUnsafeConfigAnnotations), and every claim holds: each
/// supported seccomp flag and each memory policy mode runs a container, each
/// known but unsupported flag is refused by name, and what says `enabled:
/// false` is refused. (runc 1.1.5's `features` predates these fields.)
#[test]
fn features_lists_runc_1_5_fields_and_each_claim_holds() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let out = std::process::Command::new(rt.bin())
        .arg("features")
        .output()
        .expect("run features");
    assert!(out.status.success());
    let f: Value = serde_json::from_slice(&out.stdout).expect("features JSON");
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("not a list: {v}"))
            .iter()
            .map(|s| s.as_str().expect("string").to_string())
            .collect()
    };
    let sec = &f["linux"]["seccomp"];
    let known = strings(&sec["knownFlags"]);
    let supported = strings(&sec["supportedFlags"]);
    assert!(
        known.contains(&"SECCOMP_FILTER_FLAG_TSYNC".to_string()),
        "{known:?}"
    );
    for flag in &known {
        let mut b = Bundle::new().args(&["true"]);
        b.config_mut()["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW", "flags": [flag],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
        });
        match (supported.contains(flag), outcome(&rt, &b)) {
            (true, Ok(_)) => {}
            (false, Err(e)) => assert!(e.contains(flag.as_str()), "{flag}: {e}"),
            (claim, got) => panic!("{flag}: supported={claim} but {got:?}"),
        }
    }
    let mp = &f["linux"]["memoryPolicy"];
    assert!(!strings(&mp["flags"]).is_empty(), "{mp}");
    for mode in strings(&mp["modes"]) {
        let nodes = if mode == "MPOL_DEFAULT" || mode == "MPOL_LOCAL" {
            ""
        } else {
            "0"
        };
        let mut b = Bundle::new().args(&["true"]);
        b.config_mut()["linux"]["memoryPolicy"] = json!({"mode": mode, "nodes": nodes});
        outcome(&rt, &b).unwrap_or_else(|e| panic!("{mode} claimed but: {e}"));
    }
    // runc 1.4+ prints true; integration/netdev.rs proves the claim.
    assert_eq!(
        f["linux"]["netDevices"]["enabled"],
        json!(true),
        "netDevices are moved"
    );
    // runc 1.4+ prints all three true (what the runtime can do, whatever
    // the host has); a host without resctrl refuses the config, tested above.
    assert_eq!(
        f["linux"]["intelRdt"],
        json!({"enabled": true, "schemata": true, "monitoring": true}),
        "intelRdt"
    );
    assert!(f["potentiallyUnsafeConfigAnnotations"].is_array(), "{f}");
    assert!(f["annotations"]["org.skiff.version"].is_string(), "{f}");
}
