#!/usr/bin/env bash
# A virtual environment of pinned PyPI packages for tests or benchmarks,
# made with the CPython the build embeds, so the daemon can import what is
# in it (--python-path). Kept outside the tree, one per Python and
# requirements file, and made again only when either changes. Sourced by
# ./test.sh and bench/run.sh.
#
#   ei_py_env tests/requirements.txt   # prints the environment's site-packages
#   ei_py_env tests/requirements.txt /path/to/python3.12   # for that Python
set -euo pipefail

# The CPython that Bazel's @local_python found (bazel/python.bzl).
ei_build_python() {
  bazel build --noshow_progress @local_python//:build_info >/dev/null 2>&1 || true
  local info
  info="$(bazel info output_base 2>/dev/null)/external/local_python/python_build_info.h"
  if [ ! -f "$info" ]; then
    echo "error: cannot find the CPython the build uses ($info is missing)" >&2
    return 1
  fi
  sed -n 's/^#define EI_PYTHON_EXECUTABLE "\(.*\)"$/\1/p' "$info"
}

ei_py_env() {
  local requirements=$1 python=${2:-} version key dir
  [ -n "$python" ] || python=$(ei_build_python)
  version=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
  key=$( (echo "$python"; cat "$requirements") | sha256sum | cut -c1-16)
  dir="${EI_PY_ENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/extrainterpreters/py-env}/$version-$key"
  if [ ! -f "$dir/.complete" ]; then
    echo "Installing $(grep -cvE '^\s*(#|$)' "$requirements") pinned packages from $requirements for Python $version into $dir..." >&2
    rm -rf "$dir"
    "$python" -m venv "$dir" >&2
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
      --only-binary=:all: -r "$requirements" >&2
    touch "$dir/.complete"
  fi
  "$dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}
