#!/usr/bin/env bash
# Installs what is missing, builds, starts extrainterpretersd in the
# background on the per-user socket (restarting one already running there),
# runs the parallel example, and shows the daemon's status.
set -euo pipefail
cd "$(dirname "$0")"
source bazel/install_deps.sh
ei_install_deps

echo "Building..."
bazel build --noshow_progress //daemon:extrainterpretersd //cli:extrainterpretersctl \
  //client/python/examples:parallel_example 2>&1 | grep -vE '^(INFO|Target|  bazel-bin)' || true
bin=bazel-bin/daemon
ctl=bazel-bin/cli/extrainterpretersctl
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

pid_file="$state_dir/extrainterpretersd.pid"

# Stops daemon $1 and waits for it to end.
stop_daemon() {
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 300); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "error: pid $1 did not stop within 30 s; stop it and run ./run.sh again" >&2
  exit 1
}

# One daemon: stop the one that answers on the socket, so the fresh build
# runs, and the one this script started last time, even if its socket file
# was removed meanwhile (then nothing answers there, but it still runs).
if "$ctl" --socket "$socket" ping >/dev/null 2>&1; then
  old_pid=$("$ctl" --socket "$socket" status --json | sed -n 's/^ *"pid": \([0-9]*\).*/\1/p')
  echo "Stopping the daemon already running on $socket (pid $old_pid)..."
  stop_daemon "$old_pid"
fi
if [ -f "$pid_file" ]; then
  old_pid=$(cat "$pid_file")
  if grep -qs extrainterpretersd "/proc/$old_pid/cmdline"; then
    echo "Stopping the daemon this script started before (pid $old_pid)..."
    stop_daemon "$old_pid"
  fi
  rm -f "$pid_file"
fi

echo "Starting extrainterpretersd on $socket (log: $log)..."
nohup setsid "$bin/extrainterpretersd" --socket "$socket" \
  --python-path "$PWD/client/python/examples" >>"$log" 2>&1 </dev/null &
daemon_pid=$!
echo "$daemon_pid" >"$pid_file"
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
