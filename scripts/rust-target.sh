#!/bin/sh
# Prints the Rust target skiff is built for, adding it with rustup if needed.
#
# skiff is built for musl: a static musl binary starts without probing the
# CPU, while glibc (static or not) runs some 35 cpuid instructions in every
# process start to size its caches; in a VM each cpuid traps to the hypervisor
# (14.6 us each on the bench host), so glibc costs about 0.5 ms of CPU per
# process, and `skiff run` starts two (the CLI and `skiff init`). Where rustup
# cannot add the musl target (no network), this falls back to glibc's static
# build, which behaves the same and starts slower (README, "Performance").
set -u
musl=x86_64-unknown-linux-musl
PATH=${HOME:-/root}/.cargo/bin:$PATH
if rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
    echo "$musl"
elif rustup target add "$musl" >/dev/null 2>&1; then
    echo "rust-target: added the $musl target with rustup" >&2
    echo "$musl"
else
    echo "rust-target: warning: rustup cannot add $musl; building for glibc (slower start, README \"Performance\")" >&2
    echo x86_64-unknown-linux-gnu
fi
