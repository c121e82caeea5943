//! `linux.netDevices` (runc 1.4+; runc 1.1.5 predates it, so the expected
//! behaviour is written here from runc 1.4's code and its netdev.bats).
//!
//! The host's network is never touched: each test makes a network namespace
//! of its own (held by a sleeping process, no mount), creates dummy
//! interfaces there, and runs skiff inside it with nsenter, so that namespace
//! is skiff's "runtime namespace".

use crate::support::*;
use serde_json::json;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A network namespace held open by `unshare --net sleep`, killed on drop
/// (with it go the namespace and every virtual device in it).
struct TestNetns {
    holder: Child,
    path: String,
}

impl TestNetns {
    fn new() -> TestNetns {
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare --net sleep");
        let path = format!("/proc/{}/ns/net", holder.id());
        let ours = std::fs::read_link("/proc/self/ns/net").expect("our netns");
        let deadline = Instant::now() + Duration::from_secs(10);
        // Until unshare has run, the holder is still in our namespace.
        while std::fs::read_link(&path).ok().as_ref() == Some(&ours) {
            assert!(Instant::now() < deadline, "unshare --net did not happen");
            std::thread::sleep(Duration::from_millis(5));
        }
        TestNetns { holder, path }
    }

    /// `nsenter --net=<ns> prog args...`, checked.
    fn sh(&self, prog: &str, args: &[&str]) -> String {
        let out = self.try_sh(prog, args);
        out.assert_success(&format!("{prog} {args:?} in the test netns"));
        out.stdout_text()
    }

    fn try_sh(&self, prog: &str, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.path))
            .arg(prog)
            .args(args)
            .output()
            .expect("run nsenter")
    }

    /// A virtual interface: a dummy, or where the kernel has no dummy driver
    /// (this host's) one end of a veth pair, whose peer `<name>p` stays here.
    fn add_dummy(&self, name: &str) {
        if !self
            .try_sh("ip", &["link", "add", name, "type", "dummy"])
            .status
            .success()
        {
            let peer = format!("{name}p");
            self.sh(
                "ip",
                &["link", "add", name, "type", "veth", "peer", "name", &peer],
            );
        }
    }

    fn has_link(&self, name: &str) -> bool {
        self.try_sh("ip", &["link", "show", "dev", name])
            .status
            .success()
    }

    /// `rt` run inside this namespace: `nsenter --net=<ns> skiff --root R args...`.
    fn skiff(&self, rt: &Runtime, args: &[&str]) -> Output {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.path))
            .arg(rt.bin())
            .arg("--root")
            .arg(rt.root())
            .args(args);
        rt.output(cmd)
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn net_bundle(devs: serde_json::Value, script: &str) -> Bundle {
    let mut b = Bundle::new().args(&["sh", "-c", script]);
    b.config_mut()["linux"]["netDevices"] = devs;
    b
}

/// A dummy with an MTU, a MAC, a global address, a /24 and a host-scope
/// address is moved and renamed; in the container it is up with its MTU, MAC
/// and global addresses, not the host-scope one (runc 1.4 keeps permanent
/// global-scope addresses only); it is gone from the runtime namespace, and
/// does not come back after delete: the container's namespace took the virtual device
/// with it (runc 1.4 moves nothing back; netdev.bats).
#[test]
fn net_device_moves_renamed_with_its_addresses() {
    if skip_unless_root() {
        return;
    }
    let ns = TestNetns::new();
    ns.add_dummy("skd0");
    ns.sh("ip", &["link", "set", "skd0", "mtu", "1789"]);
    ns.sh(
        "ip",
        &["link", "set", "skd0", "address", "00:11:22:33:44:55"],
    );
    ns.sh(
        "ip",
        &["address", "add", "169.254.169.77/32", "dev", "skd0"],
    );
    ns.sh("ip", &["address", "add", "10.77.0.5/24", "dev", "skd0"]);
    ns.sh("ip", &["address", "add", "127.0.0.33/8", "dev", "skd0"]);
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let b = net_bundle(
        json!({"skd0": {"name": "ctr0"}}),
        "ls /sys/class/net; ip address show dev ctr0",
    );
    b.flush();
    let out = ns.skiff(&rt, &["run", "--bundle", b.path_str(), &id]);
    out.assert_success("run with netDevices");
    rt.assert_no_leaks(&id, &b);
    let shown = out.stdout_text();
    for want in [
        "ctr0",
        "mtu 1789",
        "link/ether 00:11:22:33:44:55",
        "inet 169.254.169.77/32 scope global ctr0",
        "inet 10.77.0.5/24 brd 10.77.0.255 scope global ctr0",
    ] {
        assert!(shown.contains(want), "no {want:?} in:\n{shown}");
    }
    assert!(
        shown.contains(",UP,") || shown.contains(",UP>"),
        "not up:\n{shown}"
    );
    assert!(
        !shown.contains("127.0.0.33"),
        "host-scope address kept:\n{shown}"
    );
    assert!(!shown.contains("skd0"), "old name visible:\n{shown}");
    assert!(
        !ns.has_link("skd0") && !ns.has_link("ctr0"),
        "device came back"
    );
}

