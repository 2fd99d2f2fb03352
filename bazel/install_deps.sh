#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, if any is
# missing. Idempotent and quiet when everything is there. Sourced or run by
# ./run.sh and ./test.sh.
set -euo pipefail

EI_PACKAGES=(
  bazel-bootstrap    # Bazel 4.2, offline
  g++                # C++20 compiler
  libboost-dev       # Boost.Asio (header-only)
  nlohmann-json3-dev # JSON headers
  libgtest-dev       # GoogleTest
  clang-14           # the frame decoder fuzz target (libFuzzer)
  libclang-rt-14-dev # libFuzzer and sanitizer runtimes for clang 14
  systemd            # systemd-analyze, systemd-socket-activate, systemd-sysusers (deploy tests)
  systemd-container  # systemd-nspawn: the service under a real systemd (systemd_nspawn_e2e_test)
  mmdebstrap         # the root file system that test boots (tests/nspawn/build_root.sh)
)

ei_missing_packages() {
  local pkg
  for pkg in "${EI_PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
      echo "$pkg"
    fi
  done
}

ei_install_deps() {
  local missing
  missing=$(ei_missing_packages)
  [ -z "$missing" ] && return 0
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then
      sudo=(sudo)
    else
      echo "error: these packages are missing and installing them needs root: $(echo $missing)" >&2
      echo "       run: apt-get install -y $(echo $missing)" >&2
      return 1
    fi
  fi
  echo "Installing missing packages: $(echo $missing)"
  "${sudo[@]}" apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ei_install_deps
fi
