#!/usr/bin/env python3
"""The host part of scripts/bench.sh: skiff against crun and runc, measured
the way issue 15 sets its targets, with a PASS/FAIL summary at the end.

    host.py WORKDIR        (run by scripts/bench.sh; reads the knobs from the
                            environment, see the top of bench.sh)
    host.py --self-test    checks the timing-line parser on a hand-written sample

How it measures:
- Every runtime runs in the same private mount namespace: this process makes
  one at start, without /sys/fs/cgroup/unified (crun 1.8 refuses the hybrid
  layout), and runs the runtimes directly in it. For the trixie chroot, each
  call goes through nsrun (scripts/bench/nsrun.c, no C library) into one
  private mount namespace whose root is the chroot (see Chroot).
  The runtimes' --root dirs are on a tmpfs there, as engines keep them
  (/run/...); ext4 inode allocation in a well-used /tmp cost ~0.2 ms per
  state file here, more for a runtime that writes more of them.
  WRAP=sh brings back the wrapper used until 2026-11-30: `unshare -m sh -c
  'umount ...; exec RUNTIME'` on every call (and nsenter for the chroot). It
  costs every call about 4 ms of CPU (three glibc process starts, each probing
  the CPU with cpuid, which traps on this VM), for every runtime alike; that
  is measurement overhead, and it pulls every ratio towards 1.
- A sample is SAMPLE back-to-back lifecycles of one runtime; runtimes alternate
  sample by sample (skiff, crun, runc, skiff, ...), PAIRS rounds. Ratios are
  the median over rounds of the ratio within the round, so a load change on
  this shared machine hits both sides of a ratio alike.
- Wall time: time.perf_counter() around the sample. CPU time: user+sys of the
  whole process tree. This process is a child subreaper (PR_SET_CHILD_SUBREAPER),
  so a container init that its runtime leaves behind is reparented here and
  reaped here; getrusage(RUSAGE_CHILDREN) before and after a sample then covers
  the wrapper, the runtime, every helper it forks and the container's init.
"""
import ctypes
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNWRAP = 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"'
# WRAP=sh: the per-call shell wrapper of the bench before 2026-11-30.
SH_WRAP = os.environ.get("WRAP", "") == "sh"
CLONE_NEWNS, MS_REC, MS_PRIVATE, MNT_DETACH = 0x20000, 0x4000, 0x40000, 2
PR_SET_CHILD_SUBREAPER = 36
DEVNULL = os.open("/dev/null", os.O_RDWR)


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


def enabled(name):
    return os.environ.get(name, "1") != "0"


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- processes

