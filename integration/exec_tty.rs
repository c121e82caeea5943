//! exec, terminals and stdio, and what engines read (json logs, features,
//! state): checked the way containerd and conmon use them.

use crate::support::{recv_with_fds, skip_unless_root, Bundle, OutputExt, Runtime};

use serde_json::{json, Value};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// A container running `sleep` (detached), ready for exec.
fn sleeper(rt: &Runtime, bundle: &Bundle) -> String {
    let id = rt.new_id();
    bundle.flush();
    rt.run(&["run", "-d", "--bundle", bundle.path_str(), &id])
        .assert_success("run -d");
    id
}

fn init_pid(rt: &Runtime, id: &str) -> i32 {
    rt.state(id)["pid"].as_i64().expect("pid in state") as i32
}

/// Receives the one fd of a console-socket message, and the data that came with it.
fn recv_master(listener: &UnixListener) -> (OwnedFd, Vec<u8>) {
    let (conn, _) = listener.accept().expect("accept console connection");
    let (data, mut fds) = recv_with_fds(&conn);
    assert_eq!(fds.len(), 1, "exactly one fd in the console message");
    assert!(!data.is_empty(), "the console message carries data");
    (fds.remove(0), data)
}

/// Everything read from a pty master until it hangs up (EIO) or `max` passes.
fn read_pty(master: OwnedFd, max: Duration) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut f = File::from(master);
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        let _ = tx.send(all);
    });
    String::from_utf8_lossy(&rx.recv_timeout(max).unwrap_or_default()).into_owned()
}

fn socket_path(rt: &Runtime, name: &str) -> PathBuf {
    rt.root().parent().expect("runtime dir").join(name)
}

#[test]
fn exec_joins_every_namespace_and_returns_the_exit_status() {
    if skip_unless_root() {
        return;
    }
    let mut bundle = Bundle::new().args(&["sleep", "1000"]);
    bundle.config_mut()["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "cgroup"}));
    let rt = Runtime::skiff();
    let id = sleeper(&rt, &bundle);
    let pid = init_pid(&rt, &id);
    let out = rt.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for n in cgroup ipc mnt net pid uts; do readlink /proc/self/ns/$n; done; exit 5",
    ]);
    out.assert_code(5, "exec exit status");
    let want: String = ["cgroup", "ipc", "mnt", "net", "pid", "uts"]
        .iter()
        .map(|n| {
            let l = fs::read_link(format!("/proc/{pid}/ns/{n}")).expect("init ns");
            format!("{}\n", l.display())
        })
        .collect();
    assert_eq!(out.stdout_text(), want);
    // Killed by a signal: 128 + signal, as a shell reports it.
    rt.run(&["exec", &id, "sh", "-c", "kill -9 $$"])
        .assert_code(137, "exec killed by SIGKILL");
    // The exec'd process is in the container's cgroup too.
    let out = rt.run(&["exec", &id, "cat", "/proc/self/cgroup"]);
    out.assert_success("exec cat cgroup");
    let host = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("init cgroup");
    // The memory hierarchy's line on v1 and hybrid hosts, the unified "0::"
    // line where cgroup v2 is all there is.
    let unified = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let key = if unified { "0::" } else { ":memory:" };
    let mem = |s: &str| {
        s.lines()
            .find(|l| l.contains(key))
            .map(String::from)
            .unwrap_or_default()
    };
    // Inside a cgroup namespace the path is relative to the container's own.
    assert!(!mem(&host).is_empty(), "init has a {key} cgroup: {host}");
    assert!(
        mem(&out.stdout_text()).ends_with(&format!("{key}/")),
        "exec sees the container's cgroup as its root: {}",
        out.stdout_text()
    );
}

