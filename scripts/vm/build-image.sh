#!/bin/sh
# Build (once per machine) the guest image of skiff's VM test lane: Debian 13
# (trixie) with systemd as PID 1, unified cgroup v2, Debian's kernel and the
# container engines the integration tests drive.
#
#   scripts/vm/build-image.sh            print the image's directory, building it if needed
#
# The image lives in $SKIFF_VM_CACHE (default /var/cache/skiff-vm)/<hash>/, the
# hash being that of the recipe (this script and scripts/vm/guest/*), so a
# changed recipe builds a new image and an unchanged one is reused. The
# directory holds rootfs.img (raw ext4, root=/dev/vda), vmlinuz and initrd.img.
# It is built in a temporary directory beside it and renamed into place only
# when complete, so an interrupted build is never reused.
#
# Needs root (debootstrap, chroot) and Debian's archive (the mirror the host's
# apt uses, or $SKIFF_VM_MIRROR). Installs on the host, if missing:
# qemu-system-x86 from bookworm-backports (bookworm's own 7.2 would replace the
# machine's qemu-utils 10.0), debootstrap and e2fsprogs.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${SKIFF_VM_CACHE:-/var/cache/skiff-vm}
SUITE=trixie

# The guest's packages. linux-image-amd64 + initramfs-tools: the cloud kernel
# has no 9p and virtio only as modules; Debian's initramfs loads virtio_blk.
# The rest is what the integration tests run or compare against.
GUEST_PACKAGES="systemd systemd-sysv dbus dbus-user-session libpam-systemd linux-image-amd64 initramfs-tools
 busybox-static runc crun containerd docker.io docker-cli podman criu iptables uidmap
 containernetworking-plugins iproute2 python3 procps util-linux kmod e2fsprogs
 ca-certificates catatonit conmon fuse-overlayfs slirp4netns passt netavark aardvark-dns
 strace"

log() { echo "build-image: $*" >&2; }

