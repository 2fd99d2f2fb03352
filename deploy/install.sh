#!/usr/bin/env bash
# Installs extrainterpreters as a systemd service on a Debian machine: the
# binaries, the Python client, the system user and group, the units, a
# default config, and enables the socket. Idempotent: run it again after a
# rebuild. Details and every setting: docs/operations.md.
#
#   sudo deploy/install.sh [--prefix /usr/local] [--no-enable] [--no-pip]
set -euo pipefail

prefix=/usr/local
enable=yes
pip=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --no-enable) enable=no; shift ;;
    --no-pip) pip=no; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
unit_dir=/etc/systemd/system
user_unit_dir=/etc/systemd/user
config=/etc/extrainterpreters/config.json
say() { echo "install.sh: $*"; }

if [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo $0): it writes to $prefix, /etc and creates a system user" >&2
  exit 1
fi

build_binaries() {
  local bin=$repo/bazel-bin/daemon ctl_bin=$repo/bazel-bin/cli
  if [ ! -x "$bin/extrainterpretersd" ] || [ ! -x "$ctl_bin/extrainterpretersctl" ]; then
    say "building the daemon and the CLI with Bazel"
    (cd "$repo" && source bazel/install_deps.sh && ei_install_deps &&
       bazel build --noshow_progress //daemon:extrainterpretersd //cli:extrainterpretersctl)
  fi
  install -D -m 0755 "$bin/extrainterpretersd" "$prefix/bin/extrainterpretersd"
  install -D -m 0755 "$ctl_bin/extrainterpretersctl" "$prefix/bin/extrainterpretersctl"
  say "installed $prefix/bin/extrainterpretersd and $prefix/bin/extrainterpretersctl"
}

# The directory libpython is loaded from, as the dynamic loader finds it for
# the daemon (ldd is in libc-bin, on every Debian; readelf, from binutils,
# often is not). Falls back to the RUNPATH the build wrote.
python_libdir() {
  local bin=$prefix/bin/extrainterpretersd lib
  lib=$(ldd "$bin" 2>/dev/null | awk '$1 ~ /^libpython/ && $3 ~ /^\// {print $3; exit}') || true
  if [ -n "$lib" ]; then
    dirname "$lib"
    return
  fi
  say "warning: the daemon's libpython is not found here (ldd $bin); it will not start"
  if command -v readelf >/dev/null; then
    readelf -d "$bin" | sed -n 's/.*R\(UN\)\?PATH.*\[\(.*\)\]/\2/p' | cut -d: -f1
  fi
}

# The daemon embeds the CPython it was built against (its RUNPATH names
# it). If that lives under /root or /home, the service's user cannot read it
# and ProtectHome= hides it: bind it into the service read-only instead.
python_home_dropin() {
  local libdir home dropin=$unit_dir/extrainterpreters.service.d/python-home.conf
  libdir=$(python_libdir)
  home=$(dirname "${libdir:-/usr/lib}")
  case "$home" in
    /root/*|/home/*)
      say "warning: the daemon embeds Python from $home, inside a home directory;"
      say "         the service gets it bind-mounted read-only ($dropin)."
      say "         Better: build against a Python under /usr or /opt."
      install -d -m 0755 "$(dirname "$dropin")"
      printf '%s\n' "# Written by deploy/install.sh: the embedded Python lives in a home directory." \
        "[Service]" "ProtectHome=tmpfs" "BindReadOnlyPaths=$home" > "$dropin"
      ;;
    *) rm -f "$dropin" ;;
  esac
}

install_client() {
  [ "$pip" = yes ] || { say "skipping the Python client (--no-pip)"; return; }
  local py
  # The system's Python, not one a user's PATH (pyenv, venv) puts first.
  py=/usr/bin/python3
  [ -x "$py" ] || py=$(command -v python3 || true)
  if [ -z "$py" ] || ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    say "not installing the Python client: it needs Python >= 3.11 and the system python3"
    say "is ${py:+$("$py" --version 2>&1)}${py:-missing}. Install it into your own"
    say "interpreter: python3 -m pip install $repo/client/python"
    return
  fi
  "$py" -m pip install --quiet --break-system-packages --no-deps --no-build-isolation \
    "$repo/client/python" && say "installed the Python client into $py"
}

make_user() {
  install -D -m 0644 "$repo/deploy/sysusers.d/extrainterpreters.conf" \
    /usr/lib/sysusers.d/extrainterpreters.conf
  install -D -m 0644 "$repo/deploy/tmpfiles.d/extrainterpreters.conf" \
    /usr/lib/tmpfiles.d/extrainterpreters.conf
  if command -v systemd-sysusers >/dev/null &&
     systemd-sysusers /usr/lib/sysusers.d/extrainterpreters.conf 2>/dev/null; then
    :
  else
    getent group extrainterpreters >/dev/null || groupadd --system extrainterpreters
    getent passwd extrainterpreters >/dev/null ||
      useradd --system --gid extrainterpreters --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "extrainterpreters daemon" extrainterpreters
  fi
  say "system user and group: $(id extrainterpreters)"
}

install_units() {
  local unit
  for unit in extrainterpreters.service extrainterpreters.socket; do
    sed "s|/usr/local/bin/|$prefix/bin/|g" "$repo/deploy/$unit" > "$unit_dir/$unit.new"
    mv "$unit_dir/$unit.new" "$unit_dir/$unit"
    sed "s|/usr/local/bin/|$prefix/bin/|g" "$repo/deploy/user/$unit" > "$user_unit_dir/$unit.new"
    mv "$user_unit_dir/$unit.new" "$user_unit_dir/$unit"
  done
  chmod 0644 "$unit_dir"/extrainterpreters.{service,socket} \
    "$user_unit_dir"/extrainterpreters.{service,socket}
  if [ ! -e "$config" ]; then
    install -d -m 0755 "$(dirname "$config")"
    printf '{\n  "allow_groups": ["extrainterpreters"]\n}\n' > "$config"
    say "wrote $config (members of group extrainterpreters may connect)"
  else
    say "kept the existing $config"
  fi
  say "installed the units in $unit_dir and $user_unit_dir"
}

enable_socket() {
  if [ "$(cat /proc/1/comm 2>/dev/null)" != systemd ]; then
    say "systemd is not PID 1 here (PID 1 is $(cat /proc/1/comm 2>/dev/null || echo unknown)):"
    say "the files are installed, but nothing was enabled or started. On a systemd machine:"
    say "  systemctl daemon-reload && systemctl enable --now extrainterpreters.socket"
    return
  fi
  systemd-tmpfiles --create /usr/lib/tmpfiles.d/extrainterpreters.conf
  systemctl daemon-reload
  if [ "$enable" = yes ]; then
    systemctl enable --now extrainterpreters.socket
    # A running daemon keeps the old binary until it restarts.
    systemctl try-restart extrainterpreters.service
    say "enabled extrainterpreters.socket; the daemon starts on the first connection"
  fi
}

build_binaries
python_home_dropin
install_client
make_user
install_units
enable_socket
say "done. Add users to the group: usermod -aG extrainterpreters NAME (then log in again);"
say "they reach the daemon with EXTRAINTERPRETERS_SOCKET=/run/extrainterpreters/ei.sock"