#[test]
fn exec_flags_set_user_env_cwd_groups_and_caps() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&["sleep", "1000"]);
    let rt = Runtime::skiff();
    let id = sleeper(&rt, &bundle);
    let out = rt.run(&[
        "exec",
        "--user",
        "1000:1000",
        "--additional-gids",
        "5",
        "--cwd",
        "/tmp",
        "--env",
        "FOO=bar",
        &id,
        "sh",
        "-c",
        "id -u; id -g; id -G; pwd; echo $FOO; grep NoNewPrivs /proc/self/status",
    ]);
    out.assert_success("exec with flags");
    assert_eq!(
        out.stdout_text(),
        "1000\n1000\n1000 5\n/tmp\nbar\nNoNewPrivs:\t1\n"
    );
    // --cap adds to every set; the config's own caps stay.
    let out = rt.run(&[
        "exec",
        "--cap",
        "CAP_NET_ADMIN",
        &id,
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    out.assert_success("exec --cap");
    let eff = u64::from_str_radix(
        out.stdout_text().split_whitespace().nth(1).expect("CapEff"),
        16,
    )
    .expect("hex caps");
    assert_ne!(eff & (1 << 12), 0, "CAP_NET_ADMIN missing: {eff:x}");
    assert_ne!(eff & (1 << 5), 0, "CAP_KILL (from config) missing: {eff:x}");
    // The config's rlimits apply to exec'd processes too (runc does the same).
    rt.run(&["exec", &id, "sh", "-c", "ulimit -n"])
        .assert_success("exec ulimit")
        .stdout_text()
        .contains("1024")
        .then_some(())
        .expect("RLIMIT_NOFILE from config.json");
}

#[test]
fn exec_process_json_detached_writes_the_pid_file() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&["sleep", "1000"]);
    let rt = Runtime::skiff();
    let id = sleeper(&rt, &bundle);
    let dir = rt.root().parent().expect("dir").to_path_buf();
    let process = dir.join("process.json");
    let marker = "/tmp/exec-marker";
    fs::write(
        &process,
        json!({
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh", "-c", format!("echo $WHO > {marker}; exec sleep 1000")],
            "env": ["PATH=/bin", "WHO=process-json"],
            "cwd": "/",
            "noNewPrivileges": true
        })
        .to_string(),
    )
    .expect("write process.json");
    let pid_file = dir.join("exec.pid");
    rt.run(&[
        "exec",
        "--process",
        process.to_str().expect("utf-8"),
        "--detach",
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
        &id,
    ])
    .assert_success("exec --process --detach");
    let text = fs::read_to_string(&pid_file).expect("pid file");
    assert!(
        text.chars().all(|c| c.is_ascii_digit()),
        "bare digits: {text:?}"
    );
    let pid: i32 = text.parse().expect("pid");
    let init = init_pid(&rt, &id);
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/ns/pid")).expect("exec pid ns"),
        fs::read_link(format!("/proc/{init}/ns/pid")).expect("init pid ns")
    );
    let host_marker = bundle.rootfs().join("tmp/exec-marker");
    let deadline = Instant::now() + WAIT;
    while !host_marker.exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        fs::read_to_string(&host_marker).expect("marker"),
        "process-json\n"
    );
    // `ps` lists it with the init.
    let ps = rt.run(&["ps", "--format", "json", &id]);
    ps.assert_success("ps");
    let pids: Vec<i64> = serde_json::from_slice(&ps.stdout).expect("ps json");
    assert!(
        pids.contains(&(pid as i64)),
        "ps {pids:?} lacks exec pid {pid}"
    );
}

#[test]
fn exec_of_a_missing_command_fails_and_the_container_lives_on() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&["sleep", "1000"]);
    let rt = Runtime::skiff();
    let id = sleeper(&rt, &bundle);
    let log = rt.root().parent().expect("dir").join("exec.log");
    let out = rt.run_json_log(&log, &["exec", &id, "no-such-command"]);
    assert_ne!(out.status.code(), Some(0), "exec of a missing command");
    // The last error line of the json log is what containerd shows: it must
    // name the real cause.
    let text = fs::read_to_string(&log).expect("log file");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("each log line is JSON"))
        .collect();
    for v in &lines {
        assert!(v["level"].is_string() && v["msg"].is_string() && v["time"].is_string());
    }
    let last_error = lines
        .iter()
        .rev()
        .find(|v| v["level"] == "error")
        .expect("an error line");
    let msg = last_error["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("no-such-command") && msg.contains("not found"),
        "log names the cause: {msg}"
    );
    assert_eq!(rt.state(&id)["status"], "running");
    rt.run(&["exec", &id, "true"])
        .assert_success("exec after failure");
}

