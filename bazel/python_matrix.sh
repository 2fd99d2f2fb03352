#!/usr/bin/env bash
# Runs the Python tests (//tests/...: the client's unit tests and the
# end-to-end suite through the real daemon) once more for each other
# installed CPython >= 3.12, the daemon built against it. ./test.sh calls
# this after its main run, which used the CPython the build picked by itself
# (bazel/python.bzl: the newest); this finds the others the same way
# (python3.12 and later on PATH and under pyenv; each must run, have its
# headers and a shared libpython).
#
# Each Python gets its own Bazel output base under ~/.cache, so neither the
# repository rule that finds Python nor the build thrashes the main one.
# Arguments go to each `bazel test`. EI_PYTHON_MATRIX=0 skips it all.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${EI_PYTHON_MATRIX:-1}" = 0 ]; then
  echo "python matrix: skipped (EI_PYTHON_MATRIX=0)"
  exit 0
fi

# Prints "<version> <realpath of the executable>" if the candidate suits.
probe() {
  "$1" -I -c '
import os, sys, sysconfig
v = sysconfig.get_config_var
lib = os.path.join(v("LIBDIR") or "", v("LDLIBRARY") or "")
ok = (sys.version_info >= (3, 12) and bool(v("Py_ENABLE_SHARED"))
      and os.path.exists(lib) and os.path.exists(
          os.path.join(sysconfig.get_paths()["include"], "Python.h")))
if ok:
    print("%d.%d.%d" % sys.version_info[:3], os.path.realpath(sys.executable))
' 2>/dev/null || true
}

candidates() {
  local name dir
  for name in python3.14 python3.13 python3.12; do
    command -v "$name" || true
  done
  for dir in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin; do
    for name in python3.14 python3.13 python3.12; do
      [ -x "$dir/$name" ] && echo "$dir/$name"
    done
  done
  return 0
}

# The CPython the main run built against, as the repository rule wrote it.
main_python=$(sed -n 's/^#define EI_PYTHON_EXECUTABLE "\(.*\)"$/\1/p' \
  "$(bazel info output_base 2>/dev/null)/external/local_python/python_build_info.h" \
  2>/dev/null || true)
main_python=$(realpath -e "$main_python" 2>/dev/null || echo "$main_python")

declare -A seen=()
others=()
while read -r candidate; do
  read -r version executable < <(probe "$candidate") || continue
  [ -n "${executable:-}" ] || continue
  [ -z "${seen[$executable]:-}" ] || continue
  seen[$executable]=1
  [ "$executable" = "$main_python" ] && continue
  others+=("$version $executable")
done < <(candidates)

echo
if [ "${#others[@]}" -eq 0 ]; then
  echo "python matrix: no other CPython >= 3.12 is installed; ${main_python:-the main one} was tested"
  exit 0
fi

source bazel/py_env.sh
source bazel/disk_cache.sh
workspace=$(printf %s "$PWD" | md5sum | cut -c1-12)
status=0
summary=()
for entry in "${others[@]}"; do
  version=${entry%% *}
  executable=${entry#* }
  base="${XDG_CACHE_HOME:-$HOME/.cache}/extrainterpreters/matrix/${workspace}-${version}"
  echo "python matrix: //tests/... with the daemon built against CPython ${version} (${executable})"
  # The test-only packages (numpy, pandas), built for this Python.
  site_packages=$(ei_py_env tests/requirements.txt "$executable")
  log=$(mktemp)
  result=0
  EXTRAINTERPRETERS_PYTHON="$executable" bazel --output_base="$base" \
    test //tests/... --test_summary=short \
    --test_env=EI_TEST_SITE_PACKAGES="$site_packages" "${EI_BAZEL_CACHE_FLAGS[@]}" "$@" \
    2>&1 | tee "$log" || result=$?
  passed=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log" || true)
  failed=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FLAKY|INCOMPLETE)' "$log" || true)
  rm -f "$log"
  if [ -n "${CI:-}" ]; then
    bazel --output_base="$base" shutdown >/dev/null 2>&1 || true
  fi
  summary+=("CPython ${version}: ${passed} passed, ${failed} failed")
  [ "$result" -eq 0 ] || status=$result
done
echo
for line in "${summary[@]}"; do
  echo "python matrix: $line"
done
exit "$status"
