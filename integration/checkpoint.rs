//! checkpoint and restore through CRIU (issue 13). Where `criu check` fails
//! (this host: criu 3.17 on kernel 6.18) checkpoint must fail at once, say
//! why in CRIU's words, and leave the container running and unchanged; the
//! real checkpoint/restore tests run where CRIU works (the VM lane's Debian 13
//! guest, criu 4.1) and print why they skip elsewhere.

use crate::support::{skip_unless_root, Bundle, OutputExt, Runtime};
use serde_json::{json, Value};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A shell loop that writes an ever-growing count to /tmp/count in the rootfs.
const COUNTER: &str = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; \
                       mv /tmp/count.new /tmp/count; sleep 0.1; done";

/// Ok when `criu check` passes; the reason it does not otherwise.
fn criu_check() -> Result<(), String> {
    match Command::new("criu").arg("check").output() {
        Err(e) => Err(format!("criu not runnable: {e}")),
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => {
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stderr),
                String::from_utf8_lossy(&o.stdout)
            );
            let first = all.lines().find(|l| l.contains("Error")).unwrap_or("");
            Err(format!("`criu check` fails here ({}): {first}", o.status))
        }
    }
}

/// True (after saying why) when the test cannot run: not root, or CRIU
/// cannot work on this host.
pub(crate) fn skip_unless_criu(test: &str) -> bool {
    if skip_unless_root() {
        return true;
    }
    match criu_check() {
        Ok(()) => false,
        Err(why) => {
            eprintln!("skipping {test}: CRIU cannot checkpoint here: {why}");
            true
        }
    }
}

