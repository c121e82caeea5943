#!/usr/bin/python3
"""Guest half of scripts/bench.sh's VM part: skiff, runc and crun timed side by
side inside the VM lane's guest (Debian 13, systemd as PID 1, cgroup v2 only,
qemu TCG), run by scripts/vm/run.sh from system.slice/skiff-vm-payload.service.

TCG makes every system call many times slower than on the host, so absolute
times mean nothing here: only the ratios between runtimes doing the same work
are reported (peak RSS is not: TCG does not change it, the host part of
bench.sh has it). Runtimes take turns inside each round, so a slow stretch of the
shared host hits all of them alike.

The payload directory (cwd) holds `skiff`, `scripts/mkbundle.sh` and
`bench-env` (RUNS=timed rounds per scenario, default 8; WARMUP=untimed
rounds, default 2; the environment does not reach the guest). Writes
$SKIFF_VM_OUT/bench.json and prints a table.
"""
import json
import os
import statistics
import subprocess
import sys
import time

def settings():
    """bench-env's KEY=VALUE lines over the environment's."""
    env = dict(os.environ)
    if os.path.exists("bench-env"):
        with open("bench-env") as f:
            env.update(line.strip().split("=", 1) for line in f if "=" in line)
    return int(env.get("RUNS", "8")), int(env.get("WARMUP", "2"))


RUNS, WARMUP = settings()
OUT = os.environ.get("SKIFF_VM_OUT", ".")
# Not under /run: a rootfs there fails skiff's execve of the container
# process with EACCES in the guest, where runc and crun run it (not fixed yet).
WORK = "/var/tmp/skiff-bench"
RUNTIMES = [
    ("skiff", os.path.join(os.getcwd(), "skiff")),
    ("runc", "/usr/sbin/runc"),
    ("crun", "/usr/bin/crun"),
]


# Every command's output goes to one file, not to pipes: a container holds
# the stdout and stderr of `create` and `run -d` until it exits, so reading a
# pipe to its end would wait for it (and `create` waits for `start`).
LOG = None


def sh(args, check=True):
    """Run a command; a failure or a hang (300 s) stops the benchmark with its output."""
    LOG.seek(0)
    LOG.truncate()
    try:
        r = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=LOG, stderr=LOG, timeout=300)
    except subprocess.TimeoutExpired:
        r = None
    if check and (r is None or r.returncode != 0):
        LOG.seek(0)
        out = LOG.read().decode(errors="replace")
        why = "still running after 300 s" if r is None else f"exit {r.returncode}"
        sys.exit(f"bench-guest: {' '.join(args)}: {why}\n{out}")
    return r


def bundle(name, *cmd):
    d = os.path.join(WORK, name)
    sh(["sh", "scripts/mkbundle.sh", d, *cmd])
    return d


def timed(cmds):
    """Wall time of a list of commands run one after the other, each must succeed."""
    t = time.perf_counter()
    for c in cmds:
        sh(c)
    return time.perf_counter() - t


def scenario(title, make_cmds, setup=None, teardown=None):
    """make_cmds(rt, binary, root, n) -> commands of one timed sample."""
    print(f"bench-guest: {title}: {WARMUP}+{RUNS} rounds", flush=True)
    start = time.perf_counter()
    times = {n: [] for n, _ in RUNTIMES}
    ctx = {n: setup(n, b, f"{WORK}/root-{n}") if setup else None for n, b in RUNTIMES}
    for i in range(WARMUP + RUNS):
        for n, b in RUNTIMES:
            dt = timed(make_cmds(n, b, f"{WORK}/root-{n}", i, ctx[n]))
            if i >= WARMUP:
                times[n].append(dt)
    if teardown:
        for n, b in RUNTIMES:
            teardown(n, b, f"{WORK}/root-{n}", ctx[n])
    print(f"bench-guest: {title}: {time.perf_counter() - start:.0f} s", flush=True)
    return {"title": title, "times": times}


def main():
    global LOG
    os.makedirs(WORK, exist_ok=True)
    LOG = open(f"{WORK}/command.log", "w+b")
    versions = {n: subprocess.run([b, "--version"], capture_output=True, text=True)
                .stdout.splitlines()[0] for n, b in RUNTIMES}
    b_true = bundle("true", "/bin/true")
    b_sleep = bundle("sleep", "sleep", "100000")
    results = []

    def run_cmds(n, b, root, i, _):
        return [[b, "--root", root, "run", "--bundle", b_true, f"run-{n}-{i}"]]

    results.append(scenario("run of /bin/true (create+start+wait+delete)", run_cmds))

    def split_cmds(n, b, root, i, _):
        cid = f"split-{n}-{i}"
        return [[b, "--root", root, "create", "--bundle", b_true, cid],
                [b, "--root", root, "start", cid],
                [b, "--root", root, "delete", "--force", cid]]

    results.append(scenario("create + start + delete --force", split_cmds))

    def exec_setup(n, b, root):
        sh([b, "--root", root, "run", "-d", "--bundle", b_sleep, f"exec-{n}"])
        return f"exec-{n}"

    def exec_cmds(n, b, root, i, cid):
        return [[b, "--root", root, "exec", cid, "true"]]

    def exec_teardown(n, b, root, cid):
        sh([b, "--root", root, "delete", "--force", cid])

    results.append(scenario("exec of true in a running container", exec_cmds,
                            exec_setup, exec_teardown))

    # The systemd driver: a transient scope over D-Bus, as Docker and podman
    # use it on these hosts. One bundle per runtime; its cgroupsPath names the
    # scope after the run (rewritten before the timer starts).
    sd = {n: bundle(f"sd-{n}", "/bin/true") for n, _ in RUNTIMES}

    def sd_cmds(n, b, root, i, _):
        cid = f"sd-{n}-{i}"
        with open(f"{sd[n]}/config.json") as f:
            cfg = json.load(f)
        cfg["linux"]["cgroupsPath"] = f"system.slice:bench:{cid}"
        with open(f"{sd[n]}/config.json", "w") as f:
            json.dump(cfg, f)
        return [[b, "--root", root, "--systemd-cgroup", "run", "--bundle", sd[n], cid]]

    results.append(scenario("run of /bin/true with --systemd-cgroup (a scope unit)", sd_cmds))

    with open(os.path.join(OUT, "bench.json"), "w") as f:
        json.dump({"versions": versions, "runs": RUNS, "results": results}, f)
    report(versions, results)


def report(versions, results):
    print("\n== inside the VM guest (cgroup v2 + systemd, TCG): ratios only")
    for n, v in versions.items():
        print(f"  {n}: {v}")
    print(f"  {RUNS} timed rounds per scenario after {WARMUP} warm-up, runtimes taking turns")
    print(f"\n| scenario (mean) | skiff/runc | skiff/crun | runc/crun |")
    print("|---|---|---|---|")
    for r in results:
        m = {n: statistics.mean(t) for n, t in r["times"].items()}
        print(f"| {r['title']} | {m['skiff'] / m['runc']:.2f}x | "
              f"{m['skiff'] / m['crun']:.2f}x | {m['runc'] / m['crun']:.2f}x |")
    # Spread, so a reader can tell a tie from a difference.
    print("\nrelative standard deviation of each sample set (mean/stdev):")
    for r in results:
        parts = []
        for n, t in r["times"].items():
            cv = statistics.stdev(t) / statistics.mean(t) if len(t) > 1 else 0
            parts.append(f"{n} {cv * 100:.0f}%")
        print(f"  {r['title']}: {', '.join(parts)}")


if __name__ == "__main__":
    main()
