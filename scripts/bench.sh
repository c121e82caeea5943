#!/bin/bash
# Compare skiff with runc and crun: wall time of the whole container lifecycle
# and peak RSS of `create`. Run as root from the repository root.
#
#   SKIFF=path   skiff binary (default ./target/x86_64-unknown-linux-gnu/release/skiff)
#   RUNS=N       timed runs per command (default 30)
#   WARMUP=N     untimed warm-up runs (default 3)
#   DOCKER=0     skip `docker run --rm` (it starts a private dockerd)
#   VM=0         skip the part inside the VM lane's guest (cgroup v2 and
#                systemd under qemu TCG: ratios only, see scripts/vm/bench-guest.py);
#                VM_RUNS (default 8) and VM_WARMUP (default 2) size it, VM_LOCK=FILE
#                boots the guest under `flock FILE` (one VM at a time)
#
# A runtime that is not installed is skipped with a note.
set -euo pipefail

cd "$(dirname "$0")/.."
SKIFF=${SKIFF:-./target/x86_64-unknown-linux-gnu/release/skiff}
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}

die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
for tool in hyperfine python3 unshare /usr/bin/time; do
    command -v "$tool" >/dev/null || die "$tool not found (run scripts/install-deps.sh)"
done

# name=binary for each runtime that exists. skiff's path is made absolute
# because the commands run from hyperfine's shell.
declare -A bin=()
names=()
add() {
    if [ -n "$2" ] && [ -x "$2" ]; then
        bin[$1]=$(realpath "$2")
        names+=("$1")
    else
        echo "bench: skipping $1 (${2:-not installed}${2:+ is not executable})" >&2
    fi
}
add skiff "$SKIFF"
add runc "$(command -v runc || true)"
add crun "$(command -v crun || true)"
[ ${#names[@]} -gt 0 ] || die "no runtime to benchmark"

work=$(mktemp -d /tmp/skiff-bench.XXXXXX)
cleanup() {
    # Containers left behind by a failed run: delete them so nothing leaks.
    for n in "${names[@]}"; do
        for state in "$work/root-$n"/*/; do
            [ -d "$state" ] || continue
            "${bin[$n]}" --root "$work/root-$n" delete --force "$(basename "$state")" >/dev/null 2>&1 || true
        done
    done
    rm -rf "$work"
}
trap cleanup EXIT

# One bundle, used unchanged by every runtime (all namespaces, including network).
scripts/mkbundle.sh "$work/bundle" /bin/true
bundle=$work/bundle

# crun 1.8 refuses the hybrid cgroup layout (v1 controllers plus an empty cgroup2
# at /sys/fs/cgroup/unified) unless that cgroup2 mount is gone. Unmount it in a
# private mount namespace, and run EVERY runtime through the same wrapper so that
# the wrapper's cost (~2 ms: unshare + sh) is the same for all.
wrap="unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec \"\$@\"' --"

# hyperfine runs each command through a fresh `sh -c`, so `$$` is unique per run.
# `run` without --detach deletes its container when the process exits.
args=()
for n in "${names[@]}"; do
    mkdir -p "$work/root-$n"
    args+=(-n "$n" "$wrap ${bin[$n]} --root $work/root-$n run --bundle $bundle bench-$n-\$\$")
done

echo
echo "== run of /bin/true (create + start + wait + delete), $RUNS runs"
hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" \
    --export-json "$work/run.json" "${args[@]}"

# Same lifecycle as separate calls, the way containerd drives a runtime.
# delete --force also covers a container still running when delete comes.
args=()
for n in "${names[@]}"; do
    r="${bin[$n]} --root $work/root-$n"
    args+=(-n "$n" "$wrap $r create --bundle $bundle bench-$n-\$\$ && $wrap $r start bench-$n-\$\$ && $wrap $r delete --force bench-$n-\$\$")
done
echo
echo "== create + start + delete --force, $RUNS runs"
hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" \
    --export-json "$work/split.json" "${args[@]}"

# Peak RSS of the `create` process itself; the container init it leaves behind
# is not its child once create exits, so it is not counted. The wrapper execs
# (no fork), and the kernel keeps the high-water mark across exec, so the figure
# is the largest of unshare, sh and the runtime: in practice the runtime.
echo
echo "== peak RSS of create (median of 5)"
for n in "${names[@]}"; do
    r="${bin[$n]} --root $work/root-$n"
    for i in 1 2 3 4 5; do
        id=rss-$n-$i
        eval "/usr/bin/time -f %M -o $work/rss-$n-$i $wrap $r create --bundle $bundle $id" </dev/null >/dev/null
        eval "$wrap $r delete --force $id"
    done
done

python3 - "$work" "${names[@]}" <<'EOF'
import json, statistics, sys

work, names = sys.argv[1], sys.argv[2:]

def means(path):
    with open(path) as f:
        return {r["command"]: r for r in json.load(f)["results"]}

for title, path in (("run", "run.json"), ("create+start+delete", "split.json")):
    res = means(f"{work}/{path}")
    print(f"\n{title}:")
    for n in names:
        r = res[n]
        print(f"  {n:6} mean {r['mean']*1e3:7.1f} ms ± {r['stddev']*1e3:5.1f}   median {r['median']*1e3:7.1f} ms")
    for other in ("runc", "crun"):
        if "skiff" in res and other in res:
            print(f"  skiff/{other}: {res['skiff']['mean'] / res[other]['mean']:.2f}x")

print("\npeak RSS of create:")
rss = {}
for n in names:
    vals = []
    for i in range(1, 6):
        with open(f"{work}/rss-{n}-{i}") as f:
            # GNU time writes "Command exited with non-zero status" first on failure.
            vals.append(int(f.read().split()[-1]))
    rss[n] = statistics.median(vals)
    print(f"  {n:6} {rss[n] / 1024:6.1f} MiB")
for other in ("runc", "crun"):
    if "skiff" in rss and other in rss:
        print(f"  skiff/{other}: {rss['skiff'] / rss[other]:.2f}x")
EOF

# ===========================================================================
# exec latency and `docker run --rm` (engines section). Appended to the
# lifecycle benchmark above; reuses $work, $wrap, $bundle, names and bin.
# DOCKER=0 skips the Docker part (it starts a private dockerd).
trap 'scripts/engines/dockerd.sh stop "$work/docker" >/dev/null 2>&1 || true; cleanup' EXIT

# One long-running container per runtime to exec into.
scripts/mkbundle.sh "$work/sleeper" sleep 100000 >/dev/null
args=()
for n in "${names[@]}"; do
    r="${bin[$n]} --root $work/root-$n"
    eval "$wrap $r run -d --bundle $work/sleeper exec-$n" </dev/null >/dev/null
    args+=(-n "$n" "$wrap $r exec exec-$n true")
done
echo
echo "== exec of /bin/true in a running container, $RUNS runs"
hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" \
    --export-json "$work/exec.json" "${args[@]}"
for n in "${names[@]}"; do
    eval "$wrap ${bin[$n]} --root $work/root-$n delete --force exec-$n" >/dev/null 2>&1 || true
done

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
}
if [ "${DOCKER:-1}" != 0 ]; then
    docker_bench || echo "bench: docker part failed" >&2
fi

python3 - "$work" "${names[@]}" <<'EOF'
import json, os, sys

work, names = sys.argv[1], sys.argv[2:]
for title, path in (("exec", "exec.json"), ("docker run --rm", "docker.json")):
    p = os.path.join(work, path)
    if not os.path.exists(p):
        continue
    with open(p) as f:
        res = {r["command"]: r for r in json.load(f)["results"]}
    print(f"\n{title}:")
    for n in names:
        r = res[n]
        print(f"  {n:6} mean {r['mean']*1e3:7.1f} ms ± {r['stddev']*1e3:5.1f}   median {r['median']*1e3:7.1f} ms")
    for other in ("runc", "crun"):
        if "skiff" in res and other in res:
            print(f"  skiff/{other}: {res['skiff']['mean'] / res[other]['mean']:.2f}x")
EOF

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
