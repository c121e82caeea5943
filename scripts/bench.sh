#!/bin/bash
# Compare skiff with crun and runc the way issue 15 sets its targets, and print
# a summary table with PASS/FAIL against each target at the end. Run as root
# from the repository root (`make bench`). The host part is
# scripts/bench/host.py (its docstring says how it measures); about 15 minutes
# with the defaults on a 2-core machine (the first run also builds the trixie
# chroot: 1-2 minutes, cached in /var/cache/skiff-bench).
#
#   SKIFF=path   skiff binary (default ./target/<scripts/rust-target.sh>/release/skiff)
#   SAMPLE=N     lifecycles per timed sample (default 25)
#   PAIRS=N      rounds of samples, runtimes alternating within each (default 10);
#                ratios are medians over the rounds
#   WARMUP=N     untimed lifecycles per runtime before each scenario (default 3)
#   CHROOT=0     skip Debian 13's crun (and skiff) run from a trixie chroot
#                (scripts/bench/chroot.sh builds it once with debootstrap)
#   MEM=0        skip the smallest-memory-limit search; MEM_RUNS (default 20)
#                successes needed, MEM_START and MEM_STEP (KiB; 128 and 64) the grid
#   RSS_RUNS=N   creates per runtime for peak RSS of create and init (default 5)
#   MANY=0       skip many-at-once; MANY_N (default "10 20 50 100") the sizes,
#                MANY_P (default 10) how many at a time
#   STEPS=0      skip skiff's `--debug` step timing; STEPS_RUNS (default 5)
#   TRACE=0      skip the `strace -f` phase breakdown of one `run` per runtime
#                (TRACE_RUNS, default 3)
#   CPU_CHECK=0  skip the check that the CPU figures include the container's
#                processes (a busybox loop run bare, in `run`, in a detached
#                container and by `exec`; about 10 s)
#   RUNS=N       timed runs of `docker run --rm` (default 30)
#   DOCKER=0     skip `docker run --rm` (it starts a private dockerd)
#   VM=0         skip the part inside the VM lane's guest (cgroup v2 and
#                systemd under qemu TCG: ratios only, see scripts/vm/bench-guest.py);
#                VM_RUNS (default 8) and VM_WARMUP (default 2) size it, VM_LOCK=FILE
#                boots the guest under `flock FILE` (one VM at a time)
#
# A runtime that is not installed is skipped with a note; so is every part
# that cannot run here, with the reason.
set -euo pipefail

cd "$(dirname "$0")/.."
SKIFF=${SKIFF:-./target/${CARGO_BUILD_TARGET:-$(scripts/rust-target.sh)}/release/skiff}
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
export SKIFF WARMUP

die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
for tool in python3 unshare nsenter /usr/bin/time; do
    command -v "$tool" >/dev/null || die "$tool not found (run scripts/install-deps.sh)"
done

# name=binary for each runtime that exists (for the docker and VM parts; the
# host part finds its own). skiff's path is made absolute.
declare -A bin=()
names=()
add() {
    if [ -n "$2" ] && [ -x "$2" ]; then
        bin[$1]=$(realpath "$2")
        names+=("$1")
    fi
}
add skiff "$SKIFF"
add runc "$(command -v runc || true)"
add crun "$(command -v crun || true)"

