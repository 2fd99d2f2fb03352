#!/usr/bin/env bash
# The layering rule of daemon/README.md, checked on the build graph: nothing
# in the network layer, the CLI or the protocol may reach libpython or
# Python's headers, by any path. (Visibility already makes a direct
# dependency a build error; this also catches one through another target.)
# Run by ./test.sh; exits 1 and prints the path when the rule is broken.
set -euo pipefail
cd "$(dirname "$0")/.."

no_python=(//daemon/net/... //cli/... //proto/... //daemon/base/... //daemon/queues:queue_store
           //daemon/core:jobs)
python_targets="@local_python//:libpython + @local_python//:python_headers"

status=0
for target in "${no_python[@]}"; do
  path=$(bazel query --noshow_progress --output=label \
    "somepath($target, $python_targets)" 2>/dev/null)
  if [ -n "$path" ]; then
    echo "layering broken: $target reaches Python through:" >&2
    echo "$path" | sed 's/^/  /' >&2
    status=1
  fi
done
[ "$status" = 0 ] && echo "layering: no path from ${no_python[*]} to libpython"
exit "$status"
