#!/usr/bin/env bash
# The 64 x 3,000 burst of bench/burst.py against a freshly built daemon with
# its default limits. Flags go to burst.py (--clients, --jobs, --workers,
# --json FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
source bazel/install_deps.sh
ei_install_deps
bazel build --noshow_progress //daemon:extrainterpretersd 2>&1 | grep -vE '^(INFO|Target|  bazel-bin)' || true
source bazel/py_env.sh
python=$(ei_build_python)
PYTHONPATH=client/python exec "$python" bench/burst.py \
  --daemon bazel-bin/daemon/extrainterpretersd "$@"
