#!/usr/bin/env bash
# Installs what is missing, builds, starts extrainterpretersd in the
# background on the per-user socket (restarting one already running there),
# runs the parallel example, and shows the daemon's status.
set -euo pipefail
cd "$(dirname "$0")"
source bazel/install_deps.sh
ei_install_deps

echo "Building..."
bazel build --noshow_progress //daemon:extrainterpretersd //daemon:extrainterpretersctl \
  //client/python/examples:parallel_example 2>&1 | grep -vE '^(INFO|Target|  bazel-bin)' || true
bin=bazel-bin/daemon
ctl="$bin/extrainterpretersctl"
state_dir=.run
mkdir -p "$state_dir"
log="$state_dir/extrainterpretersd.log"

# The socket both the daemon and the client pick with no configuration.
socket=${EXTRAINTERPRETERS_SOCKET:-}
if [ -z "$socket" ]; then
  if [ -n "${XDG_RUNTIME_DIR:-}" ]; then
    socket="$XDG_RUNTIME_DIR/extrainterpreters/ei.sock"
  else
    socket=/run/extrainterpreters/ei.sock
  fi
fi

# One daemon per socket: stop the one that answers there, so the fresh build runs.
if "$ctl" --socket "$socket" ping >/dev/null 2>&1; then
  old_pid=$("$ctl" --socket "$socket" status --json | sed -n 's/^ *"pid": \([0-9]*\).*/\1/p')
  echo "Stopping the daemon already running on $socket (pid $old_pid)..."
  kill -TERM "$old_pid"
  for _ in $(seq 1 300); do
    kill -0 "$old_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$old_pid" 2>/dev/null; then
    echo "error: pid $old_pid did not stop within 30 s; stop it and run ./run.sh again" >&2
    exit 1
  fi
fi

echo "Starting extrainterpretersd on $socket (log: $log)..."
nohup setsid "$bin/extrainterpretersd" --socket "$socket" \
  --python-path "$PWD/client/python/examples" >>"$log" 2>&1 </dev/null &
daemon_pid=$!
for _ in $(seq 1 300); do
  if "$ctl" --socket "$socket" status --json 2>/dev/null | grep -q '"state": "ready"'; then
    break
  fi
  if ! kill -0 "$daemon_pid" 2>/dev/null; then
    echo "error: extrainterpretersd exited during start-up; its log says:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  sleep 0.1
done

echo
EXTRAINTERPRETERS_SOCKET="$socket" bazel-bin/client/python/examples/parallel_example
echo
"$ctl" --socket "$socket" status
cat <<MSG

extrainterpretersd is running in the background (pid $daemon_pid, socket $socket).
  status:  $ctl --socket $socket status
  stop:    kill $daemon_pid
MSG