def spawn(argv, err_path=None):
    """Start argv with stdin/stdout on /dev/null and stderr to err_path."""
    fa = [(os.POSIX_SPAWN_DUP2, DEVNULL, 0), (os.POSIX_SPAWN_DUP2, DEVNULL, 1)]
    if err_path:
        fa.append((os.POSIX_SPAWN_OPEN, 2, err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
    else:
        fa.append((os.POSIX_SPAWN_DUP2, DEVNULL, 2))
    return os.posix_spawnp(argv[0], argv, os.environ, file_actions=fa)


def status_text(st):
    if os.WIFSIGNALED(st):
        return f"killed by signal {os.WTERMSIG(st)}"
    return f"exit status {os.WEXITSTATUS(st)}"


def err_tail(path, lines=2):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(f.read().strip().splitlines()[-lines:])
    except OSError:
        return ""


class Runner:
    """Runs commands and keeps their stderr in a per-thread file."""

    def __init__(self, work):
        self.work = work

    def err_path(self):
        return f"{self.work}/err-{threading.get_ident()}"

    def run(self, argv, check=True):
        """Run argv to completion; returns (ok, rusage, stderr tail)."""
        ep = self.err_path()
        pid = spawn(argv, ep)
        _, st, ru = os.wait4(pid, 0)
        ok = os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0
        if not ok and check:
            raise BenchError(f"`{' '.join(argv[-6:])}` failed ({status_text(st)}): {err_tail(ep)}")
        return ok, ru, "" if ok else f"{status_text(st)}: {err_tail(ep)}"

    def run_timeout(self, argv, timeout):
        """As run(check=False) but kills argv after timeout seconds."""
        ep = self.err_path()
        pid = spawn(argv, ep)
        deadline = time.monotonic() + timeout
        while True:
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return False, f"timed out after {timeout} s"
            time.sleep(0.002)
        ok = os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0
        return ok, "" if ok else f"{status_text(st)}: {err_tail(ep)}"


def reap_strays():
    """Reap orphans reparented to this subreaper (container inits)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def children_csw():
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_nvcsw


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# ---------------------------------------------------------------- runtimes

class Runtime:
    """One runtime binary behind its wrapper, with its own --root."""

    def __init__(self, name, label, prefix, bundle_dir):
        self.name, self.label = name, label
        self.prefix = prefix          # wrapper + binary + --root DIR
        self.bundle_dir = bundle_dir  # where WORK is seen by the runtime
        self.ids = set()              # containers that may exist, for cleanup
        self.seq = 0

    def cmd(self, *args):
        return self.prefix + list(args)

    def bundle(self, name):
        return f"{self.bundle_dir}/{name}"

    def new_id(self, tag):
        self.seq += 1
        cid = f"b{os.getpid()}-{self.name.replace('@', '-')}-{tag}-{self.seq}"
        self.ids.add(cid)
        return cid


def version_of(argv):
    try:
        out = subprocess.run(argv + ["--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(r"version:? *([0-9][^\s]*)", out)
    return m.group(1) if m else "?"


def host_runtimes(work):
    found = []
    for name, path in (("skiff", os.environ.get("SKIFF", "")),
                       ("crun", shutil.which("crun") or ""),
                       ("runc", shutil.which("runc") or "")):
        if not (path and os.access(path, os.X_OK)):
            print(f"bench: skipping {name} ({path or 'not installed'} is not executable)")
            continue
        path = os.path.realpath(path)
        # State dirs on tmpfs, as every engine keeps them (/run/runc,
        # /run/crun, /run/containerd/...); WRAP=sh keeps the old place.
        root = f"{work}/root-{name}" if SH_WRAP else f"{work}/run/{name}"
        os.makedirs(root, exist_ok=True)
        if SH_WRAP:
            prefix = ["unshare", "-m", "sh", "-c", UNWRAP, "--", path, "--root", root]
        else:
            prefix = [path, "--root", root]
        found.append(Runtime(name, f"{name} {version_of([path])}", prefix, work))
    return found


# ---------------------------------------------------------------- the chroot

class Chroot:
    """Debian 13's crun and the same skiff with the trixie chroot as their
    root. One holder process keeps a private mount namespace whose root is
    the chroot (pivot_root, not chroot(2): a runtime that runs chrooted below
    its namespace's root creates containers whose `exec` lands in the host's
    root, since setns() to a mount namespace starts at the namespace's root;
    crun 1.21 and skiff both do that). Every command enters the holder's
    namespace with nsenter; the host's mount table is untouched, and all of
    it goes away when the holder exits."""

    def __init__(self, work, skiff):
        self.work, self.skiff, self.holder, self.runtimes = work, skiff, None, []

    def start(self):
        r = subprocess.run([f"{REPO}/scripts/bench/chroot.sh"], capture_output=True, text=True)
        if r.returncode != 0:
            return f"the trixie chroot could not be built: {r.stderr.strip().splitlines()[-1:]}"
        c = r.stdout.strip()
        shutil.copy(self.skiff, f"{self.work}/skiff-static")
        # The old root goes under the chroot's /tmp and is detached at once.
        setup = (f"set -e; mount --bind {c} {c}; mount -t proc proc {c}/proc; "
                 f"mount --rbind /sys {c}/sys; umount {c}/sys/fs/cgroup/unified 2>/dev/null || true; "
                 f"mount --rbind /dev {c}/dev; mount -t tmpfs tmpfs {c}/run; "
                 f"mount --bind {self.work} {c}/bench; cd {c}; pivot_root . tmp; cd /; "
                 f"umount -l /tmp; echo ready; exec sleep infinity")
        self.holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", setup],
                                       stdout=subprocess.PIPE, text=True,
                                       start_new_session=True)
        if self.holder.stdout.readline().strip() != "ready":
            return "the chroot's mount namespace could not be set up"
        if SH_WRAP:
            enter = ["nsenter", "-t", str(self.holder.pid), "-m"]
        else:
            nsrun = f"{self.work}/nsrun"
            r = subprocess.run(["gcc", "-O2", "-static", "-nostdlib", "-fno-stack-protector", "-o", nsrun,
                                f"{REPO}/scripts/bench/nsrun.c"], capture_output=True, text=True)
            if r.returncode != 0:
                return f"nsrun could not be built: {r.stderr.strip()[-200:]}"
            enter = [nsrun, f"/proc/{self.holder.pid}/ns/mnt"]
        for name, binary in (("skiff@trixie", "/bench/skiff-static"), ("crun@trixie", "/usr/bin/crun")):
            ver = version_of(enter + [binary])
            prefix = enter + [binary, "--root", f"/run/{name}"]
            self.runtimes.append(Runtime(name, f"{name.split('@')[0]} {ver} (trixie chroot)", prefix, "/bench"))
        return None

    def stop(self):
        if self.holder and self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait()


# ---------------------------------------------------------------- pairs

def lifecycle_run(rt):
    return [rt.cmd("run", "--bundle", rt.bundle("true"), rt.new_id("run"))]


def lifecycle_split(rt):
    cid = rt.new_id("csd")
    return [rt.cmd("create", "--bundle", rt.bundle("true"), cid), rt.cmd("start", cid),
            rt.cmd("delete", "--force", cid)]


class Pairs:
    def __init__(self, runner, k, p, warm):
        self.runner, self.k, self.p, self.warm = runner, k, p, warm

    def sample(self, rt, ops):
        """(wall s, CPU s, voluntary context switches) per lifecycle. The
        switches count the blocking hand-offs (pipes, waits) between the
        processes: each costs a wake-up latency, which grows with the load."""
        reap_strays()
        c0, s0, t0 = children_cpu(), children_csw(), time.perf_counter()
        for _ in range(self.k):
            for argv in ops(rt):
                self.runner.run(argv)
        t1 = time.perf_counter()
        reap_strays()
        k = self.k
        return (t1 - t0) / k, (children_cpu() - c0) / k, (children_csw() - s0) / k

    def measure(self, rts, ops):
        """{name: [(wall, cpu) per round]}, runtimes alternating."""
        for rt in rts:
            for _ in range(self.warm):
                for argv in ops(rt):
                    self.runner.run(argv)
        res = {rt.name: [] for rt in rts}
        for _ in range(self.p):
            for rt in rts:
                res[rt.name].append(self.sample(rt, ops))
        return res


def pair_ratio(res, a, b, idx):
    return statistics.median(x[idx] / y[idx] for x, y in zip(res[a], res[b]) if y[idx] > 0)


def print_pairs(title, rts, res, k, p):
    print(f"\n== {title}: {p} rounds of {k} per runtime, alternating (per operation, medians)")
    print(f"  {'runtime':34} {'wall ms':>8} {'CPU ms':>8} {'vol.csw':>8}   wall range")
    for rt in rts:
        w = [s[0] * 1e3 for s in res[rt.name]]
        c = [s[1] * 1e3 for s in res[rt.name]]
        v = statistics.median(s[2] for s in res[rt.name])
        print(f"  {rt.label:34} {statistics.median(w):8.2f} {statistics.median(c):8.2f} {v:8.1f}"
              f"   {min(w):.2f}-{max(w):.2f}")


# ---------------------------------------------------------------- summary

class Summary:
    def __init__(self):
        self.rows = []

    def add(self, figure, value, target="", ok=None):
        self.rows.append((figure, value, target, ok))

    def ratio_rows(self, title, res, names, target, limit):
        """skiff/<other> wall and CPU rows for every other runtime measured."""
        skiff = names[0]
        for other in names[1:]:
            for idx, kind in ((0, "wall"), (1, "CPU")):
                r = pair_ratio(res, skiff, other, idx)
                tgt = f"<= {limit}" if target and other.startswith("crun") else ""
                self.add(f"{title} {kind} {skiff}/{other}", f"{r:.2f}", tgt, r <= limit if tgt else None)

    def text(self):
        w = max([len(r[0]) for r in self.rows] + [10])
        out = [f"{'figure':{w}}  {'value':>22}  {'target':10}  result"]
        for fig, val, tgt, ok in self.rows:
            res = "" if ok is None else ("PASS" if ok else "FAIL")
            out.append(f"{fig:{w}}  {val:>22}  {tgt:10}  {res}")
        return "\n".join(out)


# ---------------------------------------------------------------- sections

def section_pairs(ctx, rts, crts):
    """run lifecycle, create+start+delete, exec and state."""
    pr, s = ctx.pairs, ctx.summary
    names = [rt.name for rt in rts]
    res = pr.measure(rts, lifecycle_run)
    print_pairs("run of /bin/true (create+start+wait+delete)", rts, res, pr.k, pr.p)
    s.ratio_rows("run", res, names, True, 0.8)
    if crts:
        res = pr.measure(crts, lifecycle_run)
        print_pairs("run of /bin/true in the trixie chroot", crts, res, pr.k, pr.p)
        s.ratio_rows("run (chroot)", res, [rt.name for rt in crts], True, 0.8)
    res = pr.measure(rts, lifecycle_split)
    print_pairs("create + start + delete --force", rts, res, pr.k, pr.p)
    s.ratio_rows("create+start+delete", res, names, False, 0)
    for group, tag in ((rts, ""), (crts, " (chroot)")):
        if not group:
            continue
        sleepers = start_sleepers(ctx, group)
        for verb, argv in (("exec", ["exec", None, "true"]), ("state", ["state", None])):
            def ops(rt, argv=argv):
                return [rt.cmd(*[sleepers[rt.name] if a is None else a for a in argv])]
            res = pr.measure(group, ops)
            print_pairs(f"{verb} {'of true into' if verb == 'exec' else 'of'} a running container{tag}",
                        group, res, pr.k, pr.p)
            s.ratio_rows(verb + tag, res, [rt.name for rt in group], True, 0.7)
        delete_all(ctx, group)


def start_sleepers(ctx, rts):
    ids = {}
    for rt in rts:
        cid = rt.new_id("sleeper")
        ctx.runner.run(rt.cmd("create", "--bundle", rt.bundle("sleeper"), cid))
        ctx.runner.run(rt.cmd("start", cid))
        ids[rt.name] = cid
    return ids


def delete_all(ctx, rts):
    for rt in rts:
        for cid in sorted(rt.ids):
            ctx.runner.run(rt.cmd("delete", "--force", cid), check=False)
        rt.ids.clear()
    reap_strays()


SPIN = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"


def cpu_of(ctx, argvs, wait_stopped=None):
    """CPU of argvs run in turn; with wait_stopped=(rt, id), also of the
    container's process up to when it has stopped."""
    reap_strays()
    c0 = children_cpu()
    for argv in argvs:
        ctx.runner.run(argv)
    deadline = time.monotonic() + 30
    while wait_stopped and time.monotonic() < deadline:
        rt, cid = wait_stopped
        st = subprocess.run(rt.cmd("state", cid), capture_output=True, text=True).stdout
        if '"stopped"' in st:
            break
        time.sleep(0.05)
    time.sleep(0.05)
    reap_strays()
    return children_cpu() - c0


def section_cpu_check(ctx, rts):
    """The CPU figures must include the container's own processes: a busybox
    loop run bare, then as the container's process (`run`; `create`+`start`,
    where init is reparented here) and as an `exec`, must cost at least as much
    CPU inside as bare. The bound is loose (0.6): on a loaded machine the
    same loop's CPU time varies by tens of percent; a missed process shows
    as a few percent."""
    bare = cpu_of(ctx, [[f"{ctx.work}/true/rootfs/bin/busybox", "sh", "-c", SPIN]])
    print(f"\n== CPU accounting check: a busybox loop taking {bare * 1e3:.0f} ms of CPU bare")
    for rt in rts:
        cid, sid = rt.new_id("spin"), rt.new_id("spin")
        got = [cpu_of(ctx, [rt.cmd("run", "--bundle", rt.bundle("spin"), rt.new_id("spin"))]),
               cpu_of(ctx, [rt.cmd("create", "--bundle", rt.bundle("spin"), cid), rt.cmd("start", cid)], (rt, cid))]
        ctx.runner.run(rt.cmd("delete", "--force", cid), check=False)
        ctx.runner.run(rt.cmd("create", "--bundle", rt.bundle("sleeper"), sid))
        ctx.runner.run(rt.cmd("start", sid))
        got.append(cpu_of(ctx, [rt.cmd("exec", sid, "sh", "-c", SPIN)]))
        delete_all(ctx, [rt])
        ok = min(got) >= 0.6 * bare
        print(f"  {rt.label:34} run {got[0] * 1e3:5.0f} ms, create+start {got[1] * 1e3:5.0f} ms,"
              f" exec {got[2] * 1e3:5.0f} ms  {'ok' if ok else 'MISSING CPU'}")
        ctx.summary.add(f"CPU accounting covers init/exec {rt.name}",
                        f"{min(got) / bare:.2f} of bare", ">= 0.6", ok)


def set_memory_limit(ctx, limit):
    path = f"{ctx.work}/mem/config.json"
    with open(path) as f:
        cfg = json.load(f)
    cfg["linux"].setdefault("resources", {})["memory"] = {"limit": limit, "swap": limit}
    with open(path, "w") as f:
        json.dump(cfg, f)


def mem_trial(ctx, rt, limit, n):
    """True when `run` of true succeeds n times in a row under limit."""
    set_memory_limit(ctx, limit)
    for _ in range(n):
        cid = rt.new_id("mem")
        ok, err = ctx.runner.run_timeout(rt.cmd("run", "--bundle", rt.bundle("mem"), cid), 60)
        ctx.runner.run(rt.cmd("delete", "--force", cid), check=False)
        rt.ids.discard(cid)
        reap_strays()
        if not ok:
            ctx.last_mem_err[rt.name] = f"{limit // 1024} KiB: {err}"
            ctx.mem_errs.setdefault(rt.name, set()).add(normalize_err(err))
            return False
    return True


def normalize_err(err):
    """An error without its timestamp, PIDs and container IDs, to count the
    distinct messages a too-low limit produces."""
    err = re.sub(r'time="[^"]*" level=error msg=', "", err)
    err = re.sub(r"b\d+-[\w-]+-mem-\d+", "ID", err)
    err = re.sub(r"(?<!status )(?<!signal )\b\d{3,}\b", "N", err)
    return (err + " (no message)" if err.endswith(": ") else err)[:160]


def mem_search(ctx, rt, need):
    """Smallest grid limit (start + k*step) from which every grid limit up to
    the upper bound gives need/need successes: an upper bound by doubling, a
    bisection on the grid, then every grid point from the bisection's answer
    up to the bound is checked again, and a failure moves the answer above
    it. Success near the edge varies from run to run (for one, page-cache
    pages are charged to the cgroup that first reads them, so what the
    container pays for the runtime's binary depends on what is cached), and
    a bisection alone tends to stop at a lucky low value."""
    start, step, cap = ctx.mem_start, ctx.mem_step, 256 << 20
    lo, hi = None, start
    while not mem_trial(ctx, rt, hi, need):
        lo, hi = hi, hi * 2
        if hi > cap:
            return None
    lo_k = -1 if lo is None else (lo - start) // step
    hi_k = (hi - start) // step
    while hi_k - lo_k > 1:
        mid = (lo_k + hi_k) // 2
        if mem_trial(ctx, rt, start + mid * step, need):
            hi_k = mid
        else:
            lo_k = mid
    top_k = (hi - start) // step
    k = hi_k
    while k < top_k:
        if not mem_trial(ctx, rt, start + k * step, need):
            hi_k = k + 1
        k += 1
    return start + hi_k * step


def section_memory(ctx, rts):
    need = env_int("MEM_RUNS", 20)
    print(f"\n== smallest memory limit (swap equal) with {need}/{need} `run` of true succeeding"
          f" (grid {ctx.mem_start // 1024} KiB + k*{ctx.mem_step // 1024} KiB)")
    found = {}
    for rt in rts:
        t0 = time.monotonic()
        found[rt.name] = lim = mem_search(ctx, rt, need)
        txt = f"{lim // 1024} KiB" if lim else "none up to 256 MiB"
        last = re.sub(r'time="[^"]*" level=error msg=', "", ctx.last_mem_err.get(rt.name, "-"))
        print(f"  {rt.label:34} {txt:>12}   ({time.monotonic() - t0:.0f} s; last failure {last[:150]})")
        ctx.summary.add(f"min memory limit {rt.name}", txt)
        errs = sorted(ctx.mem_errs.get(rt.name, ()))
        print(f"  {'':34} {len(errs)} distinct failure(s) below it: " + " || ".join(errs))
        ctx.summary.add(f"distinct failures below the limit {rt.name}", str(len(errs)))
    for other in [n for n in found if n.startswith("crun")]:
        skiff = "skiff@trixie" if other.endswith("@trixie") else "skiff"
        if found.get(skiff) and found[other]:
            ctx.summary.add(f"min memory limit {skiff} <= {other}",
                            f"{found[skiff] // 1024} vs {found[other] // 1024} KiB", "<= crun's",
                            found[skiff] <= found[other])


def proc_status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def cgroup_memory_max(pid):
    """memory.max_usage_in_bytes (v1) or memory.peak (v2) of pid's cgroup."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrl, path = line.rstrip("\n").split(":", 2)
            if "memory" in ctrl.split(","):
                return read_int(f"/sys/fs/cgroup/memory{path}/memory.max_usage_in_bytes")
            if ctrl == "" and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
                return read_int(f"/sys/fs/cgroup{path}/memory.peak")
    return None


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def section_rss(ctx, rts):
    n = env_int("RSS_RUNS", 5)
    print(f"\n== memory of create and of the init it leaves (median of {n}; KiB)")
    print(f"  {'runtime':34} {'create maxRSS':>13} {'init VmHWM':>11} {'init VmRSS':>11} {'cgroup peak':>12}")
    for rt in rts:
        vals = []
        for _ in range(n):
            cid = rt.new_id("rss")
            # Through /usr/bin/time, which forks: a child made by posix_spawn
            # (vfork) starts in this Python's memory, and the kernel keeps that
            # high-water mark across exec.
            out = f"{ctx.work}/maxrss"
            ctx.runner.run(["/usr/bin/time", "-f", "%M", "-o", out] +
                           rt.cmd("create", "--bundle", rt.bundle("true"), cid))
            with open(out) as f:
                maxrss = int(f.read().split()[-1])
            st = json.loads(subprocess.run(rt.cmd("state", cid), capture_output=True, text=True).stdout)
            pid = st["pid"]
            cg = cgroup_memory_max(pid)
            vals.append((maxrss, proc_status_kib(pid, "VmHWM"), proc_status_kib(pid, "VmRSS"),
                         (cg or 0) // 1024))
            ctx.runner.run(rt.cmd("delete", "--force", cid), check=False)
            rt.ids.discard(cid)
        med = [statistics.median(v[i] for v in vals) for i in range(4)]
        print(f"  {rt.label:34} {med[0]:13.0f} {med[1]:11.0f} {med[2]:11.0f} {med[3]:12.0f}")
        ctx.summary.add(f"peak RSS create / init VmHWM {rt.name}", f"{med[0]:.0f} / {med[1]:.0f} KiB")
        reap_strays()


def many_round(ctx, rt, n, par):
    """Create+start n sleepers, par at a time, then delete them; returns
    (wall s, cpu s, failures)."""
    ids = [rt.new_id(f"many{n}") for _ in range(n)]
    fails = []

    def up(cid):
        for verb, argv in (("create", rt.cmd("create", "--bundle", rt.bundle("sleeper"), cid)),
                           ("start", rt.cmd("start", cid))):
            ok, _, err = ctx.runner.run(argv, check=False)
            if not ok:
                fails.append(f"{verb} {cid}: {err}")
                return

    def down(cid):
        ok, _, err = ctx.runner.run(rt.cmd("delete", "--force", cid), check=False)
        if not ok:
            fails.append(f"delete {cid}: {err}")

    reap_strays()
    c0, t0 = children_cpu(), time.perf_counter()
    pool_map(up, ids, par)
    pool_map(down, ids, par)
    wall = time.perf_counter() - t0
    time.sleep(0.05)
    reap_strays()
    cpu = children_cpu() - c0
    delete_leftovers(ctx, rt, ids)
    return wall, cpu, fails


def pool_map(fn, items, par):
    """fn over items, par at a time; on an interrupt the jobs not yet begun
    are dropped rather than run (the cleanup deletes what was created)."""
    ex = ThreadPoolExecutor(max_workers=par)
    try:
        list(ex.map(fn, items))
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def delete_leftovers(ctx, rt, ids):
    for cid in ids:
        rt.ids.discard(cid)
    # A failed delete leaves state behind: one more try, serially.
    if "@" not in rt.name:  # a host runtime: its --root is on this side
        root = rt.prefix[-1]
        for cid in os.listdir(root):
            if cid in ids:
                ctx.runner.run(rt.cmd("delete", "--force", cid), check=False)


def section_many(ctx, rts):
    ns = [int(x) for x in os.environ.get("MANY_N", "10 20 50 100").split()]
    par = env_int("MANY_P", 10)
    print(f"\n== many at once: N sleepers created+started {par} at a time, then deleted {par} at a time")
    print(f"  {'N':>4} " + "".join(f"{rt.name + ' total/per-ctr wall, CPU/ctr':>44}" for rt in rts))
    per = {rt.name: {} for rt in rts}
    for n in ns:
        row = f"  {n:4} "
        for rt in rts:
            wall, cpu, fails = many_round(ctx, rt, n, par)
            per[rt.name][n] = (wall / n, cpu / n)
            row += f"{wall:14.2f} s / {wall / n * 1e3:6.1f} ms, {cpu / n * 1e3:6.1f} ms"
            if fails:
                print(f"  !! {rt.label}: {len(fails)} of {n} failed, first: {fails[0][:200]}")
                ctx.summary.add(f"many N={n} {rt.name} failures", f"{len(fails)}/{n}", "0", False)
        print(row)
    many_summary(ctx, rts, per, ns)


def many_summary(ctx, rts, per, ns):
    lo, hi = ns[0], ns[-1]
    for rt in rts:
        g_wall = per[rt.name][hi][0] / per[rt.name][lo][0]
        g_cpu = per[rt.name][hi][1] / per[rt.name][lo][1]
        print(f"  {rt.label}: per-container cost N={hi} / N={lo}: wall {g_wall:.2f}, CPU {g_cpu:.2f}")
        if rt.name == "skiff":
            ctx.summary.add(f"many: skiff per-ctr wall N={hi}/N={lo}", f"{g_wall:.2f}", "<= 1.25",
                            g_wall <= 1.25)
            ctx.summary.add(f"many: skiff per-ctr CPU N={hi}/N={lo}", f"{g_cpu:.2f}", "<= 1.25",
                            g_cpu <= 1.25)
    for other in [rt.name for rt in rts if rt.name != "skiff"]:
        if "skiff" in per:
            w = per["skiff"][hi][0] / per[other][hi][0]
            c = per["skiff"][hi][1] / per[other][hi][1]
            ctx.summary.add(f"many N={hi} per-ctr skiff/{other} wall, CPU", f"{w:.2f}, {c:.2f}")


# ---------------------------------------------------------------- step timing

TIMING_RE = re.compile(r'timing: ([A-Za-z0-9_.+/ -]+?): ([0-9]+(?:\.[0-9]+)?) ?(ns|us|µs|ms)\b')
UNIT_US = {"ns": 0.001, "us": 1.0, "µs": 1.0, "ms": 1000.0}


def parse_timing(text):
    """[(step, microseconds)] from `timing: <step>: <N> us` in log lines,
    text (msg="timing: clone: 12 us") or JSON ("msg":"timing: clone: 12 us")."""
    return [(m.group(1).strip(), float(m.group(2)) * UNIT_US[m.group(3)])
            for m in TIMING_RE.finditer(text)]


def self_test():
    sample = (
        'time="2026-11-29T22:00:00Z" level=debug msg="timing: clone: 412 us"\n'
        'time="2026-11-29T22:00:00Z" level=debug msg="timing: cgroup join: 95 us"\n'
        '{"level":"debug","msg":"timing: rootfs: 1.5 ms","time":"2026-11-29T22:00:00.1Z"}\n'
        'time="2026-11-29T22:00:00Z" level=debug msg="something else: 3 us"\n'
        '{"level":"debug","msg":"timing: exec: 30 us","time":"x"}\n')
    got = parse_timing(sample)
    want = [("clone", 412.0), ("cgroup join", 95.0), ("rootfs", 1500.0), ("exec", 30.0)]
    assert got == want, f"parse_timing: got {got}, want {want}"
    assert parse_timing("level=debug msg=\"no timing here\"") == []
    trace = (
        '10 100.000000 execve("/rt", ["rt", "run"], 0x1 /* 3 vars */) = 0\n'
        '11 100.000500 clone(child_stack=0x1, flags=CLONE_VM|CLONE_THREAD|CLONE_SIGHAND) = 12\n'
        '10 100.001000 clone(child_stack=NULL, flags=SIGCHLD) = 13\n'
        '13 100.003000 unshare(CLONE_NEWNS|CLONE_NEWPID) = 0\n'
        '13 100.006000 mount(NULL, "/", NULL, MS_REC|MS_SLAVE, NULL) = 0\n'
        '13 100.010000 pivot_root(".", ".") = 0\n'
        '13 100.015000 execve("/bin/true", ["/bin/true"], 0x2 /* 3 vars */) = 0\n'
        '13 100.016000 +++ exited with 0 +++\n'
        '10 100.021000 +++ exited with 0 +++\n')
    got = [round(x) for x in trace_phases(trace, "/bin/true")]
    assert got == [1000, 2000, 3000, 4000, 5000, 1000, 5000], f"trace_phases: got {got}"
    assert trace_phases(trace.replace("pivot_root", "chroot"), "/bin/true") is None
    print("self-test: timing and strace parsers OK")


def section_steps(ctx, skiff):
    n = env_int("STEPS_RUNS", 5)
    print(f"\n== where skiff's time goes: `--debug` timing lines, mean of {n} runs (us)")
    debug = skiff.prefix[:-2] + ["--debug"] + skiff.prefix[-2:]
    for title, ops in (("run", lifecycle_run), ("create+start+delete", lifecycle_split)):
        steps, walls = {}, {}
        for _ in range(n):
            for argv in ops(skiff):
                args = argv[len(skiff.prefix):]
                t0 = time.perf_counter()
                ctx.runner.run(debug + args)
                walls.setdefault(args[0], []).append((time.perf_counter() - t0) * 1e6)
                with open(ctx.runner.err_path(), errors="replace") as f:
                    for step, us in parse_timing(f.read()):
                        steps.setdefault(f"{args[0]}: {step}", []).append(us)
        delete_all(ctx, [skiff])
        if not steps:
            print(f"  {title}: no timing lines (skiff without step timing)")
            continue
        print(f"  {title}:")
        for step, vals in steps.items():
            print(f"    {step:34} {sum(vals) / n:9.0f}   ({len(vals) / n:.0f} line(s) per {title})")
        for verb, vals in walls.items():
            print(f"    {verb + ': whole command (wall)':34} {statistics.mean(vals):9.0f}")


# ---------------------------------------------------------------- trace

TRACED = ("execve,clone,clone3,fork,vfork,unshare,setns,mount,pivot_root,"
          "fsopen,fsmount,move_mount,open_tree,mount_setattr")
PHASES = ("start to spawning init", "spawn to the new mount namespace",
          "mount namespace to the first mount", "rootfs mounts up to pivot_root",
          "pivot_root to exec of the process", "the container's process runs",
          "wait, delete, exit")
STRACE_RE = re.compile(r"^(\d+) +(\d+\.\d+) (.*)$")


def trace_phases(text, cmd):
    """Milestones of one `run` from `strace -f -ttt` output: the first fork
    or clone that makes a process (not a thread), the first unshare or clone
    with CLONE_NEWNS, the first mount after it, pivot_root, the execve of the
    container's command, that process's exit, and the last line. None when
    one is missing."""
    events = [(int(m.group(1)), float(m.group(2)), m.group(3))
              for m in map(STRACE_RE.match, text.splitlines()) if m]
    if not events:
        return None

    def first(pred, after):
        return next((e for e in events if e[1] >= after[1] and pred(e)), None)

    spawn = first(lambda e: re.match(r"(clone3?|v?fork)\(", e[2]) and "CLONE_THREAD" not in e[2], events[0])
    ns = spawn and first(lambda e: e[2].startswith(("unshare(", "clone")) and "CLONE_NEWNS" in e[2], spawn)
    mnt = ns and first(lambda e: e[2].startswith(("mount(", "fsopen(", "open_tree(", "mount_setattr(")), ns)
    pivot = mnt and first(lambda e: e[2].startswith("pivot_root("), mnt)
    exe = pivot and first(lambda e: e[2].startswith(f'execve("{cmd}"'), pivot)
    done = exe and first(lambda e: e[0] == exe[0] and "+++ exited" in e[2], exe)
    if not done:
        return None
    marks = [events[0][1], spawn[1], ns[1], mnt[1], pivot[1], exe[1], done[1], events[-1][1]]
    return [(y - x) * 1e6 for x, y in zip(marks, marks[1:])]


def section_trace(ctx, rts):
    if not shutil.which("strace"):
        print("\nbench: skipping the strace breakdown (strace not installed)")
        return
    n = env_int("TRACE_RUNS", 3)
    print(f"\n== where time goes, from `strace -f --seccomp-bpf` of `run` (mean of {n}; us;"
          " strace slows every traced call: compare shapes, not totals)")
    print(f"  {'phase':40}" + "".join(f"{rt.name:>10}" for rt in rts))
    missing = []
    cols = []
    for rt in rts:
        i = len(rt.prefix) - 3
        out = f"{ctx.work}/strace.txt"
        runs = []
        for _ in range(n):
            argv = (rt.prefix[:i] + ["strace", "-f", "-ttt", "-q", "--seccomp-bpf", "-e", f"trace={TRACED}",
                                     "-e", "signal=none", "-o", out] + rt.prefix[i:]
                    + ["run", "--bundle", rt.bundle("true"), rt.new_id("trace")])
            ctx.runner.run(argv)
            with open(out) as f:
                ph = trace_phases(f.read(), "/bin/true")
            if ph:
                runs.append(ph)
            else:
                missing.append(rt.name)
        cols.append([statistics.mean(r[j] for r in runs) for j in range(len(PHASES))] if runs else None)
    for j, name in enumerate(PHASES):
        print(f"  {name:40}" + "".join(f"{c[j]:10.0f}" if c else f"{'?':>10}" for c in cols))
    print(f"  {'total':40}" + "".join(f"{sum(c):10.0f}" if c else f"{'?':>10}" for c in cols))
    if missing:
        print(f"  (a milestone was missing from the trace of: {', '.join(sorted(set(missing)))})")
    delete_all(ctx, rts)


# ---------------------------------------------------------------- main

class Ctx:
    def __init__(self, work):
        self.work = work
        self.runner = Runner(work)
        self.pairs = Pairs(self.runner, env_int("SAMPLE", 25), env_int("PAIRS", 10), env_int("WARMUP", 3))
        self.summary = Summary()
        self.mem_start = env_int("MEM_START", 128) * 1024
        self.mem_step = env_int("MEM_STEP", 64) * 1024
        self.last_mem_err = {}
        self.mem_errs = {}


def make_bundles(work):
    for name, cmd in (("true", ["/bin/true"]), ("sleeper", ["sleep", "100000"]), ("mem", ["/bin/true"]),
                      ("spin", ["sh", "-c", SPIN])):
        subprocess.run([f"{REPO}/scripts/mkbundle.sh", f"{work}/{name}"] + cmd, check=True,
                       stdout=subprocess.DEVNULL)


def run_sections(ctx, rts, chroot):
    crts = []
    if enabled("CHROOT") and "skiff" in [rt.name for rt in rts]:
        why = chroot.start()
        if why:
            print(f"\nbench: skipping the trixie chroot part: {why}")
            ctx.summary.add("run (chroot) vs crun 1.21", "skipped", "<= 0.8", False)
        else:
            crts = chroot.runtimes
    elif enabled("CHROOT"):
        print("\nbench: skipping the trixie chroot part (no skiff binary)")
    else:
        print("\nbench: skipping the trixie chroot part (CHROOT=0)")
    if enabled("CPU_CHECK"):
        section_cpu_check(ctx, rts + crts)
    section_pairs(ctx, rts, crts)
    section_rss(ctx, rts + crts)
    if enabled("MEM"):
        section_memory(ctx, rts + crts)
    else:
        print("\nbench: skipping the memory-limit search (MEM=0)")
    if enabled("MANY"):
        section_many(ctx, rts)
    else:
        print("\nbench: skipping many-at-once (MANY=0)")
    if enabled("TRACE"):
        section_trace(ctx, rts)
    skiff = [rt for rt in rts if rt.name == "skiff"]
    if enabled("STEPS") and skiff:
        section_steps(ctx, skiff[0])


def private_mount_namespace(libc, work):
    """Move this process (still single-threaded) into a private mount
    namespace without the cgroup2 mount at /sys/fs/cgroup/unified, where every
    runtime then runs: the one wrapper, paid once instead of on every call."""
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
    libc.umount2(b"/sys/fs/cgroup/unified", MNT_DETACH)  # absent on a pure v1 or v2 host
    # The runtimes' --root dirs (host_runtimes) go on tmpfs, where engines keep them.
    run = f"{work}/run".encode()
    os.makedirs(run, exist_ok=True)
    if libc.mount(b"tmpfs", run, b"tmpfs", 0, b"mode=0755") != 0:
        raise OSError(ctypes.get_errno(), "mount tmpfs on WORK/run")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return 0
    work = sys.argv[1]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    if not SH_WRAP:
        private_mount_namespace(libc, work)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    self_test()
    make_bundles(work)
    ctx = Ctx(work)
    rts = host_runtimes(work)
    if not rts:
        print("bench: no runtime to benchmark")
        return 1
    chroot = Chroot(work, os.path.realpath(os.environ.get("SKIFF", "")))
    t0 = time.monotonic()
    rc = 0
    try:
        run_sections(ctx, rts, chroot)
    except BenchError as e:
        print(f"\nbench: {e}")
        rc = 1
    except KeyboardInterrupt:
        print("\nbench: interrupted; deleting the containers")
        rc = 130
    finally:
        delete_all(ctx, rts + chroot.runtimes)
        chroot.stop()
        reap_strays()
    with open(f"{work}/summary.txt", "w") as f:
        f.write(f"host part took {time.monotonic() - t0:.0f} s; SAMPLE={ctx.pairs.k} PAIRS={ctx.pairs.p}\n")
        f.write("runtimes: " + ", ".join(f"{rt.name} = {rt.label}" for rt in rts + chroot.runtimes) + "\n")
        f.write(ctx.summary.text() + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
