//! runc's everyday behaviour that callers rely on (issue 11), each case run
//! under runc (the oracle) and skiff with the same bundle where runc is
//! installed, and checked against the value runc gives.

use crate::support::*;
use serde_json::json;

/// The runtimes to compare: runc first when it is installed, then skiff.
fn runtimes() -> Vec<(&'static str, Runtime)> {
    let mut v = Vec::new();
    if let Some(r) = Runtime::runc() {
        v.push(("runc", r));
    }
    v.push(("skiff", Runtime::skiff()));
    v
}

/// A network namespace the runtime creates has `lo` up (flags 0x9:
/// IFF_UP|IFF_LOOPBACK), so 127.0.0.1 answers in `podman --network none`,
/// pods and `ctr run` without CNI.
#[test]
fn new_network_namespace_has_loopback_up() {
    if skip_unless_root() {
        return;
    }
    let b = Bundle::new().args(&["cat", "/sys/class/net/lo/flags"]);
    for (name, rt) in runtimes() {
        let (st, out, err) = rt.run_container(&b);
        assert!(st.success(), "{name}: {err}");
        assert_eq!(out.trim(), "0x9", "{name}: lo flags");
    }
}

/// Docker's --privileged lists the host's devices, /dev/ptmx among them: the
/// config's devices are made first and /dev/ptmx then becomes the link to the
/// container's own devpts multiplexer, as runc does.
#[test]
fn privileged_device_list_with_ptmx_gets_the_devpts_link() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new().args(&["sh", "-c", "readlink /dev/ptmx; stat -c '%t:%T' /dev/tty"]);
    b.config_mut()["linux"]["devices"] = json!([
        {"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2, "fileMode": 438, "uid": 0, "gid": 0},
        {"path": "/dev/tty", "type": "c", "major": 5, "minor": 0, "fileMode": 438, "uid": 0, "gid": 0}
    ]);
    for (name, rt) in runtimes() {
        let (st, out, err) = rt.run_container(&b);
        assert!(st.success(), "{name}: {err}");
        assert_eq!(out, "pts/ptmx\n5:0\n", "{name}");
    }
}

/// `run` with a terminal in the foreground: skiff proxies the pty itself and
/// clears ONLCR on it, so "\n" arrives as "\n", not "\r\n" (compat.md;
/// runc's own terminal handling clears ONLCR on the master it receives).
/// Debian's runc 1.1.5 cannot run this here without a controlling terminal,
/// so the expected value is written out rather than taken from it. A caller's
/// console socket keeps the kernel's default: Docker's `-t` shows "\r\n".
#[test]
fn foreground_terminal_output_keeps_bare_newlines() {
    if skip_unless_root() {
        return;
    }
    let mut b = Bundle::new().args(&["printf", "a\\nb\\n"]);
    b.config_mut()["process"]["terminal"] = json!(true);
    let rt = Runtime::skiff();
    let (st, out, err) = rt.run_container(&b);
    assert!(st.success(), "{err}");
    assert_eq!(out, "a\nb\n", "foreground run -t output");
}

/// Kubernetes runs an exec per probe per second: one spurious failure in a
/// thousand execs is a failed probe every few minutes per container. 10,000
/// execs of `true` (SKIFF_EXEC_STRESS to change the count, e.g. in the VM
/// lane where each is 20-40x slower) must all succeed.
#[test]
fn ten_thousand_execs_all_succeed() {
    if skip_unless_root() {
        return;
    }
    let n: usize = std::env::var("SKIFF_EXEC_STRESS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let b = Bundle::new().args(&["sleep", "100000"]);
    b.flush();
    let rt = Runtime::skiff();
    let id = rt.new_id();
    rt.run(&["run", "-d", "--bundle", b.path_str(), &id])
        .assert_success("run -d");
    let mut failures = Vec::new();
    for i in 0..n {
        let out = rt
            .command()
            .args(["exec", &id, "true"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!("#{i}: {:?}: {}", out.status, text(&out.stderr)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} execs failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    rt.delete_force(&id).assert_success("delete");
}
