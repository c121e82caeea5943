#!/bin/bash
# Boot skiff's VM lane guest (Debian 13, systemd as PID 1, unified cgroup v2,
# qemu TCG), run one script in it as root, copy its results out, power off.
#
#   scripts/vm/run.sh --payload DIR --script FILE [--out DIR] [--timeout SECS]
#                     [--mem MiB] [--quiet]
#
#   --payload DIR   copied into the guest; the script runs with it as its
#                   working directory ($SKIFF_VM_IN)
#   --script FILE   run in the guest as root by a systemd service
#                   (skiff-vm-payload.service, so in system.slice/
#                   skiff-vm-payload.service, as a CI agent's service would be);
#                   a shebang picks the interpreter (guest has sh, bash, python3)
#   --out DIR       receives what the script wrote to $SKIFF_VM_OUT, plus
#                   script.log (its stdout+stderr), exit-status, guest-info
#                   (kernel, systemd, cgroup layout, boot time) and console.log
#                   (the guest's serial console); default ./vm-out
#   --timeout SECS  hard limit for the whole boot-run-poweroff (default 1800);
#                   qemu is killed when it passes
#   --mem MiB       guest memory (default 2048)
#   --quiet         don't stream the guest console to stdout
#
# Exit status: the script's, or 124 when the timeout killed the guest, or 125
# when the guest or this script failed before the script's status was known.
#
# The guest image comes from scripts/vm/build-image.sh (cached per recipe in
# /var/cache/skiff-vm/<hash>/; built on first use, several minutes) or from
# $SKIFF_VM_IMAGE (a directory with rootfs.img, vmlinuz, initrd.img). It stays
# pristine: the guest writes to a qcow2 overlay thrown away afterwards. The
# guest has no network; tools it needs must be in the image (see
# build-image.sh) or in the payload. Needs root.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
payload="" script="" out=$PWD/vm-out timeout=1800 mem=2048 quiet=""

die() {
    echo "vm/run.sh: $*" >&2
    exit 125
}

while [ $# -gt 0 ]; do
    case $1 in
    --payload) payload=$2; shift 2 ;;
    --script) script=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --quiet) quiet=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ -d "$payload" ] || die "--payload DIR is required and must be a directory"
[ -f "$script" ] || die "--script FILE is required and must be a file"
[ "$(id -u)" -eq 0 ] || die "needs root"

image=${SKIFF_VM_IMAGE:-}
[ -n "$image" ] || image=$("$HERE/build-image.sh") || die "building the guest image failed"
for f in rootfs.img vmlinuz initrd.img; do
    [ -f "$image/$f" ] || die "$image/$f missing"
done

touch "$image/last-used" 2>/dev/null || true
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/skiff-vm-run.XXXXXX")
qemu_pid="" tail_pid=""
cleanup() {
    [ -n "$qemu_pid" ] && kill -9 "$qemu_pid" 2>/dev/null
    [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 125' INT TERM

# The payload disk: in/, script, and room for out/.
stage=$tmp/stage
mkdir -p "$stage/in" "$stage/out"
cp -a "$payload/." "$stage/in/"
cp "$script" "$stage/script"
chmod 755 "$stage/script"
size_mb=$(($(du -sm "$stage" | cut -f1) * 12 / 10 + 1024))
truncate -s "${size_mb}M" "$tmp/payload.img"
mkfs.ext4 -q -F -L skiff-payload -d "$stage" "$tmp/payload.img"
rm -rf "$stage"
qemu-img create -q -f qcow2 -b "$image/rootfs.img" -F raw "$tmp/root.qcow2"

mkdir -p "$out"
# A reused --out must not show an earlier run's status.
rm -f "$out/exit-status" "$out/script.log" "$out/guest-info"
console=$out/console.log
: >"$console"
start=$(date +%s)
# KVM on this machine kind runs only PVM guests: TCG. tb-size keeps qemu's
# translation cache (and so its RSS) small.
timeout --kill-after=15 "$timeout" qemu-system-x86_64 \
    -accel tcg,thread=multi,tb-size=256 -cpu max -smp 2 -m "$mem" \
    -display none -monitor none -serial "file:$console" -no-reboot -nic none \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 quiet panic=-1 net.ifnames=0 mitigations=off" \
    -drive "file=$tmp/root.qcow2,if=virtio,format=qcow2,cache=unsafe" \
    -drive "file=$tmp/payload.img,if=virtio,format=raw" &
qemu_pid=$!
if [ -z "$quiet" ]; then
    tail -n +1 -f --pid="$qemu_pid" "$console" &
    tail_pid=$!
fi
qemu_status=0
wait "$qemu_pid" || qemu_status=$?
qemu_pid=""
if [ -n "$tail_pid" ]; then
    wait "$tail_pid" 2>/dev/null || true
    tail_pid=""
fi
elapsed=$(($(date +%s) - start))

# Results back without mounting anything on the host.
debugfs -R "rdump /out $tmp" "$tmp/payload.img" >/dev/null 2>&1 || true
if [ -d "$tmp/out" ]; then
    cp -a "$tmp/out/." "$out/"
fi
echo "vm/run.sh: guest ran ${elapsed} s (qemu exit $qemu_status); results in $out" >&2
if [ "$qemu_status" -eq 124 ] || [ "$qemu_status" -eq 137 ]; then
    echo "vm/run.sh: timeout: the guest did not finish within ${timeout} s and was killed" >&2
    exit 124
fi
[ -f "$out/exit-status" ] || die "the guest gave no exit status (qemu exit $qemu_status); see $console"
exit "$(cat "$out/exit-status")"
