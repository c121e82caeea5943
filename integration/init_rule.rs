//! The rule for init (architecture.md): from the moment init is inside the
//! container until execve it is non-dumpable and holds only the fds it needs.
//! Each test stops init at a point of its life and attacks it from inside the
//! container (as an `exec`'d process with the container's privileges would)
//! while the host scans its fds (issue 9, findings 1, 2 and 12).

use crate::seccomp::recv_state_and_fd;
use crate::security::TempDir;
use crate::support::*;
use serde_json::{json, Value};
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const SECRET: &str = "HOST-SECRET-canary";

/// A host file the caller of skiff has open as fd 7 (not close-on-exec), as a
/// careless engine or shell would leave it.
fn canary(dir: &TempDir) -> PathBuf {
    let p = dir.path().join("canary");
    fs::write(&p, SECRET).unwrap();
    p
}

/// `skiff --root R <args>` with fd 7 open on `leak` (through a shell, so the
/// fd is inherited exactly as a caller's stray fd would be).
fn with_leaked_fd(rt: &Runtime, leak: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("exec 7<\"$0\"; exec \"$@\"")
        .arg(leak)
        .arg(rt.bin())
        .arg("--root")
        .arg(rt.root())
        .args(args);
    cmd
}

/// What a process inside the container finds when it goes through the fds of
/// every other process: one line per fd it can follow (`FD <pid> <comm>`:
/// readlink and open of /proc/<pid>/fd/N need ptrace access, which a
/// non-dumpable process refuses; merely listing the numbers does not), per fd
/// leading to a procfs (`PROCFS`), and per fd that reads the host's canary
/// (`SECRET`). Only regular files are read, so a socket or fifo cannot block
/// the probe.
const PROBE: &str = r#"
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = "$$" ] && continue
  for f in "$d"/fd/*; do
    readlink "$f" >/dev/null 2>&1 && echo "FD $p $(cat $d/comm 2>/dev/null)"
    [ -e "$f/sys/kernel/core_pattern" ] && echo "PROCFS $p $f"
    [ -f "$f" ] && grep -q HOST-SECRET "$f" 2>/dev/null && echo "SECRET $p $f"
  done
done
echo probe-done
"#;

fn process_json(dir: &TempDir, name: &str, p: Value) -> String {
    let path = dir.path().join(name);
    fs::write(&path, serde_json::to_vec(&p).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

/// The fds from 3 up of host process `pid`, as readlink shows them.
fn fds_from_3(pid: i64) -> Vec<String> {
    let mut v = Vec::new();
    for e in fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let e = e.unwrap();
        let n: i32 = e.file_name().to_str().unwrap().parse().unwrap();
        if n >= 3 {
            if let Ok(t) = fs::read_link(e.path()) {
                v.push(t.to_string_lossy().into_owned());
            }
        }
    }
    v.sort();
    v
}

fn assert_probe_found_nothing(out: &str, init_comm: &str, when: &str) {
    assert!(
        out.contains("probe-done"),
        "{when}: probe did not run: {out}"
    );
    assert!(!out.contains("PROCFS"), "{when}: a procfs reachable: {out}");
    assert!(!out.contains("SECRET"), "{when}: host fd reachable: {out}");
    for l in out.lines().filter(|l| l.starts_with("FD ")) {
        assert!(
            !l.ends_with(&format!(" {init_comm}")),
            "{when}: init's fds can be followed from the container: {out}"
        );
    }
}

/// Create point: init is set up and waits for `start`. The config makes init
/// write procfs (oomScoreAdj, a sysctl, domainname), and the caller of create
/// has a host file open. runc holds neither a procfs fd nor the caller's fd
/// here; init must not either, and the container must not reach init's fds.
#[test]
fn created_init_holds_no_procfs_and_no_host_fd() {
    if skip_unless_root() {
        return;
    }
    let dir = TempDir::new("initrule");
    let leak = canary(&dir);
    let mut b = Bundle::new().args(&["sleep", "1000"]);
    b.config_mut()["process"]["oomScoreAdj"] = json!(100);
    b.config_mut()["domainname"] = json!("skiff.test");
    b.config_mut()["linux"]["sysctl"] = json!({"kernel.msgmax": "8192"});
    b.flush();
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.output(with_leaked_fd(
        &rt,
        &leak,
        &["create", "--bundle", b.path_str(), &id],
    ))
    .assert_success("create");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    // From inside: a process with init's uid and capabilities.
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let pj = process_json(
        &dir,
        "probe.json",
        json!({"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh", "-c", PROBE],
               "env": ["PATH=/bin", "HOME=/"],
               "capabilities": {"bounding": caps, "effective": caps, "permitted": caps}}),
    );
    let out = rt.run(&["exec", "-p", &pj, &id]);
    out.assert_success("exec probe");
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_probe_found_nothing(&out.stdout_text(), comm.trim(), "created");
    // From the host: past stdio, only the sync socket and the exec fifo.
    let fds = fds_from_3(pid);
    let fifo = rt.root().join(&id).join("exec.fifo");
    assert_eq!(fds.len(), 2, "init's fds: {fds:?}");
    assert!(fds.iter().any(|f| f.starts_with("socket:")), "{fds:?}");
    assert!(fds.iter().any(|f| Path::new(f) == fifo), "{fds:?}");
    rt.delete_force(&id).assert_success("delete");
}

/// The seccomp agent of `joining_init_of_exec_is_out_of_the_containers_reach`:
/// lets every execve of the container's processes through, except the first
/// one of the `hold`-th connection (0: create's init), whose pid it reports on
/// `held` and which it refuses with EPERM once `release` says so.
fn agent(
    listener: UnixListener,
    hold: usize,
    held: mpsc::Sender<Result<u32, String>>,
    release: mpsc::Receiver<()>,
) {
    let mut hold_parts = Some((held, release));
    for n in 0.. {
        let Ok((conn, _)) = listener.accept() else {
            return;
        };
        let (_, fd) = recv_state_and_fd(&conn);
        if n != hold {
            std::thread::spawn(move || {
                while let Ok(req) = libseccomp::ScmpNotifReq::receive(fd.as_raw_fd()) {
                    let r = libseccomp::ScmpNotifResp::new_continue(
                        req.id,
                        libseccomp::ScmpNotifRespFlags::empty(),
                    );
                    let _ = r.respond(fd.as_raw_fd());
                }
            });
            continue;
        }
        let Some((held, release)) = hold_parts.take() else {
            continue;
        };
        std::thread::spawn(move || {
            let req = libseccomp::ScmpNotifReq::receive(fd.as_raw_fd());
            let _ = held.send(req.as_ref().map(|r| r.pid).map_err(|e| e.to_string()));
            let _ = release.recv();
            if let Ok(req) = req {
                let r = libseccomp::ScmpNotifResp::new_error(
                    req.id,
                    -libc::EPERM,
                    libseccomp::ScmpNotifRespFlags::empty(),
                );
                let _ = r.respond(fd.as_raw_fd());
            }
        });
    }
}

/// Exec point: the joining init of `exec` after it has dropped to the
/// container's user and capabilities, still running skiff code with the sync
/// socket to the host: its execve of the user program is held by the
/// container's seccomp notify filter (the agent is this test), the window in
/// which an attacker ptraced 9 of 100 joining inits. A dumpable init there
/// can be attached to and its fds opened (the procfs handle of its
/// oom_score_adj write, the caller's fd 7) by any container process with the
/// same privileges.
#[test]
fn joining_init_of_exec_is_out_of_the_containers_reach() {
    if skip_unless_root() {
        return;
    }
    let dir = TempDir::new("initrule");
    let leak = canary(&dir);
    let sock = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    std::thread::spawn(move || agent(listener, 1, held_tx, release_rx));
    let mut b = Bundle::new().args(&["sleep", "1000"]);
    b.config_mut()["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
        "syscalls": [{"names": ["execve", "execveat"], "action": "SCMP_ACT_NOTIFY"}]});
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &b).assert_success("create");
    rt.start(&id).assert_success("start");
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let caps = json!({"bounding": caps, "effective": caps, "permitted": caps});
    let held = process_json(
        &dir,
        "held.json",
        json!({"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["true"],
               "env": ["PATH=/bin", "HOME=/"], "oomScoreAdj": 100,
               "noNewPrivileges": true, "capabilities": caps}),
    );
    let io = dir.path().join("exec.err");
    let mut exec = with_leaked_fd(&rt, &leak, &["exec", "-p", &held, &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&io).unwrap())
        .spawn()
        .unwrap();
    let held_pid = match held_rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(pid)) => pid,
        other => {
            let _ = exec.kill();
            let _ = exec.wait();
            panic!(
                "init never reached execve: {other:?}: {}",
                fs::read_to_string(&io).unwrap_or_default()
            );
        }
    };
    let fds = fds_from_3(held_pid as i64);
    let comm = fs::read_to_string(format!("/proc/{held_pid}/comm")).unwrap();
    let probe = process_json(
        &dir,
        "probe.json",
        json!({"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh", "-c", PROBE],
               "env": ["PATH=/bin", "HOME=/"], "noNewPrivileges": true,
               "capabilities": caps}),
    );
    let out = rt.run(&["exec", "-p", &probe, &id]);
    let _ = release_tx.send(());
    let _ = exec.wait();
    out.assert_success("exec probe");
    assert_probe_found_nothing(&out.stdout_text(), comm.trim(), "exec");
    // From the host: past stdio, the sync socket alone.
    assert_eq!(fds.len(), 1, "joining init's fds: {fds:?}");
    assert!(fds[0].starts_with("socket:"), "{fds:?}");
    rt.delete_force(&id).assert_success("delete");
}

fn user_namespace(b: &mut Bundle) {
    let c = b.config_mut();
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
}

/// `dockerd --userns-remap` and podman `--userns=auto --oom-score-adj`:
/// init becomes root of the user namespace (and so non-dumpable, owned by
/// the host's root) before it could write its own oom_score_adj; it must be
/// written before entering, as runc does, for create and for exec.
#[test]
fn oom_score_adj_is_applied_in_a_user_namespace() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new().args(&["sh", "-c", "cat /proc/self/oom_score_adj; sleep 1000"]);
    user_namespace(&mut b);
    b.config_mut()["process"]["oomScoreAdj"] = json!(123);
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &b).assert_success("create");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let adj = fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
    assert_eq!(adj.trim(), "123");
    rt.start(&id).assert_success("start");
    let dir = TempDir::new("initrule");
    let pj = process_json(
        &dir,
        "p.json",
        json!({"user": {"uid": 0, "gid": 0}, "cwd": "/",
               "args": ["cat", "/proc/self/oom_score_adj"],
               "env": ["PATH=/bin"], "oomScoreAdj": 321}),
    );
    let out = rt.run(&["exec", "-p", &pj, &id]);
    out.assert_success("exec with oomScoreAdj in a user namespace");
    assert_eq!(out.stdout_text().trim(), "321");
    rt.delete_force(&id).assert_success("delete");
}

/// Time offsets together with a new user namespace: written from outside,
/// since inside init is root of the user namespace only and non-dumpable.
/// runc 1.1.5 has no time namespaces (added in runc 1.2); the expected
/// offsets are the config's.
#[test]
fn time_offsets_are_applied_in_a_user_namespace() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new().args(&["cat", "/proc/self/timens_offsets"]);
    user_namespace(&mut b);
    b.config_mut()["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    b.config_mut()["linux"]["timeOffsets"] = json!({
        "monotonic": {"secs": 1000, "nanosecs": 5},
        "boottime": {"secs": 2000, "nanosecs": 0}});
    let rt = Runtime::skiff();
    let (st, out, err) = rt.run_container(&b);
    assert!(st.success(), "{err}");
    let got: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(got.contains(&vec!["monotonic", "1000", "5"]), "{out}");
    assert!(got.contains(&vec!["boottime", "2000", "0"]), "{out}");
}
