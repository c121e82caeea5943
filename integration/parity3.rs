//! Issue 11, the last open points: runc's error wording where callers and
//! people match it, `ociVersion`, `/proc` as a symlink, `exec --cgroup`, and
//! `update --l3-cache-schema/--mem-bw-schema`. Each case runs under runc
//! 1.1.5 (the oracle) and skiff; where runc 1.2+ changed the behaviour the
//! expected value is derived from runc 1.1.5's with a comment naming the
//! version.

use crate::support::*;
use serde_json::{json, Value};
use std::path::Path;

/// The `msg` of the last `level=error` entry of a JSON `--log` file: what
/// containerd and podman show their users when the runtime fails.
fn last_error(log: &Path) -> String {
    let body = std::fs::read_to_string(log).unwrap_or_default();
    body.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .find_map(|v| v["msg"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no error entry in {}: {body:?}", log.display()))
}

/// `rt args...` with `--log-format json --log <file>`: (exit code, the last
/// error message with the runtime's own name as `RT`).
fn failing(rt: &Runtime, args: &[&str]) -> (i32, String) {
    let log = rt.root().parent().expect("runtime dir").join("log.json");
    let _ = std::fs::remove_file(&log);
    let log_s = log.to_str().expect("utf-8 path");
    let mut all = vec!["--log-format", "json", "--log", log_s];
    all.extend_from_slice(args);
    let out = rt.run(&all);
    let code = out.status.code().unwrap_or(-1);
    assert_ne!(code, 0, "{args:?} succeeded under {}", rt.bin().display());
    let name = rt
        .bin()
        .file_name()
        .and_then(|n| n.to_str())
        .expect("binary name")
        .to_string();
    let msg = last_error(&log);
    let msg = match msg.strip_prefix(&format!("{name} ")) {
        Some(rest) => format!("RT {rest}"),
        None => msg,
    };
    (code, msg)
}

/// Both runtimes run `args` (with `{bundle}` and `{id}` filled in) on a
/// bundle `setup` prepared; returns (runc's, skiff's) (code, message).
fn both(setup: &dyn Fn(&mut Bundle), args: &[&str]) -> Option<((i32, String), (i32, String))> {
    let runc = Runtime::runc()?;
    let skiff = Runtime::skiff();
    let mut res = Vec::new();
    for rt in [&runc, &skiff] {
        let mut b = Bundle::new();
        setup(&mut b);
        b.flush();
        let id = rt.new_id();
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("{bundle}", b.path_str()).replace("{id}", &id))
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        res.push(failing(rt, &args));
        rt.assert_no_leaks(&id, &b);
    }
    let s = res.pop()?;
    let r = res.pop()?;
    Some((r, s))
}

/// runc 1.2.0 reports everything its init fails at (the executable lookup
/// too, which 1.1 reported after init's "ready") under `error during
/// container init:`; runc 1.1.5's message with that layer added.
fn as_runc_1_2(msg_1_1_5: &str) -> String {
    msg_1_1_5.replacen(
        "unable to start container process: exec:",
        "unable to start container process: error during container init: exec:",
        1,
    )
}

#[test]
fn run_and_create_of_a_missing_binary_are_worded_as_runc() {
    if skip_unless_root() {
        return;
    }
    let setup = |b: &mut Bundle| {
        b.config_mut()["process"]["args"] = json!(["nosuchbinary"]);
    };
    for verb in ["run", "create"] {
        let Some((r, s)) = both(&setup, &[verb, "--bundle", "{bundle}", "{id}"]) else {
            return;
        };
        // runc 1.1.5: `runc run failed: unable to start container process:
        // exec: "nosuchbinary": executable file not found in $PATH`.
        assert!(
            r.1.starts_with(&format!(
                "RT {verb} failed: unable to start container process: exec:"
            )),
            "runc: {r:?}"
        );
        assert_eq!(s.0, r.0, "{verb}: exit code; skiff said {s:?}");
        assert_eq!(s.1, as_runc_1_2(&r.1), "{verb}");
    }
}

#[test]
fn run_of_a_failing_mount_is_worded_as_runc() {
    if skip_unless_root() {
        return;
    }
    let setup = |b: &mut Bundle| {
        b.config_mut()["mounts"].as_array_mut().expect("mounts").push(
            json!({"destination": "/mnt", "type": "bind", "source": "/nonexistent-p3", "options": ["bind"]}),
        );
    };
    let Some((r, s)) = both(&setup, &["run", "--bundle", "{bundle}", "{id}"]) else {
        return;
    };
    // runc 1.1.12+ and 1.2-1.5 (mount-destination rework after
    // CVE-2024-21626): `... error mounting "SRC" to rootfs at "/mnt": create
    // mount destination for /mnt mount: bind mount source stat: stat SRC:
    // no such file or directory`; runc 1.1.5 (this host) lacks the middle
    // part. skiff gives the newer words; the rest must equal runc's.
    let newer = (
        1,
        "RT run failed: unable to start container process: error during container init: \
         error mounting \"/nonexistent-p3\" to rootfs at \"/mnt\": create mount destination \
         for /mnt mount: bind mount source stat: stat /nonexistent-p3: no such file or directory"
            .to_string(),
    );
    assert!(
        r.1.contains("error during container init: error mounting"),
        "runc: {r:?}"
    );
    let r_as_newer = (
        r.0,
        r.1.replacen(
            "to rootfs at \"/mnt\": stat ",
            "to rootfs at \"/mnt\": create mount destination for /mnt mount: bind mount source stat: stat ",
            1,
        ),
    );
    assert_eq!(r_as_newer, newer, "runc (as runc 1.1.12+ words it)");
    assert_eq!(s, newer);
}

/// Issue 11's masked-paths bullet: a rootfs whose /proc is a symlink is
/// refused before proc is mounted through it, in runc's words (runc 1.1.5;
/// unchanged in 1.2.8+/1.3+ after CVE-2025-31133/52565/52881).
#[test]
fn proc_that_is_a_symlink_is_refused_as_runc() {
    if skip_unless_root() {
        return;
    }
    let setup = |b: &mut Bundle| {
        let r = b.rootfs();
        std::fs::remove_dir(r.join("proc")).expect("rmdir rootfs/proc");
        std::fs::create_dir(r.join("realproc")).expect("mkdir realproc");
        std::os::unix::fs::symlink("realproc", r.join("proc")).expect("symlink proc");
    };
    let Some((r, s)) = both(&setup, &["run", "--bundle", "{bundle}", "{id}"]) else {
        return;
    };
    assert!(
        r.1.contains(r#"filesystem "proc" must be mounted on ordinary directory"#),
        "runc: {r:?}"
    );
    assert_eq!(s, r);
}

/// A container running `sleep`, under both runtimes, for exec cases:
/// (runtime, id) pairs, runc's first.
fn running_pair(b: &Bundle, runc: &Runtime, skiff: &Runtime) -> [String; 2] {
    let mut ids = Vec::new();
    for rt in [runc, skiff] {
        let id = rt.new_id();
        rt.run(&["run", "-d", "--bundle", b.path_str(), &id])
            .assert_success("run -d");
        ids.push(id);
    }
    [ids[0].clone(), ids[1].clone()]
}

#[test]
fn exec_failures_before_the_process_starts_are_worded_as_runc() {
    if skip_unless_root() {
        return;
    }
    let Some(runc) = Runtime::runc() else { return };
    let skiff = Runtime::skiff();
    let b = Bundle::new().args(&["sleep", "600"]);
    b.flush();
    let ids = running_pair(&b, &runc, &skiff);
    let cases: [&[&str]; 3] = [
        &["exec", "{id}", "nosuchbinary"],
        &["exec", "--cwd", "/nonexistent", "{id}", "true"],
        &["exec", "{id}", "/etc/passwd"],
    ];
    for case in cases {
        let run = |rt: &Runtime, id: &str| {
            let args: Vec<String> = case.iter().map(|a| a.replace("{id}", id)).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            failing(rt, &args)
        };
        let r = run(&runc, &ids[0]);
        let s = run(&skiff, &ids[1]);
        // runc 1.1.5 to 1.5: exit 255, `exec failed: unable to start
        // container process: ...` (chdir: `chdir to cwd ("/nonexistent") set
        // in config.json failed: no such file or directory`).
        assert_eq!(r.0, 255, "runc {case:?}: {r:?}");
        assert!(
            r.1.starts_with("exec failed: unable to start container process: "),
            "runc: {r:?}"
        );
        assert_eq!(s, r, "{case:?}");
    }
}

/// runtime-spec: `ociVersion` MUST be SemVer 2.0.0 and invalid values MUST
/// be refused (runtime-tools misc_props, case 3). runc 1.1.5 through 1.5.1 run
/// any string (opencontainers/runc#1846, open): skiff refuses non-SemVer and
/// majors other than 1, naming the field, and keeps running what runc runs
/// with a valid 1.x version.
#[test]
fn oci_version_must_be_semver_of_major_1() {
    if skip_unless_root() {
        return;
    }
    let Some(runc) = Runtime::runc() else { return };
    let skiff = Runtime::skiff();
    for (v, refused) in [
        ("invalid", true),
        ("1.0", true),
        ("2.0.0", true),
        ("1.0.2-dev", false),
        ("1.9.0", false),
    ] {
        let mut b = Bundle::new().args(&["true"]);
        b.config_mut()["ociVersion"] = json!(v);
        b.flush();
        // The oracle runs every one of them (runc#1846).
        let (st, _, err) = runc.run_container(&b);
        assert!(st.success(), "runc with ociVersion {v:?}: {err}");
        let id = skiff.new_id();
        if refused {
            let (code, msg) = failing(&skiff, &["run", "--bundle", b.path_str(), &id]);
            assert_eq!(code, 1, "ociVersion {v:?}: {msg}");
            assert!(msg.contains(&format!("ociVersion {v:?}")), "{msg}");
        } else {
            skiff
                .run_container_as(&id, &b)
                .assert_success(&format!("ociVersion {v:?}"));
        }
        skiff.assert_no_leaks(&id, &b);
    }
}

/// Make `sub` in each of the container's cgroup directories (cpuset's
/// cpus and mems copied from the parent, or a v1 cpuset child takes no task).
fn make_subs(dirs: &[std::path::PathBuf], sub: &str) {
    for d in dirs {
        let s = d.join(sub);
        std::fs::create_dir_all(&s).unwrap_or_else(|e| panic!("mkdir {}: {e}", s.display()));
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let (true, Ok(v)) = (s.join(f).exists(), std::fs::read_to_string(d.join(f))) {
                let _ = std::fs::write(s.join(f), v.trim());
            }
        }
    }
}

/// One runtime's answers to the `--cgroup` cases: a line per case, with the
/// container's cgroup path written `CG` and the exit code.
fn exec_cgroup_cases(rt: &Runtime, cases: &[&[&str]]) -> Vec<(i32, String)> {
    let id = rt.new_id();
    let mut b2 = Bundle::new().args(&["sleep", "600"]);
    b2.config_mut()["linux"]["cgroupsPath"] = json!(format!("/{id}"));
    b2.flush();
    rt.run(&["run", "-d", "--bundle", b2.path_str(), &id])
        .assert_success("run -d");
    let dirs = cgroup_dirs_for(&id);
    assert!(!dirs.is_empty(), "no cgroup dirs for {id}");
    make_subs(&dirs, "sub");
    let mut got = Vec::new();
    for case in cases {
        let mut args = vec!["exec"];
        args.extend_from_slice(case);
        args.extend_from_slice(&[&id, "cat", "/proc/self/cgroup"]);
        let out = rt.run(&args);
        let code = out.status.code().unwrap_or(-1);
        let shown = if code == 0 {
            out.stdout_text()
        } else {
            out.stderr_text()
        };
        got.push((code, shown.replace(&id, "CG")));
    }
    // runc never makes a sub-cgroup for exec.
    for d in &dirs {
        assert!(
            !d.join("nosuch").exists(),
            "{} made {}/nosuch",
            rt.bin().display(),
            d.display()
        );
    }
    rt.delete_force(&id).assert_success("delete --force");
    for d in &dirs {
        let _ = std::fs::remove_dir(d.join("sub"));
        let _ = std::fs::remove_dir(d);
    }
    rt.assert_no_leaks(&id, &b2);
    got
}

/// `exec --cgroup` against runc 1.1.5: an existing sub-cgroup in every
/// hierarchy or per controller, `/` as the container's own cgroup, a missing
/// one refused (never created), a path climbing out refused, the flag forms
/// runc refuses. Where runc 1.3+ changed the parsing or 1.5 the words, the
/// expectation says so.
#[test]
fn exec_cgroup_as_runc() {
    if skip_unless_root() {
        return;
    }
    let Some(runc) = Runtime::runc() else { return };
    let skiff = Runtime::skiff();
    let v1_memory = std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
    let mut cases: Vec<&[&str]> = vec![
        &[],
        &["--cgroup", "sub"],
        &["--cgroup", "/"],
        &["--cgroup", "nosuch"],
        &["--cgroup", "nosuchctl:sub"],
        &["--cgroup", "sub", "--cgroup", "memory:sub"],
    ];
    if v1_memory {
        cases.push(&["--cgroup", "memory:sub"]);
        cases.push(&["--cgroup", "memory,pids:sub"]);
    }
    let r = exec_cgroup_cases(&runc, &cases);
    let s = exec_cgroup_cases(&skiff, &cases);
    for ((case, r), s) in cases.iter().zip(&r).zip(&s) {
        assert_eq!(
            s.0, r.0,
            "exit code of exec {case:?}: runc {r:?}, skiff {s:?}"
        );
        if r.0 == 0 {
            assert_eq!(s.1, r.1, "exec {case:?}");
        } else {
            assert_eq!(r.0, 255, "runc exec {case:?}: {r:?}");
        }
    }
    // The words runc 1.1.5 and 1.5 share.
    assert!(
        s[3].1.contains("to cgroups") && s[3].1.contains("no such file or directory"),
        "{:?}",
        s[3]
    );
    assert!(
        s[4].1
            .contains("unknown controller nosuchctl in SubCgroupPaths"),
        "{:?}",
        s[4]
    );
    assert!(
        s[5].1
            .contains("invalid --cgroup argument: sub (missing <controller>: prefix)"),
        "{:?}",
        s[5]
    );
    // runc 1.1.5 says "../x is not a sub cgroup path"; runc 1.5 (cgroups
    // AddPid) "bad sub cgroup path: ../x". runc 1.3 refuses an empty
    // controller (1.1.5 took ":sub" as every hierarchy) and a repeated one.
    let newer: [(&[&str], &str); 3] = [
        (&["--cgroup", "../x"], "bad sub cgroup path: ../x"),
        (
            &["--cgroup", ":sub"],
            "invalid --cgroup argument: :sub (empty <controller> prefix)",
        ),
        (
            &["--cgroup", "pids:sub", "--cgroup", "pids:sub"],
            "invalid --cgroup argument(s): controller pids specified multiple times",
        ),
    ];
    let cases: Vec<&[&str]> = newer.iter().map(|n| n.0).collect();
    let s = exec_cgroup_cases(&skiff, &cases);
    for ((case, want), got) in newer.iter().zip(&s) {
        assert_eq!(got.0, 255, "exec {case:?}: {got:?}");
        assert!(got.1.contains(want), "exec {case:?}: {got:?}");
    }
}

/// `update --l3-cache-schema/--mem-bw-schema` where resctrl cannot take them
/// (this host has none) or the container has no intelRdt: refused in runc's
/// words (update.go, 1.1.5 through 1.5), exit 1, the container untouched.
/// Applying them to a resctrl group is unit-tested on a fake tree
/// (src/intelrdt.rs, update_rewrites_the_whole_schemata_with_the_new_values).
#[test]
fn update_rdt_schemas_refused_as_runc() {
    if skip_unless_root() {
        return;
    }
    let Some(runc) = Runtime::runc() else { return };
    let skiff = Runtime::skiff();
    let b = Bundle::new().args(&["sleep", "600"]);
    b.flush();
    let ids = running_pair(&b, &runc, &skiff);
    for flags in [
        ["--l3-cache-schema", "L3:0=f"],
        ["--mem-bw-schema", "MB:0=50"],
    ] {
        let mut got = Vec::new();
        for (rt, id) in [(&runc, &ids[0]), (&skiff, &ids[1])] {
            got.push(failing(rt, &["update", flags[0], flags[1], id]));
            assert_eq!(rt.state(id)["status"], "running");
        }
        assert_eq!(got[0].0, 1, "runc {flags:?}: {:?}", got[0]);
        assert_eq!(got[1], got[0], "{flags:?}");
    }
}