#[test]
fn exec_into_a_stopped_or_paused_container_fails_clearly() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&["sleep", "1000"]);
    let rt = Runtime::skiff();
    let id = sleeper(&rt, &bundle);
    if rt.run(&["pause", &id]).status.success() {
        let out = rt.run(&["exec", &id, "true"]);
        assert_ne!(out.status.code(), Some(0));
        assert!(
            out.stderr_text().contains("paused"),
            "{}",
            out.stderr_text()
        );
        rt.run(&["resume", &id]).assert_success("resume");
    } else {
        eprintln!("pause is not available here: paused case not checked");
    }
    rt.kill(&id, "KILL").assert_success("kill");
    rt.wait_for_status(&id, "stopped", WAIT);
    let out = rt.run(&["exec", &id, "true"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        out.stderr_text().contains("stopped"),
        "{}",
        out.stderr_text()
    );
    let out = rt.run(&["exec", "no-such-container", "true"]);
    assert!(
        out.stderr_text().contains("does not exist"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn console_socket_gets_the_pty_master_of_the_containers_devpts() {
    if skip_unless_root() {
        return;
    }
    let mut bundle = Bundle::new().args(&[
        "sh",
        "-c",
        "tty; stty size; stat -c '%t' /dev/console; readlink /proc/self/fd/0; readlink /proc/self/fd/2",
    ]);
    bundle.config_mut()["process"]["terminal"] = json!(true);
    bundle.config_mut()["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let sock = socket_path(&rt, "console.sock");
    let listener = UnixListener::bind(&sock).expect("bind console socket");
    rt.create_with(
        &id,
        &bundle,
        &["--console-socket", sock.to_str().expect("utf-8")],
    )
    .assert_success("create with console socket");
    let (master, data) = recv_master(&listener);
    assert!(data.len() < 4096);
    rt.start(&id).assert_success("start");
    let out = read_pty(master, WAIT);
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines.first(), Some(&"/dev/pts/0"), "{out:?}");
    assert_eq!(lines.get(1), Some(&"33 101"), "consoleSize: {out:?}");
    // /dev/console is the pty (major 136 = 0x88), and stdio are the pty.
    assert_eq!(lines.get(2), Some(&"88"), "/dev/console: {out:?}");
    assert_eq!(lines.get(3), Some(&"/dev/pts/0"), "{out:?}");
    assert_eq!(lines.get(4), Some(&"/dev/pts/0"), "{out:?}");
    rt.wait_for_status(&id, "stopped", WAIT);
}

#[test]
fn terminal_and_console_socket_must_come_together() {
    if skip_unless_root() {
        return;
    }
    let mut bundle = Bundle::new().args(&["true"]);
    bundle.config_mut()["process"]["terminal"] = json!(true);
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let out = rt.create(&id, &bundle);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        out.stderr_text().contains("console socket"),
        "{}",
        out.stderr_text()
    );
    assert!(
        !rt.root().join(&id).exists(),
        "no state after a refused create"
    );
    let plain = Bundle::new().args(&["true"]);
    let sock = socket_path(&rt, "unused.sock");
    let _listener = UnixListener::bind(&sock).expect("bind");
    let out = rt.create_with(
        &rt.new_id(),
        &plain,
        &["--console-socket", sock.to_str().expect("utf-8")],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        out.stderr_text().contains("console socket"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn exec_with_tty_sends_its_own_pty_over_the_console_socket() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&["sleep", "1000"]);
    let rt = Runtime::skiff();
    let id = sleeper(&rt, &bundle);
    let sock = socket_path(&rt, "exec-console.sock");
    let listener = UnixListener::bind(&sock).expect("bind console socket");
    rt.run(&[
        "exec",
        "--tty",
        "--detach",
        "--console-socket",
        sock.to_str().expect("utf-8"),
        &id,
        "sh",
        "-c",
        "read line; echo got:$line; tty",
    ])
    .assert_success("exec -t -d with console socket");
    let (master, _) = recv_master(&listener);
    let mut w = File::from(master.try_clone().expect("dup master"));
    w.write_all(b"hello\n").expect("type into the pty");
    let out = read_pty(master, WAIT);
    assert!(out.contains("got:hello"), "{out:?}");
    assert!(out.contains("/dev/pts/"), "exec gets a pty: {out:?}");
    // Without a socket, a detached exec cannot have a terminal.
    let out = rt.run(&["exec", "-t", "-d", &id, "true"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(out.stderr_text().contains("console socket"));
}

#[test]
fn foreground_run_and_exec_with_a_terminal_proxy_the_pty() {
    if skip_unless_root() {
        return;
    }
    let mut bundle = Bundle::new().args(&["sh", "-c", "tty; echo out; exit 3"]);
    bundle.config_mut()["process"]["terminal"] = json!(true);
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let out = rt.run_container_as(&id, &bundle);
    out.assert_code(3, "run with terminal");
    assert!(
        out.stdout_text().contains("/dev/pts/0"),
        "{}",
        out.stdout_text()
    );
    assert!(out.stdout_text().contains("out"));
    rt.assert_no_leaks(&id, &bundle);
    let plain = Bundle::new().args(&["sleep", "1000"]);
    let id = sleeper(&rt, &plain);
    let out = rt.run(&["exec", "-t", &id, "sh", "-c", "tty; exit 4"]);
    out.assert_code(4, "exec -t in the foreground");
    assert!(
        out.stdout_text().contains("/dev/pts/0"),
        "{}",
        out.stdout_text()
    );
}

#[test]
fn stdio_pipes_pass_through_untouched() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&[
        "sh",
        "-c",
        "readlink /proc/self/fd/0; readlink /proc/self/fd/1; read x; echo got:$x; echo to-err >&2",
    ]);
    let rt = Runtime::skiff();
    let id = rt.new_id();
    bundle.flush();
    let (in_r, mut in_w) = std::io::pipe().expect("stdin pipe");
    let (mut out_r, out_w) = std::io::pipe().expect("stdout pipe");
    let (mut err_r, err_w) = std::io::pipe().expect("stderr pipe");
    let in_ino = fs::metadata(format!("/proc/self/fd/{}", in_r.as_raw_fd()))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .expect("stdin pipe inode");
    let mut cmd = rt.command();
    cmd.args(["run", "--bundle", bundle.path_str(), &id])
        .stdin(Stdio::from(in_r))
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w));
    let mut child = cmd.spawn().expect("spawn run");
    drop(cmd);
    in_w.write_all(b"through-pipe\n").expect("write stdin");
    drop(in_w);
    let mut out = String::new();
    out_r.read_to_string(&mut out).expect("read stdout");
    let mut err = String::new();
    err_r.read_to_string(&mut err).expect("read stderr");
    let status = child.wait().expect("wait run");
    assert!(status.success(), "{status}: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("pipe:[{in_ino}]"),
        "stdin is our pipe: {out}"
    );
    assert!(lines[1].starts_with("pipe:["), "stdout is a pipe: {out}");
    assert_eq!(lines[2], "got:through-pipe");
    assert_eq!(err, "to-err\n");
}

#[test]
fn preserved_and_socket_activation_fds_reach_the_container() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&[
        "sh",
        "-c",
        "echo via-fd3 >&3; echo via-fd4 >&4; echo $LISTEN_FDS:$LISTEN_PID; ls /proc/$$/fd; true",
    ]);
    let rt = Runtime::skiff();
    let id = rt.new_id();
    bundle.flush();
    let dir = rt.root().parent().expect("dir").to_path_buf();
    let (f3, f4) = (dir.join("fd3"), dir.join("fd4"));
    // fd 3 is a socket-activation fd (LISTEN_FDS=1 for our pid), fd 4 is
    // preserved with --preserve-fds 1; fd 5 must not reach the container.
    let script = format!(
        "exec 3>{} 4>{} 5>/dev/null; LISTEN_FDS=1 LISTEN_PID=$$ exec {} --root {} run --preserve-fds 1 --bundle {} {id}",
        f3.display(),
        f4.display(),
        rt.bin().display(),
        rt.root().display(),
        bundle.path_str()
    );
    let out = rt.output({
        let mut c = Command::new("sh");
        c.args(["-c", &script]);
        c
    });
    out.assert_success("run with LISTEN_FDS and --preserve-fds");
    assert_eq!(fs::read_to_string(&f3).expect("fd3"), "via-fd3\n");
    assert_eq!(fs::read_to_string(&f4).expect("fd4"), "via-fd4\n");
    let text = out.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1:1", "LISTEN_FDS:LISTEN_PID in the container");
    let fds = &lines[1..];
    assert_eq!(fds, ["0", "1", "2", "3", "4"], "no other fd leaks in");
}

