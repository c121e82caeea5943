//! What a kubelet probe costs: liveness and readiness probes are ExecSync
//! calls, about one a second per container. 100 of them against a pod on
//! skiff and a pod on runc in the same containerd, taken in turns so that
//! both see the same load; CPU time of each pod's shim with everything it ran
//! and reaped (the runtime's `exec`, its init, the probe itself), and wall
//! time as kubelet sees it.

use super::harness::{container, pod_config, Harness};
use crate::engines::{assert_root_empty, eventually, processes_mentioning};
use std::fs;
use std::time::{Duration, Instant};

const PROBES: u32 = 100;
const APP: &str = "trap 'exit 0' TERM; while :; do sleep 1; done";

/// utime + stime + cutime + cstime of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/stat: {e}"));
    // Fields after the command name (which may hold spaces) start at state.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // utime, stime, cutime, cstime are fields 14-17 of stat, 12-15 of `rest`.
    f[11..15]
        .iter()
        .map(|v| v.parse::<u64>().unwrap_or(0))
        .sum()
}

fn ticks_to_ms(ticks: u64) -> f64 {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    ticks as f64 * 1000.0 / hz
}

struct Side {
    name: &'static str,
    sandbox: String,
    container: String,
    shim: i32,
    wall: Duration,
}

#[test]
fn exec_sync_probes_cost_no_more_on_skiff_than_on_runc() {
    let Some(h) = Harness::start("cri-probe") else {
        return;
    };
    let mut sides = Vec::new();
    for (name, handler) in [("probeskiff", "skiff"), ("proberunc", "runc")] {
        let pod = pod_config(&h, name);
        let sandbox = h.cri.run_pod(&pod, handler);
        let app = h.cri.create_start(
            &sandbox,
            &pod,
            container("app", &["sh", "-c", APP], 64 << 20),
        );
        // Each pod runs where its handler says.
        let under_skiff =
            h.skiff_root().join(&sandbox).is_dir() && h.skiff_root().join(&app).is_dir();
        assert_eq!(
            under_skiff,
            handler == "skiff",
            "pod {name} on handler {handler}"
        );
        let shim = h.shim_pid(&sandbox);
        sides.push(Side {
            name: handler_name(handler),
            sandbox,
            container: app,
            shim,
            wall: Duration::ZERO,
        });
    }
    let probe = |h: &Harness, side: &Side| {
        let r = h
            .cri
            .exec_sync(&side.container, &["cat", "/etc/hostname"], 10)
            .unwrap_or_else(|e| panic!("probe on {}: {e:?}", side.name));
        assert_eq!(r.exit_code, 0, "probe on {}: {r:?}", side.name);
    };
    for side in &sides {
        for _ in 0..5 {
            probe(&h, side);
        }
    }
    let before: Vec<u64> = sides.iter().map(|s| cpu_ticks(s.shim)).collect();
    for _ in 0..PROBES {
        for side in sides.iter_mut() {
            let t = Instant::now();
            probe(&h, side);
            side.wall += t.elapsed();
        }
    }
    let cpu: Vec<f64> = sides
        .iter()
        .zip(&before)
        .map(|(s, b)| ticks_to_ms(cpu_ticks(s.shim) - b))
        .collect();
    println!("ExecSync probe cost, {PROBES} probes each, one containerd, taken in turns:");
    for (s, c) in sides.iter().zip(&cpu) {
        let wall = s.wall.as_secs_f64() * 1000.0;
        println!(
            "  {:5}: CPU {c:7.0} ms ({:5.2} ms/probe), wall {wall:7.0} ms ({:5.2} ms/probe)",
            s.name,
            c / PROBES as f64,
            wall / PROBES as f64
        );
    }
    assert!(
        cpu[0] <= cpu[1],
        "skiff's probes cost more CPU ({:.0} ms) than runc's ({:.0} ms)",
        cpu[0],
        cpu[1]
    );
    for side in &sides {
        remove_pod(&h, &side.sandbox);
    }
    assert_root_empty(&h.skiff_root());
}

fn handler_name(handler: &str) -> &'static str {
    if handler == "skiff" {
        "skiff"
    } else {
        "runc"
    }
}

fn remove_pod(h: &Harness, sandbox: &str) {
    use k8s_cri::v1 as cri;
    let req = cri::StopPodSandboxRequest {
        pod_sandbox_id: sandbox.into(),
    };
    h.cri.ok("StopPodSandbox", h.cri.rs().stop_pod_sandbox(req));
    let req = cri::RemovePodSandboxRequest {
        pod_sandbox_id: sandbox.into(),
    };
    h.cri
        .ok("RemovePodSandbox", h.cri.rs().remove_pod_sandbox(req));
    eventually("the pod's shim to exit", || {
        processes_mentioning(sandbox).is_empty()
    });
}
