#!/bin/bash
# Build (once) and print the path of a minimal Debian 13 (trixie) chroot with
# Debian's crun, for comparing skiff with a newer crun than the host's.
#
#   scripts/bench/chroot.sh            prints the chroot's path on stdout
#
# The chroot is cached in /var/cache/skiff-bench/trixie-<hash of this recipe>
# (BENCH_CACHE overrides the parent directory), so only the first run pays
# debootstrap (about 1-2 minutes and 80 MB of downloads). MIRROR overrides the
# Debian mirror. Exits non-zero with a reason on stderr when it cannot build.
set -euo pipefail

suite=trixie
packages=crun,busybox-static
mirror=${MIRROR:-http://deb.debian.org/debian}
cache=${BENCH_CACHE:-/var/cache/skiff-bench}

die() { echo "chroot.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
command -v debootstrap >/dev/null || die "debootstrap not installed (apt-get install debootstrap)"

# The recipe's hash names the cache entry: changing the suite, the packages,
# the mirror or this script builds a new chroot instead of reusing a stale one.
hash=$( { echo "$suite $packages $mirror"; cat "$0"; } | sha256sum | cut -c1-12)
dir=$cache/$suite-$hash
if [ -x "$dir/usr/bin/crun" ] && [ -d "$dir/bench" ]; then
    echo "$dir"
    exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
# Another bench may have built it while this one waited for the lock.
if [ -x "$dir/usr/bin/crun" ] && [ -d "$dir/bench" ]; then
    echo "$dir"
    exit 0
fi
tmp=$dir.tmp
rm -rf "$tmp"
echo "chroot.sh: building the $suite chroot in $dir (debootstrap, once)" >&2
if ! debootstrap --variant=minbase --include="$packages" "$suite" "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1; then
    tail -5 "$cache/debootstrap.log" >&2
    rm -rf "$tmp"
    die "debootstrap of $suite from $mirror failed (log: $cache/debootstrap.log)"
fi
[ -x "$tmp/usr/bin/crun" ] || { rm -rf "$tmp"; die "the chroot has no /usr/bin/crun"; }
# /bench is where the bench binds its work directory (skiff binary, bundles).
mkdir -p "$tmp/bench"
rm -rf "$tmp/var/cache/apt/archives"/*.deb
mv "$tmp" "$dir"
echo "$dir"
