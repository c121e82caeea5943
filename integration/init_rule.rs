//! The rule for init (architecture.md): from the moment init is inside the
//! container until execve it is non-dumpable and holds only the fds it needs.
//! Each test stops init at a point of its life and attacks it from inside the
//! container (as an `exec`'d process with the container's privileges would)
//! while the host scans its fds (issue 9, findings 1, 2 and 12).

use crate::security::{all_cap_names, TempDir};
use crate::support::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
    assert!(out.contains("probe-done"), "{when}: probe did not run: {out}");
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
    rt.output(with_leaked_fd(&rt, &leak, &["create", "--bundle", b.path_str(), &id]))
        .assert_success("create");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    // From the host: past stdio, only the sync socket and the exec fifo.
    let fds = fds_from_3(pid);
    let fifo = rt.root().join(&id).join("exec.fifo");
    assert_eq!(fds.len(), 2, "init's fds: {fds:?}");
    assert!(fds.iter().any(|f| f.starts_with("socket:")), "{fds:?}");
    assert!(fds.iter().any(|f| Path::new(f) == fifo), "{fds:?}");
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
    rt.delete_force(&id).assert_success("delete");
}

/// Dumpable or not shows from the host as the owner of /proc/<pid>/fd: the
/// process's uid while dumpable, root once it is not. init has switched to the
/// container's user (1000) by the time it waits for `start`.
#[test]
fn created_init_is_not_dumpable() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new().args(&["sleep", "1000"]);
    b.config_mut()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &b).assert_success("create");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.lines().any(|l| l.starts_with("Uid:") && l.contains("1000")),
        "init has not switched user yet: {status}"
    );
    let owner = fs::metadata(format!("/proc/{pid}/fd")).unwrap().uid();
    assert_eq!(owner, 0, "init is dumpable while it waits for start");
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

/// Host processes whose parent is `ppid` and that are not zombies.
fn children_of(ppid: u32) -> Vec<i64> {
    let mut v = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        if f[1] == ppid.to_string() && f[0] != "Z" {
            v.push(pid);
        }
    }
    v
}

/// Opens `fifo` for writing, which returns once a reader has opened it; gives
/// up (and unblocks itself) after `limit`.
fn wait_for_reader(fifo: &Path, limit: Duration) -> Option<fs::File> {
    let (tx, rx) = mpsc::channel();
    let p = fifo.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(fs::OpenOptions::new().write(true).open(&p));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(f)) => Some(f),
        _ => {
            // Be the reader ourselves so the thread's open returns.
            let _ = fs::File::open(fifo);
            None
        }
    }
}

fn kill_child(c: &mut Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// Exec point: the joining init of `exec`, inside the container's namespaces
/// and in the middle of its setup, stopped on the container's own
/// /etc/passwd (a fifo: init reads it to find HOME). The container runs in a
/// user namespace with every capability there, as rootless and Kubernetes
/// user-namespace pods do: a dumpable init could then be ptraced and its fds
/// opened (the procfs handle of its oom_score_adj write, the caller's fd 7).
#[test]
fn joining_init_of_exec_is_out_of_the_containers_reach() {
    if skip_unless_root() {
        return;
    }
    let dir = TempDir::new("initrule");
    let leak = canary(&dir);
    let mut b = Bundle::new().args(&["sleep", "1000"]).env("HOME=/root");
    user_namespace(&mut b);
    let all = json!(all_cap_names());
    b.config_mut()["process"]["capabilities"] =
        json!({"bounding": all, "effective": all, "permitted": all});
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.create(&id, &b).assert_success("create");
    rt.start(&id).assert_success("start");
    let passwd = b.rootfs().join("etc/passwd");
    fs::remove_file(&passwd).unwrap();
    nix::unistd::mkfifo(&passwd, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let caps = json!({"bounding": all, "effective": all, "permitted": all});
    let blocked = process_json(
        &dir,
        "blocked.json",
        json!({"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["true"],
               "env": ["PATH=/bin"], "oomScoreAdj": 100, "capabilities": caps}),
    );
    let io = dir.path().join("exec.out");
    let mut exec = with_leaked_fd(&rt, &leak, &["exec", "-p", &blocked, &id])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&io).unwrap())
        .stderr(fs::File::create(dir.path().join("exec.err")).unwrap())
        .spawn()
        .unwrap();
    let Some(writer) = wait_for_reader(&passwd, Duration::from_secs(60)) else {
        kill_child(&mut exec);
        panic!("the joining init never opened /etc/passwd");
    };
    // The joining init: the exec process's child (CLONE_PARENT from stage 1).
    let deadline = Instant::now() + Duration::from_secs(10);
    let init = loop {
        if let Some(p) = children_of(exec.id()).first() {
            break *p;
        }
        assert!(Instant::now() < deadline, "no joining init found");
        std::thread::sleep(Duration::from_millis(20));
    };
    let fds = fds_from_3(init);
    let comm = fs::read_to_string(format!("/proc/{init}/comm")).unwrap();
    let probe = process_json(
        &dir,
        "probe.json",
        json!({"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh", "-c", PROBE],
               "env": ["PATH=/bin", "HOME=/"], "capabilities": caps}),
    );
    let out = rt.run(&["exec", "-p", &probe, &id]);
    // Release the joining init: it reads a passwd and runs `true`.
    use std::io::Write;
    (&writer).write_all(b"root:x:0:0:root:/root:/bin/sh\n").unwrap();
    drop(writer);
    let st = exec.wait().unwrap();
    assert!(st.success(), "exec: {st:?}: {}", fs::read_to_string(&io).unwrap());
    out.assert_success("exec probe");
    assert_probe_found_nothing(&out.stdout_text(), comm.trim(), "exec");
    // From the host: past stdio, the sync socket and the file it is reading.
    assert_eq!(fds.len(), 2, "joining init's fds: {fds:?}");
    assert!(fds.iter().any(|f| f.starts_with("socket:")), "{fds:?}");
    assert!(fds.iter().any(|f| f == "/etc/passwd"), "{fds:?}");
    rt.delete_force(&id).assert_success("delete");
}
