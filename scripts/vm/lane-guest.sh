#!/bin/sh
# Guest half of scripts/vm/lane.sh, run by scripts/vm/run.sh inside the VM
# with the payload (skiff, the integration test binary, scripts/) as cwd.
set -u
out=$SKIFF_VM_OUT
# engines.rs runs scripts/engines/* from the crate directory compiled into it.
manifest=$(cat manifest-dir)
mkdir -p "$manifest"
cp -a scripts "$manifest/"
{
    echo "kernel: $(uname -r)"
    echo "skiff: $(./skiff --version | head -n1)"
    for tool in runc crun containerd docker podman; do
        echo "$tool: $($tool --version 2>&1 | head -n1)"
    done
} >"$out/versions"
cat "$out/versions"
export SKIFF_BIN=$SKIFF_VM_IN/skiff RUNC_BIN=/usr/sbin/runc RUST_BACKTRACE=1
# Test names from the host, one per line (none: the whole suite).
set --
while IFS= read -r arg; do
    [ -n "$arg" ] && set -- "$@" "$arg"
done <test-args
echo "vm-lane: integration --test-threads=$(cat test-threads) $*"
start=$(cut -d' ' -f1 /proc/uptime)
status_file=$(mktemp)
{
    ./integration --test-threads="$(cat test-threads)" "$@" 2>&1
    echo $? >"$status_file"
} | tee "$out/integration.log"
status=$(cat "$status_file")
end=$(cut -d' ' -f1 /proc/uptime)
echo "vm-lane: tests ran from ${start} s to ${end} s of guest uptime, exit $status" | tee -a "$out/guest-info"
# Whatever the tests left in the cgroup tree, for the record.
find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d >"$out/cgroup-tree-after"
exit "$status"
