#!/usr/bin/env bash
# Measures extrainterpreters against its anchors on this machine, in one run:
# installs what is missing, builds, starts a private extrainterpretersd on a
# temporary socket (always stopped on exit), runs //bench:benchmark, and
# writes bench/results/latest.{json,md,png}.
#
#   bench/run.sh [--quick] [--workers N] [benchmark flags...]
#
# --quick halves the repeats; other flags go to the benchmark program (see
# `bazel-bin/bench/benchmark --help`, e.g. --rounds 5 --only round_trip).
# $EI_BENCH_ARGS adds flags too. The exit status is 1 if a measurement
# failed (the results say which); slow figures never fail it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source bazel/install_deps.sh
EI_PACKAGES+=(python3-matplotlib)  # the chart, drawn with Debian's python3
ei_install_deps

workers=2
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers=$2; shift 2 ;;
    --workers=*) workers=${1#--workers=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
# shellcheck disable=SC2206
args+=(${EI_BENCH_ARGS:-})

echo "Building..."
bazel build --noshow_progress //daemon:extrainterpretersd //bench:benchmark \
  //bench:raw_socket_pingpong 2>&1 | grep -vE '^(INFO|Target|  bazel-bin)' || true
for built in daemon/extrainterpretersd bench/benchmark bench/raw_socket_pingpong; do
  if [ ! -x "bazel-bin/$built" ]; then
    echo "error: the build did not produce bazel-bin/$built" >&2
    exit 1
  fi
done

tmp=$(mktemp -d /tmp/ei-bench-XXXX)
daemon_pid=
stop_daemon() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
      kill -0 "$daemon_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$daemon_pid" 2>/dev/null; then
      echo "warning: extrainterpretersd (pid $daemon_pid) ignored SIGTERM; killing it" >&2
      kill -KILL "$daemon_pid" 2>/dev/null || true
    fi
    wait "$daemon_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap stop_daemon EXIT
trap 'exit 130' INT TERM

echo "Starting extrainterpretersd --workers $workers on $tmp/ei.sock..."
bazel-bin/daemon/extrainterpretersd --socket "$tmp/ei.sock" --workers "$workers" \
  --python-path "$root/bench/jobs" >"$tmp/daemon.log" 2>&1 </dev/null &
daemon_pid=$!

status=0
bazel-bin/bench/benchmark --socket "$tmp/ei.sock" --out "$root/bench/results" \
  --raw-tool "$root/bazel-bin/bench/raw_socket_pingpong" \
  --label "$(git describe --always --dirty 2>/dev/null || echo unknown)" \
  ${args[@]+"${args[@]}"} || status=$?
if ! kill -0 "$daemon_pid" 2>/dev/null; then
  echo "error: extrainterpretersd exited during the benchmark; its log ends:" >&2
  tail -n 20 "$tmp/daemon.log" >&2
  status=1
fi

if [ -f bench/results/latest.json ]; then
  if /usr/bin/python3 bench/chart.py bench/results/latest.json bench/results/latest.png; then
    echo "Wrote bench/results/latest.json, latest.md and latest.png"
  else
    echo "error: drawing the chart failed" >&2
    status=1
  fi
fi
exit "$status"
