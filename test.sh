#!/usr/bin/env bash
# Installs what is missing, then runs every test: the C++ unit tests and the
# end-to-end tests that start the real daemon. Failures print their output.
set -euo pipefail
cd "$(dirname "$0")"
source bazel/install_deps.sh
ei_install_deps

# The Debian root that //tests:systemd_nspawn_e2e_test boots is built once
# and cached (tests/nspawn/build_root.sh); a first build (about a minute)
# runs while Bazel compiles, and the test waits for it on a lock.
root_build=
if [ "$(id -u)" = 0 ]; then
  setsid tests/nspawn/build_root.sh >/dev/null &
  root_build=$!
fi

# Under CI, leave no Bazel server behind; never leave the root build.
on_exit() {
  [ -z "$root_build" ] || kill -- -"$root_build" 2>/dev/null || true
  if [ -n "${CI:-}" ]; then
    bazel shutdown >/dev/null 2>&1 || true
  fi
}
trap on_exit EXIT

# The daemon's layering (daemon/README.md) is a property of the build graph.
bazel/check_layering.sh

# Test-only packages (numpy, pandas) for the process lane's tests.
source bazel/py_env.sh
site_packages=$(ei_py_env tests/requirements.txt)

# Compiled objects are shared through a disk cache outside the tree, so a
# fresh clone (CI) or the Python matrix's other output base reuses what an
# earlier build compiled; test results are never taken from it under CI.
source bazel/disk_cache.sh
log=$(mktemp)
status=0
bazel test //... --test_summary=short --test_env=EI_TEST_SITE_PACKAGES="$site_packages" \
  "${EI_BAZEL_CACHE_FLAGS[@]}" "$@" 2>&1 | tee "$log" || status=$?
passed=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log" || true)
failed=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FLAKY|INCOMPLETE)' "$log" || true)
rm -f "$log"
echo
echo "test targets: ${passed} passed, ${failed} failed"

# The Python tests again for each other installed CPython >= 3.12, the
# daemon built against it (EI_PYTHON_MATRIX=0 skips this).
bazel/python_matrix.sh "$@" || status=$?
exit "$status"
