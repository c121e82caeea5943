//! The container process: args, env, cwd, user, rlimits, oom score, exit codes,
//! stdio, and the hooks around it.

use crate::support::*;
use serde_json::json;

fn run(bundle: Bundle) -> (i32, String, String) {
    Runtime::skiff().run_leak_checked(&bundle)
}

#[test]
fn user_groups_umask_env_cwd() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new()
        .args(&[
            "sh",
            "-c",
            "id -u; id -g; id -G; umask; pwd; echo $FOO; echo $HOME",
        ])
        .env("FOO=bar baz");
    b.config_mut()["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 100], "umask": 63});
    b.config_mut()["process"]["cwd"] = json!("/tmp");
    let (code, out, err) = run(b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "1000\n1000\n1000 5 100\n0077\n/tmp\nbar baz\n/home/user\n"
    );
}

#[test]
fn rlimits_and_oom_score_adj() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new().args(&[
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; ulimit -c; cat /proc/self/oom_score_adj",
    ]);
    b.config_mut()["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
    ]);
    b.config_mut()["process"]["oomScoreAdj"] = json!(123);
    let (code, out, err) = run(b);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "321\n654\n0\n123\n");
}

#[test]
fn exit_by_signal_is_128_plus_signal() {
    if skip_unless_root() {
        return;
    }
    // PID 1 ignores signals it has no handler for, so the signal comes from
    // outside, as `skiff kill` while `skiff run` waits in the foreground.
    let rt = Runtime::skiff();
    let b = Bundle::new().args(&["sleep", "60"]);
    b.flush();
    let id = rt.new_id();
    let mut cmd = rt.command();
    cmd.args(["run", "--bundle", b.path_str(), &id]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // `run` is still creating: wait until the container exists and runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !text(&rt.run(&["state", &id]).stdout).contains("\"running\"") {
        assert!(std::time::Instant::now() < deadline, "{id} never ran");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(rt.kill(&id, "KILL").status.success());
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(128 + 9));
    rt.assert_no_leaks(&id, &b);
}

#[test]
fn missing_executable_fails_create() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let b = Bundle::new().args(&["/no/such/binary"]);
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/no/such/binary"),
        "{}",
        text(&out.stderr)
    );
    rt.assert_no_leaks(&id, &b);
}

#[test]
fn stdio_pipes_pass_through() {
    if skip_unless_root() {
        return;
    }
    let (code, out, err) =
        run(Bundle::new().args(&["sh", "-c", "echo out; echo err >&2; ls -l /proc/self/fd/1"]));
    assert_eq!(code, 0);
    assert!(err.contains("err"));
    assert!(out.starts_with("out\n"), "{out}");
}

#[test]
fn hooks_run_in_order_with_state_on_stdin() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let mut b = Bundle::new().args(&["sh", "-c", "sleep 30"]);
    let log = b.path().join("hooks.log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read -r s; echo \"{name} $s\" >> {}", log.display())]});
    b.config_mut()["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        // Runs inside the container after pivot_root: it sees the rootfs as /.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "read -r s; echo \"startContainer $s\" > /start.log"]}],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")]
    });
    let id = rt.new_id();
    assert!(rt.create(&id, &b).status.success());
    let after_create = std::fs::read_to_string(&log).unwrap_or_default();
    let names: Vec<&str> = after_create
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(names, ["prestart", "createRuntime", "createContainer"]);
    assert!(
        after_create.contains("\"status\":\"creating\""),
        "{after_create}"
    );
    assert!(rt.start(&id).status.success());
    rt.wait_for_status(&id, "running", std::time::Duration::from_secs(5));
    assert!(rt.kill(&id, "KILL").status.success());
    rt.wait_for_status(&id, "stopped", std::time::Duration::from_secs(5));
    assert!(rt.delete(&id).status.success());
    let all = std::fs::read_to_string(&log).unwrap();
    let names: Vec<&str> = all.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ]
    );
    let start_log = std::fs::read_to_string(b.rootfs().join("start.log")).unwrap();
    assert!(start_log.starts_with("startContainer {"), "{start_log}");
    let poststart = all.lines().find(|l| l.starts_with("poststart")).unwrap();
    assert!(poststart.contains("\"status\":\"running\""), "{poststart}");
    let poststop = all.lines().find(|l| l.starts_with("poststop")).unwrap();
    assert!(poststop.contains("\"status\":\"stopped\""), "{poststop}");
    rt.assert_no_leaks(&id, &b);
}

