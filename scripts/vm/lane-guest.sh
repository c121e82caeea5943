#!/bin/sh
# Guest half of scripts/vm/lane.sh, run by scripts/vm/run.sh inside the VM
# with the payload (skiff, the integration test binary, scripts/) as cwd.
#
# Each test runs in its own process of the test binary (`--exact NAME`), N at
# a time, under a per-test timeout: a test that hangs in the guest is then a
# failure with its own output, and does not take the rest of the lane down.
# The harness names everything by pid, so concurrent processes do not clash.
set -u
out=$SKIFF_VM_OUT
threads=$(cat test-threads)
per_test=$(cat test-timeout)
# engines.rs runs scripts/engines/* from the crate directory compiled into it.
manifest=$(cat manifest-dir)
mkdir -p "$manifest"
cp -a scripts "$manifest/"
{
    echo "kernel: $(uname -r)"
    # All of it: a closed pipe would make skiff panic ("failed printing to stdout").
    echo "skiff: $(./skiff --version 2>&1 | tr '\n' ' ')"
    for tool in runc crun containerd docker podman; do
        echo "$tool: $($tool --version 2>&1 | head -n1)"
    done
} >"$out/versions"
cat "$out/versions"
export SKIFF_BIN=$SKIFF_VM_IN/skiff RUNC_BIN=/usr/sbin/runc RUST_BACKTRACE=1
# Each exec is 20-40x slower under TCG: the exec-race test runs 300, not 10,000.
export SKIFF_EXEC_STRESS=300
# The differential corpus (integration/corpus.rs, 300+ cases against runc)
# takes about 3 min on the host and would take hours under TCG: the guest
# runs its cgroup cases, where cgroup v2 and systemd differ from the host.
export CORPUS_FILTER=${CORPUS_FILTER:-cgroup-}
echo "vm-lane: the corpus runs only its cases named *${CORPUS_FILTER}* here"
# Test filters from the host, one per line (none: the whole suite).
set --
while IFS= read -r arg; do
    [ -n "$arg" ] && set -- "$@" "$arg"
done <test-args
./integration --list --format terse "$@" | sed -n 's/: test$//p' >"$out/test-list"
echo "vm-lane: $(wc -l <"$out/test-list") tests, $threads at a time, ${per_test} s limit each"
mkdir -p "$out/tests"
start=$(cut -d' ' -f1 /proc/uptime)
# One line per test, as libtest prints them, plus its wall time.
# shellcheck disable=SC2016 # expanded by the inner sh
xargs -n1 -P "$threads" sh -c '
    out=$1 limit=$2 name=$3
    log=$out/tests/$name.log
    t0=$(date +%s)
    # --show-output: a test that passed by returning early keeps its
    # "skipping ...: why" line in its log (libtest hides the output of a
    # passing test otherwise), so the summary lists every skip with its reason.
    timeout -k 10 "$limit" ./integration --exact "$name" --test-threads=1 --show-output >"$log" 2>&1
    rc=$?
    secs=$(($(date +%s) - t0))
    if [ $rc -eq 0 ] && grep -q "^test $name \.\.\. ok" "$log"; then
        result=ok
    elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        result="FAILED (timed out after $limit s)"
        echo "vm-lane: killed after $limit s: the test hung in the guest" >>"$log"
    else
        result=FAILED
    fi
    echo "test $name ... $result [${secs} s]"
' run-one "$out" "$per_test" <"$out/test-list" | tee "$out/results"
end=$(cut -d' ' -f1 /proc/uptime)
{
    sort "$out/results"
    echo
    # Tests that returned early say why (skip_unless_root and the like).
    grep -H '^skipping ' "$out"/tests/*.log | sed "s|^$out/tests/||; s|\.log:| |"
    for f in $(sed -n 's/^test \(.*\) \.\.\. FAILED.*/\1/p' "$out/results" | sort); do
        echo
        echo "---- $f ----"
        cat "$out/tests/$f.log"
    done
} >"$out/integration.log"
echo "vm-lane: tests ran from ${start} s to ${end} s of guest uptime" | tee -a "$out/guest-info"
# Whatever the tests left in the cgroup tree and in systemd, for the record.
find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d >"$out/cgroup-tree-after"
systemctl list-units --all --no-pager --plain 'skiff*' '*.scope' >"$out/units-after" 2>&1
! grep -q FAILED "$out/results"