/// In a namespace joined by path the device stays there after delete: its
/// owner decides its fate (runc 1.4 netdev.bats, "restore it back" is the
/// caller's `ip link set netns`).
#[test]
fn net_device_stays_in_a_joined_namespace_after_delete() {
    if skip_unless_root() {
        return;
    }
    let ns = TestNetns::new();
    let target = TestNetns::new();
    ns.add_dummy("skd1");
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let mut b = net_bundle(json!({"skd1": {}}), "ip -o link show dev skd1");
    for n in b.config_mut()["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
    {
        if n["type"] == "network" {
            n["path"] = json!(target.path);
        }
    }
    b.flush();
    let out = ns.skiff(&rt, &["run", "--bundle", b.path_str(), &id]);
    out.assert_success("run in a joined netns");
    assert!(out.stdout_text().contains("skd1"), "{}", out.stdout_text());
    rt.assert_no_leaks(&id, &b);
    assert!(!ns.has_link("skd1"), "moved back to the runtime namespace");
    let left = target.sh("ip", &["-o", "link", "show", "dev", "skd1"]);
    assert!(
        left.contains("UP"),
        "not up in the joined namespace: {left}"
    );
}

/// A missing interface fails create naming it (runc 1.4: "link not found for
/// interface X on runtime namespace"), exit 1, nothing left; a device moved
/// before the failure goes with the container's namespace, not back under
/// its new name.
#[test]
fn missing_net_device_fails_naming_it() {
    if skip_unless_root() {
        return;
    }
    let ns = TestNetns::new();
    ns.add_dummy("skd2a");
    let rt = Runtime::skiff();
    let id = rt.new_id();
    let b = net_bundle(json!({"skd2a": {"name": "moved0"}, "skd2b": {}}), "true");
    b.flush();
    let out = ns.skiff(&rt, &["run", "--bundle", b.path_str(), &id]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr_text());
    let err = out.stderr_text();
    for want in [
        "linux.netDevices",
        "skd2b",
        "link not found for interface skd2b on runtime namespace",
    ] {
        assert!(err.contains(want), "no {want:?} in: {err}");
    }
    rt.assert_no_leaks(&id, &b);
    assert!(!ns.has_link("moved0"), "renamed device came back");
    assert!(!ns.has_link("skd2b"), "a device appeared");
}

/// runc 1.4's validator: a NET namespace is required; names must be valid
/// interface names, on both sides.
#[test]
fn net_devices_validation_as_runc_1_4() {
    if skip_unless_root() {
        return;
    }
    let rt = Runtime::skiff();
    let mut b = net_bundle(json!({"skd3": {}}), "true");
    b.config_mut()["linux"]["namespaces"] =
        json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]);
    let (code, _, err) = rt.run_leak_checked(&b);
    assert_eq!(code, 1);
    assert!(
        err.contains("linux.netDevices: unable to move network devices without a NET namespace"),
        "{err}"
    );
    for (devs, bad) in [
        (json!({"a/b": {}}), "a/b"),
        (json!({"skd3": {"name": "eth 1"}}), "eth 1"),
        (
            json!({"skd3": {"name": "1234567890123456"}}),
            "1234567890123456",
        ),
    ] {
        let b = net_bundle(devs, "true");
        let (code, _, err) = rt.run_leak_checked(&b);
        assert_eq!(code, 1, "{bad}");
        let want = format!("invalid network device name \\\"{bad}\\\"");
        assert!(
            err.contains(&want) || err.contains(&format!("invalid network device name \"{bad}\"")),
            "{bad}: {err}"
        );
    }
}