#[test]
fn features_describe_what_skiff_supports() {
    let out = Command::new(crate::support::skiff_bin())
        .arg("features")
        .output()
        .expect("run features");
    assert!(out.status.success());
    let f: Value = serde_json::from_slice(&out.stdout).expect("features JSON");
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["ociVersionMax"]
        .as_str()
        .is_some_and(|v| v.starts_with("1.")));
    let has = |v: &Value, x: &str| v.as_array().is_some_and(|a| a.iter().any(|e| e == x));
    assert!(has(&f["hooks"], "createRuntime"));
    assert!(has(&f["mountOptions"], "rbind"));
    assert!(has(&f["linux"]["namespaces"], "cgroup"));
    assert!(has(&f["linux"]["capabilities"], "CAP_SYS_ADMIN"));
    assert!(has(&f["linux"]["seccomp"]["actions"], "SCMP_ACT_ERRNO"));
    assert!(has(
        &f["linux"]["seccomp"]["operators"],
        "SCMP_CMP_MASKED_EQ"
    ));
    assert!(has(&f["linux"]["seccomp"]["archs"], "SCMP_ARCH_X86_64"));
    for k in [
        "apparmor",
        "selinux",
        "intelRdt",
        "cgroup",
        "mountExtensions",
    ] {
        assert!(f["linux"][k].is_object(), "linux.{k}");
    }
}

