#!/bin/sh
# Install the Debian packages skiff needs to build, test and benchmark.
# Idempotent: packages already installed are left alone, and apt is not
# touched at all (no root needed) when nothing is missing.
set -eu

# libseccomp-dev, pkg-config: the libseccomp crate links against libseccomp.
# gcc, libc6-dev: rustc needs a linker (cc) and crt files.
# busybox-static: the rootfs of every test and demo bundle (must be static,
#   since bundles contain no shared libraries).
# runc, crun: differential tests and benchmarks compare against them.
# hyperfine, time (GNU time, for peak RSS), strace: scripts/bench.sh, debugging.
# debootstrap: scripts/bench/chroot.sh (Debian 13's crun for the benchmark).
# python3: mkbundle.sh and bench.sh use it for JSON.
# protobuf-compiler: the k8s-cri dev-dependency (the CRI tests' client)
#   compiles Kubernetes' CRI protobuf definitions with protoc.
# uidmap: newuidmap/newgidmap, which rootless containers with more than one
#   id mapped need (integration/rootless.rs).
# criu: checkpoint/restore (integration/checkpoint.rs; on a kernel its
#   version cannot handle, the test checks skiff's clear error instead).
PACKAGES="libseccomp-dev pkg-config gcc libc6-dev busybox-static runc crun hyperfine time strace debootstrap python3 protobuf-compiler uidmap criu"

missing=""
for pkg in $PACKAGES; do
    # `dpkg -s` also succeeds for removed-but-not-purged packages, so check the status line.
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing="$missing $pkg"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
else
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: missing packages:$missing (run as root to install them)" >&2
        exit 1
    fi
    echo "install-deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes
    apt-get update -qq
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The Rust toolchain comes from rustup, not apt (Debian's rustc is too old for our deps).
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
    echo "install-deps: warning: cargo not found; install Rust with rustup" >&2
fi
