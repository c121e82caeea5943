#!/bin/bash
# skiff's VM test lane (`make vm-test`): the integration tests, compiled once
# here, run inside a Debian 13 guest with systemd as PID 1 and unified cgroup
# v2 (scripts/vm/run.sh), with the same static skiff binary.
#
#   scripts/vm/lane.sh [TEST-FILTER...]     e.g. scripts/vm/lane.sh cgroups:: lifecycle::
#
# Results go to target/vm-lane/: integration.log (the test binary's output),
# summary.txt (counts, failing and skipped tests), console.log, guest-info,
# versions (runc, crun, docker, containerd, podman, kernel in the guest).
# Each test runs in its own process in the guest, with its output in
# tests/NAME.log; integration.log has one result line per test (with its wall
# time), the skipped tests' reasons, and the output of every failed test.
# Env: SKIFF_VM_TIMEOUT (whole guest run, default 3600 s), SKIFF_VM_TEST_TIMEOUT
# (one test, default 600 s), SKIFF_VM_THREADS (tests at once, default 2),
# SKIFF_VM_MEM (guest MiB, default 2048), SKIFF_VM_SKIFF (the skiff binary to
# test, default this tree's release build).
# Exit status: 0 when every test passed, else non-zero.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
CARGO=${CARGO:-cargo}
LANE=$ROOT/target/vm-lane

export CARGO_BUILD_TARGET=${CARGO_BUILD_TARGET:-$("$ROOT"/scripts/rust-target.sh)}
"$CARGO" build --release
# SKIFF_VM_SKIFF: another static skiff binary to test with these tests.
skiff=${SKIFF_VM_SKIFF:-$ROOT/target/$CARGO_BUILD_TARGET/release/skiff}
# The integration test binary (static too, per .cargo/config.toml), built but not run.
testbin=$("$CARGO" test --release --test integration --no-run --message-format=json |
    python3 -c '
import json, sys
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
            and msg["target"]["name"] == "integration":
        print(msg["executable"])
')
[ -x "$testbin" ] || { echo "vm-lane: no integration test binary from cargo" >&2; exit 1; }

rm -rf "$LANE"
mkdir -p "$LANE/payload"
cp "$skiff" "$LANE/payload/skiff"
cp "$testbin" "$LANE/payload/integration"
# engines.rs finds its scripts under the crate's directory as compiled in.
cp -a scripts "$LANE/payload/scripts"
echo "$ROOT" >"$LANE/payload/manifest-dir"
printf '%s\n' "$@" >"$LANE/payload/test-args"
echo "${SKIFF_VM_THREADS:-2}" >"$LANE/payload/test-threads"
echo "${SKIFF_VM_TEST_TIMEOUT:-600}" >"$LANE/payload/test-timeout"

start=$(date +%s)
status=0
"$ROOT/scripts/vm/run.sh" --payload "$LANE/payload" --script "$ROOT/scripts/vm/lane-guest.sh" \
    --out "$LANE" --timeout "${SKIFF_VM_TIMEOUT:-3600}" --mem "${SKIFF_VM_MEM:-2048}" || status=$?
rm -rf "$LANE/payload"
elapsed=$(($(date +%s) - start))

python3 - "$LANE" "$status" "$elapsed" <<'PY'
import re, sys, pathlib
lane, status, elapsed = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
log = lane / "integration.log"
results = {}
if log.exists():
    for line in log.read_text(errors="replace").splitlines():
        m = re.match(r"^test (\S+) \.\.\. (ok|FAILED|ignored)", line)
        if m:
            results[m.group(1)] = m.group(2)
passed = sorted(t for t, r in results.items() if r == "ok")
failed = sorted(t for t, r in results.items() if r == "FAILED")
ignored = sorted(t for t, r in results.items() if r == "ignored")
info = (lane / "guest-info").read_text() if (lane / "guest-info").exists() else ""
lines = [f"VM lane (guest exit {status}, {elapsed} s wall)", info.strip(), ""]
def reason(test):
    """The first line of the test's panic message, to group failures by cause."""
    f = lane / "tests" / f"{test}.log"
    text = f.read_text(errors="replace").splitlines() if f.exists() else []
    for i, line in enumerate(text):
        if " panicked at " in line and i + 1 < len(text):
            return text[i + 1][:200]
    return text[-1][:200] if text else "no output"
lines += [f"FAILED {t}: {reason(t)}" for t in failed]
skips = [l for l in log.read_text(errors="replace").splitlines() if " skipping " in l] if log.exists() else []
lines += [f"skipped {l}" for l in skips]
if not results:
    lines.append("no test results: see console.log and script.log")
lines.append(f"{len(passed)} passed ({len(skips)} of them returned early, reasons above), {len(failed)} failed, {len(ignored)} skipped")
(lane / "summary.txt").write_text("\n".join(lines) + "\n")
print("\n".join(lines[2:-1]))
print(f"results: {lane}/ (integration.log, summary.txt, console.log)")
print(f"vm-lane: {len(passed)} passed, {len(failed)} failed")
PY
exit "$status"