work=$(mktemp -d /tmp/skiff-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
    scripts/engines/dockerd.sh stop "$work/docker" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The same wrapper as host.py's, for the docker part: crun 1.8 refuses the
# hybrid cgroup layout unless /sys/fs/cgroup/unified is unmounted, and every
# runtime goes through it so that its cost (~2 ms) is the same for all.
wrap="unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec \"\$@\"' --"

echo "bench: $(date -u '+%F %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
host_rc=0
python3 -u scripts/bench/host.py "$work" || host_rc=$?

docker_bench() {
    command -v dockerd >/dev/null || { echo "bench: skipping docker (dockerd not installed)" >&2; return 0; }
    local ddir=$work/docker extra=() docker
    mkdir -p "$ddir"
    # Every runtime through the same wrapper script (crun needs it on this
    # hybrid host; the others get it so the comparison stays fair).
    for n in "${names[@]}"; do
        printf '#!/bin/sh\nexec %s "$@"\n' "$wrap ${bin[$n]}" >"$ddir/rt-$n"
        chmod +x "$ddir/rt-$n"
        extra+=("--add-runtime bench-$n=$ddir/rt-$n")
    done
    EXTRA_RUNTIMES="${extra[*]}" scripts/engines/dockerd.sh start "$ddir" "$(realpath "$SKIFF")" || return 1
    docker="/usr/bin/docker -H unix://$ddir/docker.sock"
    scripts/engines/busybox-image.sh "$ddir/image" skiff-busybox:latest
    $docker import "$ddir/image/rootfs.tar" skiff-busybox >/dev/null
    local dargs=()
    for n in "${names[@]}"; do
        dargs+=(-n "$n" "$docker run --rm --network none --runtime bench-$n skiff-busybox true")
    done
    # A freshly started dockerd is slow on its first containers (snapshots,
    # shim binaries into the page cache): warm it up with every runtime before
    # timing, or whichever runtime goes first pays for it.
    for n in "${names[@]}"; do
        for _ in 1 2 3; do
            $docker run --rm --network none --runtime "bench-$n" skiff-busybox true >/dev/null 2>&1 || true
        done
    done
    echo
    echo "== docker run --rm busybox true, $RUNS runs"
    hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" \
        --export-json "$work/docker.json" "${dargs[@]}" || true
    scripts/engines/dockerd.sh stop "$ddir"
    python3 - "$work/docker.json" "${names[@]}" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    res = {r["command"]: r for r in json.load(f)["results"]}
print("\ndocker run --rm:")
for n in sys.argv[2:]:
    r = res[n]
    print(f"  {n:6} mean {r['mean']*1e3:7.1f} ms ± {r['stddev']*1e3:5.1f}   median {r['median']*1e3:7.1f} ms")
for other in ("runc", "crun"):
    if "skiff" in res and other in res:
        print(f"  skiff/{other}: {res['skiff']['mean'] / res[other]['mean']:.2f}x")
EOF
}
if [ "${DOCKER:-1}" != 0 ]; then
    command -v hyperfine >/dev/null || die "hyperfine not found (run scripts/install-deps.sh) or set DOCKER=0"
    docker_bench || echo "bench: docker part failed" >&2
fi

# ===========================================================================
# Inside the VM lane's guest: Debian 13, systemd as PID 1, cgroup v2 only,
# the runc and crun of that distribution, the same static skiff. qemu runs it
# with TCG, which makes every system call many times slower, so only ratios
# are printed. Booting it builds the guest image first if it is not cached.
vm_bench() {
    local vdir=$work/vm
    mkdir -p "$vdir/payload/scripts"
    cp "${bin[skiff]}" "$vdir/payload/skiff"
    cp scripts/mkbundle.sh "$vdir/payload/scripts/"
    printf 'RUNS=%s\nWARMUP=%s\n' "${VM_RUNS:-8}" "${VM_WARMUP:-2}" >"$vdir/payload/bench-env"
    local lock=()
    [ -n "${VM_LOCK:-}" ] && lock=(flock "$VM_LOCK")
    echo
    echo "== inside the VM guest (booting it; several minutes under TCG)"
    "${lock[@]}" scripts/vm/run.sh --payload "$vdir/payload" --script scripts/vm/bench-guest.py \
        --out "$vdir/out" --timeout 3600 --quiet || {
        echo "bench: the guest part failed; its output:" >&2
        tail -20 "$vdir/out/script.log" >&2 2>/dev/null || true
        return 1
    }
    sed -n '/^== inside the VM guest/,$p' "$vdir/out/script.log"
}
if [ "${VM:-1}" != 0 ]; then
    if [ -z "${bin[skiff]:-}" ]; then
        echo "bench: skipping the VM guest part (no skiff binary)" >&2
    else
        vm_bench || echo "bench: VM guest part failed" >&2
    fi
fi

# The summary last, so that it is the end of the output whatever ran.
echo
echo "================ summary (host part; ratios are skiff/other, medians of alternating pairs)"
if [ -f "$work/summary.txt" ]; then
    cat "$work/summary.txt"
else
    echo "bench: the host part wrote no summary (exit status $host_rc)"
fi
exit "$host_rc"
