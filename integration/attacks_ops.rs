//! Attacks from issue 9 on the runtime's own operations (exec capabilities,
//! device cgroup defaults, cleanup of a failed create, delete of a container
//! with corrupt state, flag bounds, pid files, error echo): each test drives
//! the attack the way a hostile bundle, caller or container would, and checks
//! what is left on the host. runc (/usr/sbin/runc) is the oracle where it has
//! the behaviour we want.

use crate::security::{hex, status_field};
use crate::support::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// A bundle whose process sleeps, to exec into.
fn sleeper() -> Bundle {
    Bundle::new().args(&["sleep", "1000"])
}

/// Run `bundle` detached under `rt` as a fresh ID and wait until it runs.
fn start_detached(rt: &Runtime, bundle: &Bundle) -> String {
    let id = rt.new_id();
    rt.create(&id, bundle).assert_success("create");
    rt.start(&id).assert_success("start");
    rt.wait_for_status(&id, "running", Duration::from_secs(10));
    id
}

// ---------------------------------------------------------------------------
// Item 4: exec --cap and the inheritable/ambient sets (CVE-2022-29162)

/// The capability sets of a process started by `exec --cap ...`.
fn exec_cap_sets(rt: &Runtime, bundle: &Bundle) -> BTreeMap<&'static str, u64> {
    let id = start_detached(rt, bundle);
    let out = rt.run(&[
        "exec",
        "--cap",
        "CAP_KILL",
        "--cap",
        "CAP_AUDIT_WRITE",
        "--cap",
        "CAP_NET_ADMIN",
        &id,
        "cat",
        "/proc/self/status",
    ]);
    out.assert_success(&format!("{} exec --cap", rt.bin().display()));
    let status = out.stdout_text();
    ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .into_iter()
        .map(|k| (k, hex(&status_field(&status, k))))
        .collect()
}

#[test]
fn exec_cap_never_fills_inheritable_or_ambient() {
    if skip_unless_root() {
        return;
    }
    let bundle = sleeper();
    let rt = Runtime::skiff();
    let ours = exec_cap_sets(&rt, &bundle);
    // The config has no inheritable set: nothing may reach it or ambient.
    assert_eq!(ours["CapInh"], 0, "CapInh: {ours:x?}");
    assert_eq!(ours["CapAmb"], 0, "CapAmb: {ours:x?}");
    const NET_ADMIN: u64 = 1 << 12;
    assert_ne!(
        ours["CapEff"] & NET_ADMIN,
        0,
        "CapEff lacks --cap: {ours:x?}"
    );
    if let Some(runc) = Runtime::runc() {
        let theirs = exec_cap_sets(&runc, &bundle);
        assert_eq!(ours, theirs, "skiff vs runc capability sets of exec --cap");
    }
}
