#!/bin/sh
# A private containerd for tests: everything (config, root, state, sockets,
# log, pid) under DIR, nothing under /var/lib/containerd or /run/containerd
# except the shims' sockets, which containerd 1.6 always puts in
# /run/containerd/s (they go when the shims exit).
#   containerd.sh start DIR    start it and wait until it answers
#   containerd.sh stop DIR     stop it (and its shims) and wait
# A DIR/config.toml written beforehand (the CRI test's) is used as it is.
# With CONTAINERD_NETNS=FILE, containerd runs in the network namespace bound
# at FILE (nsenter --net, which unlike `ip netns exec` keeps this /sys).
set -eu
cmd=$1
dir=$2
sock=$dir/containerd.sock
case $cmd in
start)
    mkdir -p "$dir/root" "$dir/state" "$dir/fifo"
    [ -f "$dir/config.toml" ] || cat >"$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = "$dir/debug.sock"
[metrics]
  address = ""
TOML
    # nsenter execs containerd: the pid is containerd's. Without a namespace
    # to enter, plain containerd (util-linux 2.41's nsenter refuses to run
    # with none).
    if [ -n "${CONTAINERD_NETNS:-}" ]; then
        nsenter --net="$CONTAINERD_NETNS" -- containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
    else
        containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
    fi
    echo $! >"$dir/containerd.pid"
    i=0
    until ctr --address "$sock" version >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 300 ] || ! kill -0 "$(cat "$dir/containerd.pid")" 2>/dev/null; then
            echo "containerd did not start; log:" >&2
            tail -20 "$dir/containerd.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    ;;
stop)
    [ -f "$dir/containerd.pid" ] || exit 0
    pid=$(cat "$dir/containerd.pid")
    kill "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 100 ] && kill -9 "$pid" 2>/dev/null
        sleep 0.1
    done
    rm -f "$dir/containerd.pid"
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
