//! The container lifecycle as runc's callers drive it: run, create, start,
//! state, kill, delete, and the errors they report.

use crate::support::{skip_unless_root, Bundle, OutputExt, Runtime};
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::time::Duration;

const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Subdirectories of a runtime root (where state dirs would be).
fn dirs_in(root: &Path) -> Vec<String> {
    fs::read_dir(root)
        .expect("read root")
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn run_prints_output_and_exit_code() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&["sh", "-c", "echo hi; exit 3"]);
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let out = rt.run_container_as(&id, &bundle);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", out.stderr_text());
    assert_eq!(out.stdout_text(), "hi\n");
    // `run` without --keep deletes the container when its process exits.
    rt.assert_no_leaks(&id, &bundle);
}

#[test]
fn create_start_state_delete() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&["sleep", "10"]);
    let rt = Runtime::skiff();
    let id = rt.new_id();

    rt.create(&id, &bundle).assert_success("create");
    let state = rt.state(&id);
    assert_eq!(state["id"], id.as_str(), "{state}");
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["bundle"], bundle.path_str(), "{state}");
    let pid = state["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0, "created container has no pid: {state}");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "init {pid} is gone"
    );

    rt.start(&id).assert_success("start");
    assert_eq!(rt.state(&id)["status"], "running");

    rt.kill(&id, "SIGKILL").assert_success("kill");
    let state = rt.wait_for_status(&id, "stopped", STOP_TIMEOUT);
    assert_eq!(
        state["pid"], 0,
        "a stopped container reports pid 0: {state}"
    );

    rt.delete(&id).assert_success("delete");
    let out = rt.run(&["state", &id]);
    assert!(!out.status.success(), "state after delete succeeded");
    rt.assert_no_leaks(&id, &bundle);
}

#[test]
fn bad_ids_are_refused() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new();
    let rt = Runtime::skiff();
    for id in ["", "..", "../x", "a/b"] {
        let out = rt.create(id, &bundle);
        out.assert_code(1, &format!("create {id:?}"));
        let err = out.stderr_text().to_lowercase();
        // runc: "invalid container ID format", and for "" "container id cannot be empty".
        assert!(
            err.contains("invalid") || (id.is_empty() && err.contains("empty")),
            "create {id:?}: stderr does not say the ID is invalid: {err}"
        );
        assert_eq!(dirs_in(rt.root()), Vec::<String>::new(), "create {id:?}");
    }
    let outside = rt.root().parent().expect("root has a parent").join("x");
    assert!(
        !outside.exists(),
        "create \"../x\" made {}",
        outside.display()
    );
}

#[test]
fn missing_config_names_the_file() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new();
    fs::remove_file(bundle.config_path()).expect("remove config.json");
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let out = rt.create(&id, &bundle);
    out.assert_code(1, "create without config.json");
    assert!(
        out.stderr_text().contains("config.json"),
        "stderr does not mention \"config.json\": {}",
        out.stderr_text()
    );
    assert!(
        !rt.root().join(&id).exists(),
        "failed create left its state dir"
    );
}

#[test]
fn malformed_config_names_the_file() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new();
    fs::write(bundle.config_path(), "{").expect("write config.json");
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let out = rt.create(&id, &bundle);
    out.assert_code(1, "create with a malformed config.json");
    // runc only says "unexpected EOF"; naming the file is the point of this test.
    assert!(
        out.stderr_text().contains("config.json"),
        "stderr does not mention \"config.json\": {}",
        out.stderr_text()
    );
    assert!(
        !rt.root().join(&id).exists(),
        "failed create left its state dir"
    );
}

#[test]
fn duplicate_id_refused() {
    if skip_unless_root() {
        return;
    }
    let first = Bundle::new().args(&["sleep", "10"]);
    let second = Bundle::new().args(&["sleep", "10"]);
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &first).assert_success("first create");
    let before = rt.state(&id);

    let out = rt.create(&id, &second);
    out.assert_code(1, "second create with the same ID");
    // runc 1.1: "container with given ID already exists"; skiff adds the ID.
    assert!(
        out.stderr_text()
            .contains("container with given ID already exists"),
        "stderr does not say the ID exists: {}",
        out.stderr_text()
    );

    // The refused create must not have touched the existing container.
    let after = rt.state(&id);
    assert_eq!(after["status"], "created", "{after}");
    assert_eq!(after["pid"], before["pid"], "{after}");
    assert_eq!(after["bundle"], first.path_str(), "{after}");
}

