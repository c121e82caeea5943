#!/bin/sh
# Run every OCI runtime-tools validation test against $RUNTIME, one at a time,
# and score it (README.md, "Conformance"). Not part of `make test`: it needs a
# built runtime-tools checkout (Go), which this repository does not carry.
# Usage (as root, absolute paths): RUNTIME=/path/to/runtime SUITE=/path/to/runtime-tools \
#                  scripts/runtime-tools.sh > out
# SUITE (default: the current directory) holds runtimetest, rootfs-amd64.tar.gz
# and validation/*/*.t (`make runtimetest validation-executables` there).
# Prints "name PASS|FAIL" per test (with a note in brackets for special cases)
# and "total X of N passed". Each test's TAP and stderr go to $LOGDIR/<name>.log
# (default /tmp/rtools-logs/<basename of RUNTIME>).
# SCORE_ONLY=1 re-scores the logs already in $LOGDIR without running anything.
# Each test gets $TIMEOUT seconds (default 120); a timeout is a FAIL.
#
# Verdict (no node-tap here, and node-tap alone would be too kind, see 3.):
#  1. FAIL if the test exits non-zero or prints a "not ok" line (TODO aside).
#  2. FAIL if a TAP stream's plan "1..N" differs from its number of results.
#     (Some tests print several streams, one per case.)
#  3. FAIL if a stream with plan 1..0 carries a YAML diagnostic: the lifecycle
#     tests (hooks, prestart, poststart, poststop, *_fail of those) report a
#     failure only as a YAML "error" block and then "1..0", never "not ok".
#  4. PASS if the test exits 0 with no TAP output at all: that is how
#     process_capabilities_fail and process_rlimits_fail report that the
#     runtime refused their bad config (they exit 1 when it did not).
#  5. PASS otherwise.
set -u
: "${RUNTIME:?set RUNTIME to the runtime binary}"
TIMEOUT=${TIMEOUT:-120}
LOGDIR=${LOGDIR:-/tmp/rtools-logs/$(basename "$RUNTIME")}
cd "${SUITE:-.}" || exit 1
[ "${SCORE_ONLY:-0}" = 1 ] || [ -x runtimetest ] || { echo "runtime-tools.sh: no runtimetest in $(pwd): set SUITE" >&2; exit 1; }
mkdir -p "$LOGDIR"

# Prints "PASS note" or "FAIL note" for one log whose last line is "# exit status: N".
score() {
    awk '
    function endstream() {
        if (!instream) return
        if (plan < 0) { why = why " no plan in a TAP stream;" }
        else if (plan != res) { why = why " plan 1.." plan " but " res " results;" }
        else if (plan == 0 && yaml) { why = why " error reported as a YAML diagnostic with no assertion;" }
        instream = 0
    }
    /^TAP version/ { endstream(); instream = 1; plan = -1; res = 0; yaml = 0; streams++; next }
    /^(not )?ok/ { res++; total++
                   if ($0 ~ /^not ok/ && $0 !~ /# TODO/) notok++
                   if ($0 ~ /^ok .*# (SKIP|skip)/) skips++
                   next }
    /^1\.\.[0-9]+/ { sub(/^1\.\./, ""); plan = $0 + 0; next }
    /^  ---$/ { yaml = 1; next }
    /^# exit status: / { rc = $4 + 0; next }
    END {
        endstream()
        if (rc == 124 || rc == 137) { print "FAIL (timed out)"; exit }
        if (rc != 0) { print "FAIL (exit status " rc ")"; exit }
        if (notok > 0) { print "FAIL (" notok " not ok)"; exit }
        if (streams == 0) { print "PASS (no TAP output, exit 0: the test'"'"'s success path)"; exit }
        if (why != "") { sub(/;$/, "", why); print "FAIL (" substr(why, 2) ")"; exit }
        if (total > 0 && skips == total) { print "PASS (every case skipped)"; exit }
        print "PASS"
    }' "$1"
}

pass=0
total=0
for t in validation/*/*.t; do
    name=$(basename "$t" .t)
    log="$LOGDIR/$name.log"
    if [ "${SCORE_ONLY:-0}" != 1 ]; then
        RUNTIME="$RUNTIME" timeout -k 10 "$TIMEOUT" "$t" > "$log" 2>&1
        echo "# exit status: $?" >> "$log"
    fi
    verdict=$(score "$log")
    case $verdict in PASS*) pass=$((pass + 1)) ;; esac
    total=$((total + 1))
    echo "$name $verdict"
done
echo "total $pass of $total passed"
