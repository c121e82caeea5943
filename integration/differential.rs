//! The same bundle under runc (the oracle) and skiff, side by side: what each
//! shows from outside (exit codes, state JSON, list) and inside (/proc views).
//! Where the spec leaves room, skiff should look like runc.

use crate::support::*;
use serde_json::Value;
use std::time::Duration;

fn both() -> Option<(Runtime, Runtime)> {
    if skip_unless_root() {
        return None;
    }
    Some((Runtime::runc()?, Runtime::skiff()))
}

/// Lines of /proc/self/status that a runtime decides.
const STATUS_FIELDS: &str =
    "grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status";

#[test]
fn same_exit_code_and_output() {
    let Some((runc, skiff)) = both() else { return };
    let b = Bundle::new().args(&["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let (rs, rout, _) = runc.run_container(&b);
    let (ss, sout, _) = skiff.run_container(&b);
    assert_eq!(rs.code(), ss.code());
    assert_eq!(rout, sout);
}

#[test]
fn same_process_view_from_inside() {
    let Some((runc, skiff)) = both() else { return };
    let script = format!(
        "{STATUS_FIELDS}; hostname; echo $$; ulimit -n; umask; cat /proc/self/oom_score_adj; \
         awk '{{print $5, $9}}' /proc/self/mountinfo | sort; ls /dev | sort | tr '\\n' ' '"
    );
    let b = Bundle::new().args(&["sh", "-c", &script]);
    let (rs, rout, rerr) = runc.run_container(&b);
    let (ss, sout, serr) = skiff.run_container(&b);
    assert!(rs.success(), "runc: {rerr}");
    assert!(ss.success(), "skiff: {serr}");
    assert_eq!(rout, sout, "runc and skiff show different containers");
}

#[test]
fn same_state_json_through_the_lifecycle() {
    let Some((runc, skiff)) = both() else { return };
    let b = Bundle::new().args(&["sleep", "30"]);
    let mut views: Vec<Vec<Value>> = Vec::new();
    for rt in [&runc, &skiff] {
        let id = &rt.new_id();
        assert!(rt.create(id, &b).status.success());
        let created = rt.state(id);
        assert!(rt.start(id).status.success());
        let running = rt.wait_for_status(id, "running", Duration::from_secs(5));
        assert!(rt.kill(id, "KILL").status.success());
        let stopped = rt.wait_for_status(id, "stopped", Duration::from_secs(5));
        assert!(rt.delete(id).status.success());
        views.push(vec![created, running, stopped]);
    }
    for (r, s) in views[0].iter().zip(&views[1]) {
        let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        assert_eq!(keys(r), keys(s), "state keys differ: runc {r} skiff {s}");
        for k in ["status", "bundle", "rootfs", "owner"] {
            assert_eq!(r[k], s[k], "{k}: runc {r} skiff {s}");
        }
        assert_eq!(
            r["pid"] == 0,
            s["pid"] == 0,
            "pid zero-ness: runc {r} skiff {s}"
        );
    }
}

#[test]
fn same_answers_to_bad_requests() {
    let Some((runc, skiff)) = both() else { return };
    let b = Bundle::new().args(&["sleep", "30"]);
    for rt in [&runc, &skiff] {
        let name = rt.bin().display().to_string();
        // Missing container: non-zero and "does not exist" (containerd matches it).
        let o = rt.run(&["state", "nope"]);
        assert_eq!(o.status.code(), Some(1), "{name} state");
        assert!(
            text(&o.stderr).contains("does not exist"),
            "{name}: {}",
            text(&o.stderr)
        );
        let o = rt.run(&["delete", "--force", "nope"]);
        assert!(
            o.status.success(),
            "{name} delete --force of a missing container"
        );
        let o = rt.run(&["kill", "nope", "KILL"]);
        assert_eq!(o.status.code(), Some(1), "{name} kill");
        // Start twice, kill a stopped container, unknown signal.
        let id = &rt.new_id();
        assert!(rt.create(id, &b).status.success());
        assert!(rt.start(id).status.success());
        assert_eq!(rt.start(id).status.code(), Some(1), "{name} second start");
        assert_eq!(
            rt.kill(id, "SIGNOPE").status.code(),
            Some(1),
            "{name} bad signal"
        );
        assert_eq!(
            rt.delete(id).status.code(),
            Some(1),
            "{name} delete running"
        );
        assert!(rt.kill(id, "KILL").status.success());
        rt.wait_for_status(id, "stopped", Duration::from_secs(5));
        let o = rt.kill(id, "KILL");
        assert_eq!(o.status.code(), Some(1), "{name} kill stopped");
        assert!(
            text(&o.stderr).contains("not running"),
            "{name}: {}",
            text(&o.stderr)
        );
        assert!(
            rt.run(&["kill", "--all", id, "KILL"]).status.success(),
            "{name} kill --all stopped"
        );
        assert!(rt.delete(id).status.success());
    }
}

#[test]
fn same_empty_list() {
    let Some((runc, skiff)) = both() else { return };
    let r = runc.run(&["list", "--format", "json"]);
    let s = skiff.run(&["list", "--format", "json"]);
    assert_eq!(text(&r.stdout), text(&s.stdout));
    let r = runc.run(&["list", "-q"]);
    let s = skiff.run(&["list", "-q"]);
    assert_eq!(text(&r.stdout), text(&s.stdout));
}

#[test]
fn same_owner_in_list() {
    let Some((runc, skiff)) = both() else { return };
    let b = Bundle::new().args(&["sleep", "30"]);
    let mut owners: Vec<Vec<String>> = Vec::new();
    for rt in [&runc, &skiff] {
        let id = &rt.new_id();
        rt.create(id, &b).assert_success("create");
        let list = |rt: &Runtime| -> String {
            let out = rt.run(&["list", "--format", "json"]);
            out.assert_success("list");
            let v: Value = serde_json::from_slice(&out.stdout).expect("list JSON");
            v[0]["owner"].as_str().expect("owner").to_string()
        };
        let by_root = list(rt);
        // A uid with no passwd entry: runc shows "#<uid>".
        let dir = rt.root().join(id);
        std::os::unix::fs::chown(&dir, Some(4242), None).expect("chown state dir");
        let by_unknown = list(rt);
        std::os::unix::fs::chown(&dir, Some(0), None).expect("chown state dir back");
        // `state` keeps runc's empty owner for a container made by root.
        assert_eq!(rt.state(id)["owner"], "", "{}", rt.bin().display());
        owners.push(vec![by_root, by_unknown]);
        assert!(rt.delete_force(id).status.success());
    }
    assert_eq!(owners[0], owners[1], "list owner: runc vs skiff");
    assert_eq!(owners[0][0], "root");
}
