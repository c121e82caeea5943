#!/bin/sh
# A private dockerd for tests, with skiff registered as runtime "skiff" and
# made the default one:
# data root, exec root (and the containerd it starts), socket, pid file, log
# and daemon.json all under DIR; no bridge and no iptables, so it touches
# neither the host's network nor its firewall.
#   dockerd.sh start DIR SKIFF    start it and wait until it answers
#   dockerd.sh stop DIR           stop it (its containerd and shims go too)
set -eu
cmd=$1
dir=$2
case $cmd in
start)
    skiff=$3
    mkdir -p "$dir/data" "$dir/exec"
    echo '{}' >"$dir/daemon.json"
    dockerd --config-file "$dir/daemon.json" \
        --data-root "$dir/data" --exec-root "$dir/exec" \
        -H "unix://$dir/docker.sock" --pidfile "$dir/docker.pid" \
        --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
        --userland-proxy=false --storage-driver=overlay2 \
        --add-runtime "skiff=$skiff" --default-runtime skiff ${EXTRA_RUNTIMES:-} >"$dir/dockerd.log" 2>&1 &
    echo $! >"$dir/dockerd.wrapper.pid"
    i=0
    until /usr/bin/docker -H "unix://$dir/docker.sock" version >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 600 ] || ! kill -0 "$(cat "$dir/dockerd.wrapper.pid")" 2>/dev/null; then
            echo "dockerd did not start; log:" >&2
            tail -20 "$dir/dockerd.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    ;;
stop)
    [ -f "$dir/dockerd.wrapper.pid" ] || exit 0
    pid=$(cat "$dir/dockerd.wrapper.pid")
    kill "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 300 ] && kill -9 "$pid" 2>/dev/null
        sleep 0.1
    done
    rm -f "$dir/dockerd.wrapper.pid"
    ;;
*)
    echo "usage: $0 start DIR SKIFF | stop DIR" >&2
    exit 2
    ;;
esac
