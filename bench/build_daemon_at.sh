#!/usr/bin/env bash
# Builds //daemon:extrainterpretersd as it was at a commit, for a before/after
# comparison, and prints the binary's path:
#
#   bench/run.sh --before-daemon "$(bench/build_daemon_at.sh 5f62a9d)"
#
# The commit's tree goes to /tmp/ei-daemon-<commit> (git archive: no
# worktree to clean up), is built there with its own Bazel server, which is
# then shut down; the binary is copied out and kept for the next run.
set -euo pipefail
rev=$(git -C "$(dirname "$0")/.." rev-parse --short "${1:?usage: build_daemon_at.sh COMMIT}")
out=/tmp/ei-daemon-$rev/extrainterpretersd
if [ -x "$out" ]; then
  echo "$out"
  exit 0
fi
src=/tmp/ei-daemon-$rev/src
rm -rf "$src"
mkdir -p "$src"
git -C "$(dirname "$0")/.." archive "$rev" | tar -x -C "$src"
echo "Building extrainterpretersd at $rev in $src..." >&2
status=0
(cd "$src" && bazel build --noshow_progress //daemon:extrainterpretersd >&2) || status=$?
if [ "$status" -eq 0 ]; then
  cp -L "$src/bazel-bin/daemon/extrainterpretersd" "$out"
fi
(cd "$src" && bazel shutdown >&2) || true
rm -rf "$src"
[ "$status" -eq 0 ] && echo "$out"
exit "$status"
