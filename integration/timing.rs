//! `--debug` step timing: one `timing: <step>: <N> us` debug line per step of
//! create+start (parent and init), in the format scripts/bench.sh parses, and
//! nothing of it without `--debug`. The step names are skiff's own (README,
//! "Where time goes"); runc has no such lines.

use crate::support::{skip_unless_root, Bundle, OutputExt, Runtime};
use serde_json::Value;
use std::collections::BTreeMap;

/// The parent's steps of `run` (create, start, delete), then init's.
const RUN_PARENT: &[&str] = &[
    "parse", "state", "spawn", "cgroup", "ready", "record", "start", "delete",
];
const RUN_INIT: &[&str] = &[
    "init-config",
    "namespaces",
    "clone",
    "cgroup-wait",
    "rootfs",
    "hooks",
    "pivot",
    "masks",
    "hostname",
    "process",
    "seccomp",
    "credentials",
];
const EXEC_STEPS: &[&str] = &[
    "parse",
    "spawn",
    "cgroup",
    "ready",
    "init-config",
    "namespaces",
    "clone",
    "cgroup-wait",
    "process",
    "seccomp",
    "credentials",
];

/// step -> how often it appeared, from messages of the exact form
/// `timing: <step>: <N> us`; any other `timing:` message fails the test.
fn steps<'a>(msgs: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for m in msgs.filter(|m| m.starts_with("timing:")) {
        let parts: Vec<&str> = m.splitn(3, ": ").collect();
        let ok = parts.len() == 3
            && !parts[1].is_empty()
            && parts[1]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-')
            && parts[2]
                .strip_suffix(" us")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        assert!(ok, "malformed timing line: {m:?}");
        *seen.entry(parts[1].to_string()).or_insert(0) += 1;
    }
    seen
}

/// The msg of each text-format debug line (`... level=debug msg="..."`).
fn text_msgs(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.split_once(" level=debug msg=").map(|(_, m)| m))
        .map(|m| m.trim_matches('"').to_string())
        .collect()
}

fn assert_each_once(seen: &BTreeMap<String, usize>, want: &[&str], what: &str) {
    for s in want {
        assert_eq!(
            seen.get(*s),
            Some(&1),
            "{what}: step {s} once; got {seen:?}"
        );
    }
    let extra: Vec<&String> = seen
        .keys()
        .filter(|k| !want.contains(&k.as_str()))
        .collect();
    assert!(extra.is_empty(), "{what}: unexpected steps {extra:?}");
}

#[test]
fn debug_run_times_every_step_of_parent_and_init() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let b = Bundle::new().args(&["true"]);
    b.flush();
    let id = rt.new_id();
    let o = rt.run(&["--debug", "run", "--bundle", b.path_str(), &id]);
    o.assert_success("--debug run");
    let msgs = text_msgs(&o.stderr_text());
    let want: Vec<&str> = RUN_PARENT.iter().chain(RUN_INIT).copied().collect();
    assert_each_once(
        &steps(msgs.iter().map(|s| s.as_str())),
        &want,
        "--debug run",
    );
    rt.assert_no_leaks(&id, &b);

    // The same lines reach --log (init's through the parent's logger).
    let log = b.path().join("timing.json");
    let id = rt.new_id();
    rt.run_json_log(&log, &["--debug", "run", "--bundle", b.path_str(), &id])
        .assert_success("--debug --log run");
    let text = std::fs::read_to_string(&log).expect("read log");
    let json: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &Value| v["level"] == "debug")
        .collect();
    let msgs = json.iter().filter_map(|v| v["msg"].as_str());
    assert_each_once(&steps(msgs), &want, "--log json");

    // Without --debug: not one of them.
    let id = rt.new_id();
    let o = rt.run(&["run", "--bundle", b.path_str(), &id]);
    o.assert_success("run");
    assert!(!o.stderr_text().contains("timing"), "{}", o.stderr_text());
}

#[test]
fn debug_exec_times_its_steps() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let b = Bundle::new().args(&["sleep", "1000"]);
    let id = rt.new_id();
    rt.create(&id, &b).assert_success("create");
    rt.start(&id).assert_success("start");
    let o = rt.run(&["--debug", "exec", &id, "true"]);
    o.assert_success("--debug exec");
    let msgs = text_msgs(&o.stderr_text());
    assert_each_once(
        &steps(msgs.iter().map(|s| s.as_str())),
        EXEC_STEPS,
        "--debug exec",
    );
    rt.delete_force(&id).assert_success("delete");
}