fn count(bundle: &Bundle) -> Option<u64> {
    std::fs::read_to_string(bundle.rootfs().join("tmp/count"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Waits until the counter reaches at least `min`, and returns it.
fn wait_count(bundle: &Bundle, min: u64, max: Duration) -> u64 {
    let end = Instant::now() + max;
    loop {
        if let Some(c) = count(bundle).filter(|c| *c >= min) {
            return c;
        }
        assert!(
            Instant::now() < end,
            "counter did not reach {min} in {max:?} (last {:?})",
            count(bundle)
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn counter_bundle() -> Bundle {
    let b = Bundle::new().args(&["sh", "-c", COUNTER]);
    std::fs::create_dir_all(b.rootfs().join("tmp")).expect("mkdir rootfs/tmp");
    b
}

/// `run -d` with stdio /dev/null: a container's stdio must be something CRIU
/// can dump (pipes, as engines give, or /dev/null, which init reopens inside
/// the container), not a file on a host mount such as the harness's log files.
fn run_detached(rt: &Runtime, bundle: &Bundle) -> String {
    run_detached_with(rt, bundle, &[])
}

fn run_detached_with(rt: &Runtime, bundle: &Bundle, flags: &[&str]) -> String {
    run_detached_stderr(rt, bundle, flags, Stdio::null())
}

/// `run -d` with the container's stderr (inherited from us) as given.
fn run_detached_stderr(rt: &Runtime, bundle: &Bundle, flags: &[&str], stderr: Stdio) -> String {
    let id = rt.new_id();
    bundle.flush();
    let mut cmd = rt.command();
    cmd.args(["run", "-d", "--bundle", bundle.path_str()])
        .args(flags)
        .arg(&id);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn run -d");
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait run -d") {
            break s;
        }
        assert!(Instant::now() < end, "run -d {id} hangs");
        thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "run -d {id}: {status}");
    id
}

fn pid_of(state: &Value) -> i64 {
    state["pid"].as_i64().expect("pid in state")
}

fn images(bundle: &Bundle, name: &str) -> PathBuf {
    bundle.path().join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub(crate) fn freezer_state(pid: i64) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    for line in cg.lines() {
        let mut it = line.splitn(3, ':');
        let (_, ctrl, path) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or(""));
        let file = if ctrl.is_empty() {
            format!("/sys/fs/cgroup{path}/cgroup.freeze")
        } else if ctrl.split(',').any(|c| c == "freezer") {
            format!("/sys/fs/cgroup/freezer{path}/freezer.state")
        } else {
            continue;
        };
        if let Ok(v) = std::fs::read_to_string(&file) {
            return v.trim().to_string();
        }
    }
    String::new()
}

#[test]
fn checkpoint_where_criu_cannot_work_fails_fast_and_leaves_the_container_running() {
    if skip_unless_root() {
        return;
    }
    let why = match criu_check() {
        Ok(()) => {
            eprintln!(
                "skipping checkpoint_where_criu_cannot_work: `criu check` passes here, so this host's failure mode cannot be shown"
            );
            return;
        }
        Err(why) if why.starts_with("criu not runnable") => {
            eprintln!(
                "skipping checkpoint_where_criu_cannot_work: {why} (install criu: Debian's package is the one that fails here)"
            );
            return;
        }
        Err(why) => why,
    };
    eprintln!("{why}");
    let bundle = counter_bundle();
    let rt = Runtime::skiff();
    let id = run_detached(&rt, &bundle);
    let before = rt.state(&id);
    wait_count(&bundle, 2, Duration::from_secs(10));
    let img = images(&bundle, "img");
    let t = Instant::now();
    let out = rt.run(&["checkpoint", "--image-path", s(&img), &id]);
    let took = t.elapsed();
    out.assert_code(1, "checkpoint where CRIU cannot work");
    let err = out.stderr_text();
    assert!(
        err.contains("CRIU cannot work on this host") && err.contains("criu check"),
        "the error says CRIU cannot work here and why: {err}"
    );
    // CRIU's own reason (on this host: "vdso: Unexpected rt vDSO area bounds").
    let reason = why.rsplit("Error").next().unwrap_or("").trim();
    let reason = reason.split_once("): ").map_or(reason, |(_, r)| r);
    assert!(
        err.contains(reason),
        "the error quotes `criu check` ({reason:?}): {err}"
    );
    assert!(
        took < Duration::from_secs(20),
        "failed fast, not after {took:?}"
    );
    // Still running, the same process, not frozen, and still counting.
    let after = rt.state(&id);
    assert_eq!(after["status"], "running", "{after}");
    assert_eq!(pid_of(&after), pid_of(&before));
    let f = freezer_state(pid_of(&after));
    assert!(f == "THAWED" || f == "0", "cgroup not left frozen: {f:?}");
    let c = count(&bundle).unwrap_or(0);
    wait_count(&bundle, c + 2, Duration::from_secs(10));
    // restore of a container that was never checkpointed fails without leftovers.
    let id2 = rt.new_id();
    let out = rt.run(&[
        "restore",
        "-d",
        "--image-path",
        s(&img),
        "--bundle",
        bundle.path_str(),
        &id2,
    ]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "restore from a failed checkpoint"
    );
    rt.assert_no_leaks(&id2, &bundle);
}

#[test]
fn checkpoint_flags_are_runcs_and_bad_values_are_refused() {
    if skip_unless_root() {
        return;
    }
    let bundle = counter_bundle();
    let rt = Runtime::skiff();
    let id = run_detached(&rt, &bundle);
    let img = images(&bundle, "img");
    // Go-style single-dash spellings (go-runc, podman) parse.
    let out = rt.run(&[
        "checkpoint",
        "-image-path",
        s(&img),
        "-manage-cgroups-mode",
        "hard",
        &id,
    ]);
    out.assert_code(1, "bad --manage-cgroups-mode");
    assert!(
        out.stderr_text().contains("manage-cgroups-mode"),
        "{}",
        out.stderr_text()
    );
    let out = rt.run(&[
        "checkpoint",
        "--image-path",
        s(&img),
        "--page-server",
        "nohost",
        &id,
    ]);
    out.assert_code(1, "bad --page-server");
    assert!(
        out.stderr_text().contains("ADDRESS:PORT"),
        "{}",
        out.stderr_text()
    );
    let out = rt.run(&[
        "checkpoint",
        "--image-path",
        s(&img),
        "--parent-path",
        "/abs",
        &id,
    ]);
    assert!(
        out.stderr_text().contains("--parent-path must be relative"),
        "{}",
        out.stderr_text()
    );
    let out = rt.run(&[
        "checkpoint",
        "--image-path",
        s(&img),
        "--empty-ns",
        "pid",
        &id,
    ]);
    assert!(
        out.stderr_text().contains("not supported"),
        "{}",
        out.stderr_text()
    );
    assert_eq!(rt.state(&id)["status"], "running");
    // A flag given twice parses (urfave/cli takes it so): podman 5 sends
    // `--leave-running --leave-running` for `checkpoint --leave-running`.
    for sub in ["checkpoint", "restore"] {
        let flag = if sub == "checkpoint" {
            "--leave-running"
        } else {
            "--detach"
        };
        let out = rt.run(&[sub, "--image-path", s(&img), flag, flag, "no-such-ctr"]);
        out.assert_code(1, "a flag given twice");
        assert!(
            !out.stderr_text().contains("cannot be used multiple times"),
            "{sub} {flag} {flag}: {}",
            out.stderr_text()
        );
    }
    // A created container cannot be checkpointed (runc's words).
    let id2 = rt.new_id();
    rt.create(&id2, &bundle).assert_success("create");
    let out = rt.run(&["checkpoint", "--image-path", s(&img), &id2]);
    out.assert_code(1, "checkpoint of a created container");
    assert!(
        out.stderr_text()
            .contains("Container cannot be checkpointed in created state"),
        "{}",
        out.stderr_text()
    );
    // `features` says checkpoint/restore is there (runc: "true" when built with CRIU support).
    let f = Command::new(rt.bin())
        .arg("features")
        .output()
        .expect("features");
    let f: Value = serde_json::from_slice(&f.stdout).expect("features JSON");
    assert_eq!(
        f["annotations"]["org.opencontainers.runc.checkpoint.enabled"], "true",
        "{f}"
    );
    let help = rt.run(&["restore", "--help"]).stdout_text();
    for f in [
        "--image-path",
        "--no-subreaper",
        "--console-socket",
        "--detach",
        "--pid-file",
        "--no-pivot",
        "--bundle",
    ] {
        assert!(help.contains(f), "restore --help names {f}");
    }
}

/// A dump CRIU gives up after it froze the tree (the container's stderr is
/// a file on a host mount it cannot name: "Can't lookup mount=... for fd=2",
/// runc 1.1.15 fails the same way in the guest) leaves the container as it
/// was: running, or paused when it was paused, the same process, counting.
#[test]
fn failed_dump_leaves_the_container_as_it_was() {
    if skip_unless_criu("failed_dump_leaves_the_container_as_it_was") {
        return;
    }
    let bundle = counter_bundle();
    let rt = Runtime::skiff();
    let log = std::fs::File::create(bundle.path().join("stderr.log")).expect("stderr file");
    let id = run_detached_stderr(&rt, &bundle, &[], Stdio::from(log));
    let pid = pid_of(&rt.state(&id));
    wait_count(&bundle, 2, Duration::from_secs(20));
    let img = images(&bundle, "img");
    for paused in [false, true] {
        if paused {
            rt.run(&["pause", &id]).assert_success("pause");
        }
        let out = rt.run(&["checkpoint", "--image-path", s(&img), &id]);
        out.assert_code(1, "checkpoint of a container with a host file as stderr");
        assert!(
            out.stderr_text().contains("dump.log"),
            "the error names CRIU's log: {}",
            out.stderr_text()
        );
        let st = rt.state(&id);
        let (want, frozen) = if paused {
            ("paused", ["FROZEN", "1"])
        } else {
            ("running", ["THAWED", "0"])
        };
        assert_eq!(st["status"], want, "a failed dump leaves it {want}: {st}");
        assert_eq!(pid_of(&st), pid, "the same process");
        let f = freezer_state(pid);
        assert!(
            frozen.contains(&f.as_str()),
            "cgroup freezer {f:?} when {want}"
        );
        if paused {
            rt.run(&["resume", &id]).assert_success("resume");
        }
        let c = count(&bundle).unwrap_or(0);
        wait_count(&bundle, c + 3, Duration::from_secs(20));
    }
    // Nothing to restore from: restore fails and leaves nothing.
    let id2 = rt.new_id();
    let out = rt.run(&[
        "restore",
        "-d",
        "--image-path",
        s(&img),
        "--bundle",
        bundle.path_str(),
        &id2,
    ]);
    out.assert_code(1, "restore from a failed dump's images");
    rt.assert_no_leaks(&id2, &bundle);
    rt.delete_force(&id).assert_success("delete");
    rt.assert_no_leaks(&id, &bundle);
}

/// Checkpoint (no --leave-running) stops the container and removes it, as
/// runc does; restore brings it back running with a new host pid, and the
/// count goes on from where it was.
#[test]
fn checkpoint_then_restore_continues_the_count() {
    if skip_unless_criu("checkpoint_then_restore_continues_the_count") {
        return;
    }
    let bundle = counter_bundle();
    let rt = Runtime::skiff();
    let id = run_detached(&rt, &bundle);
    let old_pid = pid_of(&rt.state(&id));
    wait_count(&bundle, 3, Duration::from_secs(20));
    let img = images(&bundle, "img");
    let work = images(&bundle, "work");
    rt.run(&[
        "checkpoint",
        "--image-path",
        s(&img),
        "--work-path",
        s(&work),
        &id,
    ])
    .assert_success("checkpoint");
    let out = rt.run(&["state", &id]);
    assert!(
        out.stderr_text().contains("does not exist"),
        "checkpointed container is gone: {}",
        out.stderr_text()
    );
    let at_dump = count(&bundle).expect("count at checkpoint");
    thread::sleep(Duration::from_millis(600));
    assert_eq!(
        count(&bundle),
        Some(at_dump),
        "nothing counts while checkpointed"
    );
    assert!(work.join("dump.log").exists(), "CRIU's log in --work-path");
    let pid_file = bundle.path().join("restored.pid");
    rt.run(&[
        "restore",
        "-d",
        "--image-path",
        s(&img),
        "--work-path",
        s(&work),
        "--pid-file",
        s(&pid_file),
        "--bundle",
        bundle.path_str(),
        &id,
    ])
    .assert_success("restore");
    let st = rt.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["bundle"], bundle.path_str());
    let pid = pid_of(&st);
    assert_ne!(pid, old_pid, "a new host pid");
    let written = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(written, pid.to_string(), "pid file holds the restored pid");
    let c = wait_count(&bundle, at_dump + 3, Duration::from_secs(20));
    assert!(
        c > at_dump,
        "the count continues ({at_dump} -> {c}), not from 1"
    );
    rt.delete_force(&id).assert_success("delete");
    rt.assert_no_leaks(&id, &bundle);
}

#[test]
fn checkpoint_leave_running_keeps_the_container() {
    if skip_unless_criu("checkpoint_leave_running_keeps_the_container") {
        return;
    }
    let bundle = counter_bundle();
    let rt = Runtime::skiff();
    let id = run_detached(&rt, &bundle);
    let pid = pid_of(&rt.state(&id));
    wait_count(&bundle, 2, Duration::from_secs(20));
    let img = images(&bundle, "img");
    rt.run(&[
        "checkpoint",
        "--leave-running",
        "--image-path",
        s(&img),
        &id,
    ])
    .assert_success("checkpoint --leave-running");
    let st = rt.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(pid_of(&st), pid, "the same process");
    let c = count(&bundle).unwrap_or(0);
    wait_count(&bundle, c + 3, Duration::from_secs(20));
    assert!(img.join("inventory.img").exists(), "images were written");
}

#[test]
fn pre_dump_then_dump_with_parent_path_restores() {
    if skip_unless_criu("pre_dump_then_dump_with_parent_path_restores") {
        return;
    }
    // A pre-dump tracks dirty memory (soft-dirty bits): not every kernel has it.
    let track = Command::new("criu")
        .args(["check", "--feature", "mem_dirty_track"])
        .output()
        .expect("criu check --feature");
    if !track.status.success() {
        eprintln!(
            "skipping pre_dump_then_dump_with_parent_path_restores: this kernel has no memory \
             dirty tracking (`criu check --feature mem_dirty_track`: {})",
            String::from_utf8_lossy(&track.stderr).trim()
        );
        return;
    }
    let bundle = counter_bundle();
    let rt = Runtime::skiff();
    let id = run_detached(&rt, &bundle);
    wait_count(&bundle, 2, Duration::from_secs(20));
    let pre = images(&bundle, "pre");
    rt.run(&["checkpoint", "--pre-dump", "--image-path", s(&pre), &id])
        .assert_success("checkpoint --pre-dump");
    assert_eq!(
        rt.state(&id)["status"],
        "running",
        "pre-dump leaves it running"
    );
    let fin = images(&bundle, "final");
    std::fs::create_dir_all(&fin).expect("mkdir final");
    rt.run(&[
        "checkpoint",
        "--image-path",
        s(&fin),
        "--parent-path",
        "../pre",
        &id,
    ])
    .assert_success("checkpoint --parent-path ../pre");
    let at_dump = count(&bundle).expect("count");
    rt.run(&[
        "restore",
        "-d",
        "--image-path",
        s(&fin),
        "--bundle",
        bundle.path_str(),
        &id,
    ])
    .assert_success("restore");
    wait_count(&bundle, at_dump + 3, Duration::from_secs(20));
    rt.delete_force(&id).assert_success("delete");
    rt.assert_no_leaks(&id, &bundle);
}

/// Processes on this host whose command line mentions `marker`.
fn processes_mentioning(marker: &str) -> Vec<String> {
    crate::engines::processes_mentioning(marker)
        .into_iter()
        .map(|(pid, cmd)| format!("{pid} {cmd}"))
        .collect()
}

/// A server and a client in one container, talking over 127.0.0.1 (the
/// server writes what it gets to /tmp/got); the port names the test's
/// processes. With `stay`, init sleeps on once the pipeline ends.
fn tcp_bundle(port: u32, stay: bool) -> Bundle {
    let tail = if stay { "; sleep 100000" } else { "" };
    let script = format!(
        "sleep 100000 | busybox nc -l -p {port} > /tmp/got & sleep 0.5; \
         i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done | busybox nc 127.0.0.1 {port}{tail}"
    );
    counter_bundle().args(&["sh", "-c", &script])
}

fn got_lines(bundle: &Bundle) -> usize {
    std::fs::read_to_string(bundle.rootfs().join("tmp/got"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Whether the connection carries 3 more lines within `max`.
fn data_flows(bundle: &Bundle, max: Duration) -> bool {
    let n = got_lines(bundle);
    let end = Instant::now() + max;
    while got_lines(bundle) < n + 3 {
        if Instant::now() > end {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
    true
}

/// What a dump refused for the open connection leaves: (status, same
/// process, cgroup frozen, connection still carrying data).
fn refused_tcp_dump(rt: &Runtime, port: u32) -> (String, bool, bool, bool) {
    let bundle = tcp_bundle(port, true);
    let id = run_detached(rt, &bundle);
    let pid = pid_of(&rt.state(&id));
    assert!(
        data_flows(&bundle, Duration::from_secs(20)),
        "no data before the dump"
    );
    let img = images(&bundle, "img");
    let out = rt.run(&["checkpoint", "--image-path", s(&img), &id]);
    out.assert_code(1, "a dump of an open connection without --tcp-established");
    let st = rt.state(&id);
    let f = freezer_state(pid);
    let flows = data_flows(&bundle, Duration::from_secs(5));
    rt.delete_force(&id).assert_success("delete");
    (
        st["status"].as_str().unwrap_or("").to_string(),
        pid_of(&st) == pid,
        f == "FROZEN" || f == "1",
        flows,
    )
}

/// Without --tcp-established CRIU refuses an open TCP connection and the
/// container stays as runc leaves it: running, the same process, thawed.
/// (In the Debian 13 guest, runc 1.1.15 with criu 4.1, the refused dump also
/// ends the connection: both nc exit and the pipeline with them, so a
/// container whose init is that pipeline stops; criu 4.2 on the host kept
/// it. The test compares with runc rather than fixing CRIU's part.)
/// With --tcp-established the connection is dumped; a restore without the
/// flag fails and leaves nothing, one with it runs (runc 1.1.15 fails that
/// restore in the guest, "Can't connect inet socket back: Network is
/// unreachable": it leaves lo down in the empty network namespace CRIU
/// makes; skiff brings lo up at setup-namespaces) and, where CRIU resumes nc
/// intact, carries data again.
#[test]
fn tcp_established_connection_over_loopback_survives() {
    if skip_unless_criu("tcp_established_connection_over_loopback_survives") {
        return;
    }
    let port = 20000 + std::process::id() % 20000;
    let rt = Runtime::skiff();
    let ours = refused_tcp_dump(&rt, port);
    assert_eq!(
        (ours.0.as_str(), ours.1, ours.2),
        ("running", true, false),
        "a refused dump leaves the container running, the same process, thawed"
    );
    match Runtime::runc() {
        Some(runc) => {
            let theirs = refused_tcp_dump(&runc, port + 1);
            assert_eq!(
                ours, theirs,
                "skiff (left) and runc (right) after a refused dump"
            );
        }
        None => eprintln!("runc not found: the refused dump is not compared with runc"),
    }

    // init sleeps on after the pipeline: the state after restore is skiff's
    // doing, whatever CRIU's resumed nc then does with the connection.
    let bundle = tcp_bundle(port, true);
    let marker = format!("nc 127.0.0.1 {port}");
    let id = run_detached(&rt, &bundle);
    assert!(
        data_flows(&bundle, Duration::from_secs(20)),
        "no data before the dump"
    );
    let img = images(&bundle, "img");
    rt.run(&[
        "checkpoint",
        "--tcp-established",
        "--image-path",
        s(&img),
        &id,
    ])
    .assert_success("checkpoint --tcp-established");
    assert!(
        processes_mentioning(&marker).is_empty(),
        "the dumped tree is gone: {:?}",
        processes_mentioning(&marker)
    );
    // A restore CRIU gives up half-way (the connection in the images needs
    // --tcp-established) leaves no process, cgroup or state behind.
    let out = rt.run(&[
        "restore",
        "-d",
        "--image-path",
        s(&img),
        "--work-path",
        s(&images(&bundle, "work-refused")),
        "--bundle",
        bundle.path_str(),
        &id,
    ]);
    out.assert_code(1, "restore of a TCP connection without --tcp-established");
    rt.assert_no_leaks(&id, &bundle);
    assert!(
        processes_mentioning(&marker).is_empty(),
        "no half-restored process: {:?}",
        processes_mentioning(&marker)
    );
    rt.run(&[
        "restore",
        "-d",
        "--tcp-established",
        "--image-path",
        s(&img),
        "--bundle",
        bundle.path_str(),
        &id,
    ])
    .assert_success("restore --tcp-established");
    assert_eq!(rt.state(&id)["status"], "running");
    // Where CRIU resumes busybox nc intact after a dump attempt (criu 4.2),
    // the restored connection must carry data. criu 4.1 ends it on resume
    // (seen above, the same under runc), and so also after a restore that
    // succeeded (restore.log: "Turning repair off", then both nc exit 0).
    if ours.3 {
        assert!(
            data_flows(&bundle, Duration::from_secs(20)),
            "the connection carries data after restore"
        );
    } else {
        eprintln!(
            "skipping the data check after restore: this CRIU ends busybox nc's \
             connection when it resumes it (after the refused dump too, under runc as well)"
        );
    }
    rt.delete_force(&id).assert_success("delete");
    rt.assert_no_leaks(&id, &bundle);
}

#[test]
fn terminal_container_restores_with_a_console_socket() {
    if skip_unless_criu("terminal_container_restores_with_a_console_socket") {
        return;
    }
    let mut bundle = counter_bundle();
    bundle.config_mut()["process"]["terminal"] = json!(true);
    let rt = Runtime::skiff();
    let dir = rt.root().parent().expect("runtime dir").to_path_buf();
    let sock = dir.join("ck-console.sock");
    let listener = UnixListener::bind(&sock).expect("bind console socket");
    let id = run_detached_with(&rt, &bundle, &["--console-socket", s(&sock)]);
    let (conn, _) = listener.accept().expect("console connection");
    let (_, master) = crate::support::recv_with_fds(&conn);
    assert_eq!(master.len(), 1, "the pty master");
    wait_count(&bundle, 2, Duration::from_secs(20));
    let img = images(&bundle, "img");
    rt.run(&["checkpoint", "--image-path", s(&img), &id])
        .assert_success("checkpoint of a terminal container");
    let at_dump = count(&bundle).expect("count");
    drop(master);
    rt.run(&[
        "restore",
        "-d",
        "--console-socket",
        s(&sock),
        "--image-path",
        s(&img),
        "--bundle",
        bundle.path_str(),
        &id,
    ])
    .assert_success("restore with a console socket");
    let (conn, _) = listener.accept().expect("console connection on restore");
    let (_, master) = crate::support::recv_with_fds(&conn);
    assert_eq!(master.len(), 1, "the restored terminal's master");
    assert_eq!(rt.state(&id)["status"], "running");
    wait_count(&bundle, at_dump + 3, Duration::from_secs(20));
    rt.delete_force(&id).assert_success("delete");
}

/// runc reopens stdio that is the host's /dev/null on the container's own
/// /dev/null (CRIU cannot dump an fd on a mount outside the container): the
/// container's fd 0 is then on the same filesystem as its /dev/null.
#[test]
fn host_dev_null_stdio_is_reopened_inside_the_container() {
    if skip_unless_root() {
        return;
    }
    let bundle = Bundle::new().args(&[
        "sh",
        "-c",
        "stat -L -c %d /proc/self/fd/0; stat -c %d /dev/null",
    ]);
    let rt = Runtime::skiff();
    // The harness runs the runtime with stdin from the host's /dev/null.
    let (status, out, err) = rt.run_container(&bundle);
    assert!(status.success(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?} {err}");
    assert_eq!(
        lines[0], lines[1],
        "stdin is the container's /dev/null: {out:?}"
    );
}
