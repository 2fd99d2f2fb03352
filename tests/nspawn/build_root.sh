#!/usr/bin/env bash
# Builds, once, the Debian root file system that //tests:systemd_nspawn_e2e_test
# boots with systemd-nspawn (systemd as PID 1), and prints its path.
#
#   tests/nspawn/build_root.sh        # about 1 minute the first time, then instant
#
# The root lives outside the tree, in $EI_NSPAWN_CACHE (default
# ~/.cache/extrainterpreters), named by a hash of everything that goes into it
# (the suite, the package list, the apt sources, this script), so a change to
# any of them builds a new one. It is built into a temporary directory and
# renamed when complete: a folder with the final name is always a whole root.
# Concurrent callers wait on a lock. Tests never write to it: they boot it with
# --volatile=overlay.
#
# Needs root, mmdebstrap and Debian's archive (bazel/install_deps.sh installs
# mmdebstrap and systemd-container).
set -euo pipefail

suite=bookworm
# minbase has no Python; install.sh puts the client into /usr/bin/python3.
packages=(systemd systemd-sysv dbus python3 python3-pip)
# The machine's own apt sources when it has them (same archive, same snapshot).
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=

cache=${EI_NSPAWN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/extrainterpreters}
key=$( { echo "$suite"; printf '%s\n' "${packages[@]}";
         [ -z "$sources" ] || cat "$sources"; cat "$0"; } | sha256sum | cut -c1-12)
root=$cache/nspawn-root-$suite-$key

if [ -d "$root" ]; then
  echo "$root"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "build_root.sh: building the container's root needs root (it runs mmdebstrap as root)" >&2
  exit 1
fi
if ! command -v mmdebstrap >/dev/null; then
  echo "build_root.sh: mmdebstrap is missing: apt-get install mmdebstrap (bazel/install_deps.sh does)" >&2
  exit 1
fi

mkdir -p "$cache"
exec 9>"$cache/nspawn-root.lock"
flock 9
if [ -d "$root" ]; then  # another caller built it while we waited
  echo "$root"
  exit 0
fi
rm -rf "$root".partial-*  # left by an interrupted build
partial=$(mktemp -d "$root.partial-XXXXXX")
trap 'rm -rf "$partial"' EXIT

echo "build_root.sh: building $root (Debian $suite, minbase + ${packages[*]})" >&2
# Masked: units that wait for a network or a terminal the test never gives,
# and the first-boot wizard (it fails without one, leaving the boot degraded).
mmdebstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='chroot "$1" systemctl mask console-getty.service systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer systemd-networkd-wait-online.service 2>/dev/null' \
  --customize-hook='rm -f "$1"/etc/machine-id "$1"/etc/hostname' \
  --quiet "$suite" "$partial" ${sources:+"$sources"} >&2
mv -T "$partial" "$root"
trap - EXIT
# Roots made by older versions of this script or package list.
for old in "$cache"/nspawn-root-*; do
  case "$old" in "$root"|*.partial-*) ;; *) rm -rf "$old" ;; esac
done
echo "$root"
