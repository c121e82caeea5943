#!/bin/sh
# Install the Debian packages named on the command line unless they are
# already installed. Exit status 0 when all are present afterwards; 2 when they
# cannot be installed (not root, no apt, no repository): engine tests then skip.
set -u
missing=""
for pkg in "$@"; do
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing="$missing $pkg"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-packages: cannot install$missing (need root and apt-get)" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes
# Several engine tests may call this at once: apt's own lock serialises them.
lock=/var/lib/dpkg/lock-frontend
echo "ensure-packages: installing$missing" >&2
apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null 2>&1 || true
# shellcheck disable=SC2086 # word splitting of the package list is intended
if ! apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null; then
    echo "ensure-packages: apt-get install$missing failed ($lock)" >&2
    exit 2
fi
exit 0
