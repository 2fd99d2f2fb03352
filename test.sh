#!/usr/bin/env bash
# Installs what is missing, then runs every test: the C++ unit tests and the
# end-to-end tests that start the real daemon. Failures print their output.
set -euo pipefail
cd "$(dirname "$0")"
source bazel/install_deps.sh
ei_install_deps

# Under CI, leave no Bazel server behind.
if [ -n "${CI:-}" ]; then
  trap 'bazel shutdown >/dev/null 2>&1 || true' EXIT
fi

# The daemon's layering (daemon/README.md) is a property of the build graph.
bazel/check_layering.sh

log=$(mktemp)
status=0
bazel test //... --test_summary=short "$@" 2>&1 | tee "$log" || status=$?
passed=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log" || true)
failed=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FLAKY|INCOMPLETE)' "$log" || true)
rm -f "$log"
echo
echo "test targets: ${passed} passed, ${failed} failed"

# The Python tests again for each other installed CPython >= 3.12, the
# daemon built against it (EI_PYTHON_MATRIX=0 skips this).
bazel/python_matrix.sh "$@" || status=$?
exit "$status"