#[test]
fn failing_prestart_hook_fails_create_and_cleans_up() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let mut b = Bundle::new();
    b.config_mut()["hooks"] =
        json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 7"]}]});
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("prestart hook #0") && err.contains("nope"),
        "{err}"
    );
    rt.assert_no_leaks(&id, &b);
}

#[test]
fn preserve_fds_pass_and_others_do_not() {
    if skip_unless_root() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let rt = Runtime::skiff();
    let b = Bundle::new().args(&["sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"]);
    b.flush();
    let id = rt.new_id();
    let mut cmd = rt.command();
    cmd.args(["run", "--preserve-fds", "1", "--bundle", b.path_str(), &id]);
    // fd 3 (preserved) and fd 4 (not) are open in the caller.
    let f3 = std::fs::File::open("/dev/null").unwrap();
    let f4 = std::fs::File::open("/dev/null").unwrap();
    use std::os::fd::AsRawFd;
    let (a, c) = (f3.as_raw_fd(), f4.as_raw_fd());
    // SAFETY: dup2 between fork and exec on fds we own.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(a, 3) < 0 || libc::dup2(c, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = rt.output(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // ls itself opens one fd for the directory listing.
    let fds: Vec<u32> = text(&out.stdout)
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(fds.contains(&3), "preserved fd 3 missing: {fds:?}");
    assert!(
        fds.iter().filter(|&&f| f > 3).count() <= 1,
        "extra fds leaked: {fds:?}"
    );
}

#[test]
fn process_starts_with_no_signal_blocked_or_ignored() {
    if skip_unless_root() {
        return;
    }
    // `run` and `exec` in the foreground block every signal they forward, and
    // the Rust runtime ignores SIGPIPE: none of it may reach the process.
    let status = ["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"];
    let clean = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n";
    let (code, out, err) = run(Bundle::new().args(&status));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, clean, "run");
    let rt = Runtime::skiff();
    let b = Bundle::new().args(&["sleep", "30"]);
    let id = rt.new_id();
    assert!(rt.create(&id, &b).status.success());
    assert!(rt.start(&id).status.success());
    let mut args = vec!["exec", id.as_str()];
    args.extend(status);
    let o = rt.run(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), clean, "exec");
    // And SIGPIPE really kills a writer whose reader went away.
    let (code, out, err) = run(Bundle::new().args(&["sh", "-c", "yes | head -n1"]));
    assert_eq!((code, out.as_str()), (0, "y\n"), "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");
}

#[test]
fn a_failing_namespace_join_names_the_path() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let mut b = Bundle::new();
    b.config_mut()["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "network");
    b.config_mut()["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "network", "path": "/nonexistent/netns"}));
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("/nonexistent/netns") && err.contains("No such file"),
        "{err}"
    );
    rt.assert_no_leaks(&id, &b);
}

#[test]
fn poststart_runs_after_the_process_is_executed() {
    if skip_unless_root() {
        return;
    }
    // The poststart hook looks at what the container's PID is running: it must
    // already be the user's program, not skiff's init.
    let rt = Runtime::skiff();
    let mut b = Bundle::new().args(&["sleep", "30"]);
    let log = b.path().join("exe.log");
    let script = format!(
        "read -r s; pid=$(echo \"$s\" | grep -o '\"pid\":[0-9]*' | cut -d: -f2); readlink /proc/$pid/exe > {}",
        log.display()
    );
    b.config_mut()["hooks"] =
        json!({"poststart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    let id = rt.new_id();
    for _ in 0..5 {
        assert!(rt.create(&id, &b).status.success());
        assert!(rt.start(&id).status.success());
        let exe = std::fs::read_to_string(&log).unwrap();
        assert!(exe.trim_end().ends_with("busybox"), "poststart saw {exe:?}");
        assert!(rt.delete_force(&id).status.success());
    }
    rt.assert_no_leaks(&id, &b);
}