recipe_hash() {
    cat "$HERE/build-image.sh" "$HERE"/guest/* | sha256sum | cut -c1-16
}

# The Debian mirror the host's apt uses (deb822 or one-line sources), not the security one.
host_mirror() {
    if [ -n "${SKIFF_VM_MIRROR:-}" ]; then
        echo "$SKIFF_VM_MIRROR"
        return
    fi
    {
        sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
        sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
    } | grep -E '/debian/?$' | grep -v security | head -n1
}

pkg_installed() {
    dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# qemu-system-x86 10.0 from bookworm-backports: it matches the preinstalled
# qemu-utils 10.0 (bookworm's 7.2 conflicts with it and would remove it).
ensure_host_packages() {
    export DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes
    missing=""
    for p in debootstrap e2fsprogs qemu-utils; do
        pkg_installed "$p" || missing="$missing $p"
    done
    need_qemu=
    pkg_installed qemu-system-x86 || need_qemu=1
    [ -z "$missing" ] && [ -z "$need_qemu" ] && return 0
    mirror=$(host_mirror)
    [ -n "$mirror" ] || { log "no Debian mirror in the host's apt sources (set SKIFF_VM_MIRROR)"; exit 1; }
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    if [ -n "$need_qemu" ] && [ "$codename" = bookworm ]; then
        src=/etc/apt/sources.list.d/skiff-vm-backports.sources
        if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
            log "adding bookworm-backports ($mirror) to apt for qemu-system-x86"
            printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
                "$mirror" >"$src"
        fi
    fi
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    if [ -n "$need_qemu" ]; then
        target=""
        [ "$codename" = bookworm ] && target="-t bookworm-backports"
        log "installing qemu-system-x86 $target"
        # shellcheck disable=SC2086 # $target is empty or two words
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $target qemu-system-x86 >/dev/null
    fi
    if [ -n "$missing" ]; then
        log "installing$missing"
        # shellcheck disable=SC2086
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
    fi
}

# Runs inside a private mount namespace: debootstrap's and our proc/sys
# mounts in the chroot vanish with it, whatever happens.
build_rootfs() {
    work=$1
    mirror=$2
    root=$work/rootfs
    log "debootstrap $SUITE from $mirror"
    debootstrap --variant=minbase --components=main --include=apt-utils "$SUITE" "$root" "$mirror" \
        >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" "$SUITE" "$SUITE" >"$root/etc/apt/sources.list.d/debian.sources"
    rm -f "$root/etc/apt/sources.list"
    # No service starts inside the chroot while packages install.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
    mountpoint -q "$root/sys" || mount -t sysfs sysfs "$root/sys"
    # A small initramfs (the default "most" is 37 MB): under TCG every
    # megabyte to unpack costs boot time. The guest's disks are virtio.
    mkdir -p "$root/etc/initramfs-tools/conf.d"
    echo MODULES=list >"$root/etc/initramfs-tools/conf.d/skiff-vm.conf"
    printf 'virtio_pci\nvirtio_blk\next4\n' >>"$root/etc/initramfs-tools/modules"
    log "installing guest packages (several minutes)"
    # shellcheck disable=SC2086 # the package list is meant to split
    chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes \
        sh -c "apt-get update -qq && apt-get install -y -qq -o Dpkg::Options::=--force-confold --no-install-recommends $(echo $GUEST_PACKAGES)" \
        >"$work/apt.log" 2>&1 || { tail -40 "$work/apt.log" >&2; exit 1; }
    configure_guest "$root"
    umount "$root/sys" "$root/proc"
    rm -f "$root/usr/sbin/policy-rc.d"
    chroot "$root" apt-get clean
    rm -rf "$root/var/lib/apt/lists"/* "$root/var/log"/*.log "$root/var/cache/debconf"/*-old
}

configure_guest() {
    root=$1
    echo skiff-vm >"$root/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 skiff-vm\n' >"$root/etc/hosts"
    printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
    # Root without a password on the serial console, for debugging a guest by hand.
    chroot "$root" passwd -d root >/dev/null
    install -m 755 "$HERE/guest/skiff-vm-runner" "$root/usr/local/sbin/skiff-vm-runner"
    install -m 644 "$HERE/guest/skiff-vm-payload.service" "$root/etc/systemd/system/skiff-vm-payload.service"
    chroot "$root" systemctl enable skiff-vm-payload.service >/dev/null 2>&1
    # The tests start dockerd and containerd themselves, with private state;
    # timers and first-boot jobs only slow a TCG guest down.
    for unit in docker.service docker.socket containerd.service apt-daily.timer \
        apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
        dpkg-db-backup.timer podman-auto-update.timer podman-restart.service \
        podman-clean-transient.service systemd-timesyncd.service; do
        chroot "$root" systemctl disable "$unit" >/dev/null 2>&1 || true
        chroot "$root" systemctl mask "$unit" >/dev/null 2>&1 || true
    done
    # docker.service is masked, but the daemon itself must still be startable by hand.
    chroot "$root" systemctl unmask docker.service containerd.service >/dev/null 2>&1 || true
    chroot "$root" systemctl disable docker.service containerd.service docker.socket >/dev/null 2>&1 || true
    # No network in the guest: don't wait for it.
    chroot "$root" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true
    # Journald to memory only (the root disk is a throwaway overlay anyway).
    # Nothing to do at first boot, and no login prompt writing escape codes
    # into the console log (root can still log in: mount the overlay by hand).
    for unit in serial-getty@.service getty@.service ldconfig.service systemd-binfmt.service \
        systemd-firstboot.service systemd-update-done.service man-db.timer; do
        chroot "$root" systemctl mask "$unit" >/dev/null 2>&1 || true
    done
    tr -dc 0-9a-f </dev/urandom | head -c 32 >"$root/etc/machine-id"
    echo >>"$root/etc/machine-id"
    mkdir -p "$root/etc/systemd/journald.conf.d"
    printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=64M\n' >"$root/etc/systemd/journald.conf.d/skiff-vm.conf"
}

extract_kernel() {
    work=$1
    kernel=$(ls "$work"/rootfs/boot/vmlinuz-* | sort -V | tail -n1)
    initrd=$(ls "$work"/rootfs/boot/initrd.img-* | sort -V | tail -n1)
    cp "$kernel" "$work/vmlinuz"
    cp "$initrd" "$work/initrd.img"
    basename "$kernel" | sed 's/^vmlinuz-//' >"$work/kernel-version"
}

make_image() {
    work=$1
    # Sparse: 8 GiB of room for container images, about 1.5 GiB used.
    truncate -s 8G "$work/rootfs.img"
    mkfs.ext4 -q -F -L skiff-vm-root -d "$work/rootfs" "$work/rootfs.img"
    rm -rf "$work/rootfs"
}

# Images of older recipes, unused (run.sh touches last-used) for two days.
prune_old_images() {
    for old in "$CACHE"/*/; do
        old=${old%/}
        [ "$(basename "$old")" = "$1" ] && continue
        [ -f "$old/ready" ] || continue
        stamp=$old/last-used
        [ -f "$stamp" ] || stamp=$old/ready
        if [ -n "$(find "$stamp" -mmin +2880)" ]; then
            log "removing the unused image $old"
            rm -rf "$old"
        fi
    done
}

main() {
    if [ "${1:-}" = --in-namespace ]; then
        build_rootfs "$2" "$3"
        exit 0
    fi
    [ "$(id -u)" -eq 0 ] || { log "needs root"; exit 1; }
    hash=$(recipe_hash)
    dir=$CACHE/$hash
    if [ -f "$dir/ready" ]; then
        ensure_host_packages
        echo "$dir"
        return 0
    fi
    ensure_host_packages
    mkdir -p "$CACHE"
    mirror=$(host_mirror)
    [ -n "$mirror" ] || { log "no Debian mirror in the host's apt sources (set SKIFF_VM_MIRROR)"; exit 1; }
    # Leftovers of interrupted builds (only ours: .build-* in the cache).
    for old in "$CACHE"/.build-*; do
        [ -d "$old" ] || continue
        pid=${old##*-}
        kill -0 "$pid" 2>/dev/null || rm -rf "$old"
    done
    work=$CACHE/.build-$hash-$$
    rm -rf "$work"
    mkdir -p "$work"
    start=$(date +%s)
    unshare --mount --propagation private "$HERE/build-image.sh" --in-namespace "$work" "$mirror"
    extract_kernel "$work"
    make_image "$work"
    end=$(date +%s)
    printf 'suite=%s\nmirror=%s\nkernel=%s\nbuilt=%s\nbuild_seconds=%s\n' "$SUITE" "$mirror" \
        "$(cat "$work/kernel-version")" "$(date -u +%FT%TZ)" "$((end - start))" >"$work/ready"
    log "built in $((end - start)) s"
    # Another build of the same recipe may have won the race: keep theirs.
    if ! mv -T "$work" "$dir" 2>/dev/null; then
        rm -rf "$work"
    fi
    prune_old_images "$hash"
    echo "$dir"
}

main "$@"