#[test]
fn state_follows_the_container_through_its_life() {
    if skip_unless_root() {
        return;
    }
    let mut bundle = Bundle::new().args(&["sleep", "1000"]);
    let rt = Runtime::skiff();
    let id = rt.new_id();
    // A createRuntime hook asks for the state while create is in progress.
    let seen = rt.root().parent().expect("dir").join("creating.json");
    let hook = format!(
        "{} --root {} state {id} > {}",
        rt.bin().display(),
        rt.root().display(),
        seen.display()
    );
    bundle.config_mut()["hooks"] =
        json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}]});
    rt.create(&id, &bundle).assert_success("create");
    let creating: Value =
        serde_json::from_str(&fs::read_to_string(&seen).expect("hook output")).expect("json");
    assert_eq!(creating["status"], "creating");
    assert_eq!(rt.state(&id)["status"], "created");
    rt.start(&id).assert_success("start");
    let running = rt.state(&id);
    assert_eq!(running["status"], "running");
    let pid = running["pid"].as_i64().expect("pid");
    if rt.run(&["pause", &id]).status.success() {
        assert_eq!(rt.state(&id)["status"], "paused");
        rt.run(&["resume", &id]).assert_success("resume");
    }
    // The init dies and is reaped by someone else (not us, not skiff).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill init");
    let st = rt.wait_for_status(&id, "stopped", WAIT);
    assert_eq!(st["pid"], 0);
    rt.delete(&id).assert_success("delete stopped");
    rt.assert_no_leaks(&id, &bundle);
}
