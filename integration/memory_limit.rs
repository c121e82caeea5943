//! The memory a container pays for its runtime's init (issue 15): `run` of
//! `true` fits in as small a `linux.resources.memory.limit` as crun's, and a
//! limit too small even for init fails `create`/`run` with one message that
//! says so, leaving nothing behind.

use crate::support::{assert_no_leaks, skip_unless_root, Bundle, OutputExt, Runtime};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};

const CRUN: &str = "/usr/bin/crun";
/// Runs per limit: a limit "works" only if every run of `true` succeeds.
const RUNS: usize = 20;

/// A bundle that runs `true` under `limit` bytes of memory, swap included.
fn true_under(limit: u64) -> Bundle {
    let mut b = Bundle::new().args(&["true"]);
    b.config_mut()["linux"]["resources"]["memory"] = json!({"limit": limit, "swap": limit});
    b
}

/// Whether this host has a memory controller to put a limit in.
fn has_memory_controller() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|x| x == "memory"))
}

/// `<rt> --root R run --bundle B ID` in a private mount namespace without the
/// hybrid host's empty cgroup2 mount, which crun 1.8 takes for a unified host
/// (both runtimes get the same wrapper, so neither pays more than the other).
fn run_wrapped(rt: &Runtime, id: &str, b: &Bundle) -> Output {
    b.flush();
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c"])
        .arg("umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$0\" \"$@\"")
        .arg(rt.bin())
        .arg("--root")
        .arg(rt.root())
        .args(["run", "--bundle", b.path_str(), id]);
    rt.output(cmd)
}

/// How many of `RUNS` runs of `b` succeed (stops at the first failure when
/// `stop_early`); the output of the first failure.
fn successes(rt: &Runtime, b: &Bundle, stop_early: bool) -> (usize, Option<String>) {
    let (mut ok, mut first) = (0, None);
    for _ in 0..RUNS {
        let id = rt.new_id();
        let out = run_wrapped(rt, &id, b);
        if out.status.success() {
            ok += 1;
        } else {
            first.get_or_insert(format!("{}: {}", out.status, out.stderr_text()));
            if stop_early {
                break;
            }
        }
    }
    (ok, first)
}

/// The smallest of `candidates` under which crun runs `true` 2 * RUNS times
/// in a row; None when crun is not installed (or needs more than them all).
fn cruns_smallest(candidates: &[u64]) -> Option<u64> {
    if !Path::new(CRUN).exists() {
        eprintln!("{CRUN} not installed: comparing with crun 1.8.1's 256 KiB on the bench host");
        return None;
    }
    let crun = Runtime::with_binary(CRUN);
    // Twice RUNS in a row: near its edge crun sometimes gets 20 of 20 by luck
    // (the bench saw 192 KiB pass and fail), and the target is crun's
    // reliable limit, not its luckiest.
    candidates.iter().copied().find(|l| {
        let b = true_under(*l);
        (0..2).all(|_| successes(&crun, &b, true).0 == RUNS)
    })
}

#[test]
fn run_of_true_fits_in_the_memory_limit_crun_needs() {
    if skip_unless_root() {
        return;
    }
    if !has_memory_controller() {
        eprintln!(
            "skipping run_of_true_fits_in_the_memory_limit_crun_needs: no memory cgroup controller"
        );
        return;
    }
    const KIB: u64 = 1024;
    let candidates: Vec<u64> = (3..=16).map(|n| n * 64 * KIB).collect();
    // crun 1.8.1 succeeds 20/20 at 256 KiB (and 1/10 at 192 KiB) on the cgroup
    // v1 bench host (issue 15); measured here where crun is installed.
    let limit = cruns_smallest(&candidates).unwrap_or(256 * KIB);
    eprintln!("crun's smallest limit for run of true: {limit} bytes");
    let skiff = Runtime::skiff();
    let b = true_under(limit);
    let (ok, first) = successes(&skiff, &b, false);
    assert_eq!(
        ok, RUNS,
        "skiff ran true {ok} of {RUNS} times under {limit} bytes, where crun always does; first failure: {first:?}"
    );
}

#[test]
fn a_limit_too_low_for_init_says_so_and_leaves_nothing() {
    if skip_unless_root() {
        return;
    }
    if !has_memory_controller() {
        eprintln!("skipping a_limit_too_low_for_init_says_so_and_leaves_nothing: no memory cgroup controller");
        return;
    }
    // 64 KiB: less than init's mounts alone cost the container (the kernel
    // accepts it, as the cgroup is empty when the limit is written).
    let limit = 64 * 1024;
    let b = true_under(limit);
    let want =
        format!("linux.resources.memory.limit {limit} bytes is too low for the container's init");
    let rt = Runtime::skiff();
    for _ in 0..3 {
        let id = rt.new_id();
        let log = b.path().join(format!("{id}.log"));
        let mut cmd = rt.command();
        cmd.arg("--log").arg(&log).args([
            "--log-format",
            "json",
            "run",
            "--bundle",
            b.path_str(),
            &id,
        ]);
        b.flush();
        let out = rt.output(cmd);
        out.assert_code(1, "run under 64 KiB");
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|v: &serde_json::Value| v["level"] == "error")
            .collect();
        assert_eq!(lines.len(), 1, "one error line in the log: {lines:?}");
        // runc's layers come first (`skiff run failed: unable to start
        // container process: `, as runc 1.1+ words a failed create).
        let msg = lines[0]["msg"].as_str().unwrap_or_default();
        // On cgroup v1 stage 2 is in the cgroup when its limits are written
        // (the v1 directories are made by the join), so now and then the
        // kernel refuses 64 KiB outright (EBUSY, what stage 2 was charged on
        // the way in): that error names the limit and the usage instead.
        // Seen about 1 run in 5 beside the cgroup tests; a known second
        // wording, see the README's benchmark notes.
        let refused_at_write = msg.contains(&format!(
            "linux.resources.memory.limit: cannot set {limit}: below the current usage"
        ));
        assert!(
            refused_at_write
                || msg.contains("container init was killed by the OOM killer: ")
                || msg.contains("container init ran out of memory ("),
            "{msg}"
        );
        assert!(refused_at_write || msg.ends_with(&want), "{msg}");
        assert_no_leaks(&id, rt.root(), b.path());
    }
    // create fails the same way.
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    out.assert_code(1, "create under 64 KiB");
    let err = out.stderr_text();
    assert!(
        err.contains(&want)
            || err.contains(&format!("cannot set {limit}: below the current usage")),
        "{err}"
    );
    assert_no_leaks(&id, rt.root(), b.path());
}