#[test]
fn json_log_on_failure() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new();
    let rt = Runtime::skiff();
    // Where containerd puts it.
    let log = bundle.path().join("log.json");
    let out = rt.run_json_log(&log, &["create", "--bundle", bundle.path_str(), "../bad"]);
    out.assert_code(1, "create with a bad ID");

    let content = fs::read_to_string(&log).expect("the log file was not written");
    // containerd reads a stream of objects, podman the whole file: one object per line.
    let entries: Vec<Value> = content
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("log line {line:?}: {e}")))
        .collect();
    assert!(entries.iter().all(Value::is_object), "{content}");
    let error = entries
        .iter()
        .rev()
        .find(|entry| entry["level"] == "error")
        .unwrap_or_else(|| panic!("no level=error entry in {content}"));
    let msg = error["msg"].as_str().unwrap_or("");
    assert!(!msg.is_empty(), "error entry without msg: {error}");
}

#[test]
fn hostname_and_pid1_inside() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new()
        .hostname("skiff-it-host")
        .args(&["sh", "-c", "hostname; echo $$"]);
    let rt = Runtime::skiff();
    let (status, stdout, stderr) = rt.run_container(&bundle);
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stdout, "skiff-it-host\n1\n");
}

#[test]
fn delete_force_missing_container_succeeds() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let id = rt.new_id();
    // containerd's cleanup path relies on this.
    rt.delete_force(&id)
        .assert_success("delete --force of a missing container");
}

#[test]
fn state_of_missing_container_says_does_not_exist() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let out = rt.run(&["state", &id]);
    assert!(
        !out.status.success(),
        "state of a missing container succeeded"
    );
    // go-runc matches this text to tell "container gone" from other failures.
    assert!(
        out.stderr_text().contains("does not exist"),
        "stderr does not mention \"does not exist\": {}",
        out.stderr_text()
    );
}

#[test]
fn kill_all_on_stopped_container_succeeds() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&["true"]);
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &bundle).assert_success("create");
    rt.start(&id).assert_success("start");
    rt.wait_for_status(&id, "stopped", STOP_TIMEOUT);
    // containerd sends this after init exited (compat.md).
    rt.run(&["kill", "--all", &id, "9"])
        .assert_success("kill --all on a stopped container");
    rt.delete(&id).assert_success("delete");
    rt.assert_no_leaks(&id, &bundle);
}

#[test]
fn pid_file_is_bare_digits() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&["sleep", "10"]);
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let pid_file = bundle.path().join("init.pid");
    let pid_arg = pid_file.to_str().expect("UTF-8 path");
    rt.create_with(&id, &bundle, &["--pid-file", pid_arg])
        .assert_success("create --pid-file");
    let content = fs::read_to_string(&pid_file).expect("pid file was not written");
    // containerd parses it with strconv.Atoi: no newline, no spaces.
    assert!(
        !content.is_empty() && content.bytes().all(|b| b.is_ascii_digit()),
        "pid file holds {content:?}"
    );
    let pid: i64 = content.parse().expect("pid file is a number");
    assert_eq!(rt.state(&id)["pid"], pid);
}

#[test]
fn unopenable_log_file_is_fatal() {
    if skip_unless_root() {
        return;
    }
    // runc exits 1 when it cannot open --log: a caller that reads the log for
    // the error would otherwise find nothing while the command "succeeded".
    let rt = Runtime::skiff();
    let dir = rt.root().join("no-such-dir");
    let log = dir.join("x.log");
    let out = rt.run(&["--log", log.to_str().expect("UTF-8 path"), "list"]);
    out.assert_code(1, "list with an unopenable --log");
    let err = out.stderr_text();
    assert!(
        err.contains(&log.display().to_string()) && err.contains("ENOENT"),
        "stderr does not name the log path and errno: {err}"
    );
    assert!(
        out.stdout_text().is_empty(),
        "list ran anyway: {}",
        out.stdout_text()
    );
    assert!(!dir.exists());
}
