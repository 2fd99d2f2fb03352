#!/usr/bin/env bash
# Measures extrainterpreters against its anchors on this machine, in one run:
# installs what is missing, builds, starts a private extrainterpretersd on a
# temporary socket (always stopped on exit), runs //bench:benchmark, and
# writes bench/results/latest.{json,md,png}.
#
#   bench/run.sh [--quick] [--workers N] [--before-daemon PATH] [benchmark flags...]
#   bench/run.sh --dask-scaling [dask_scaling.py flags...]
#
# --quick halves the repeats; other flags go to the benchmark program (see
# `bazel-bin/bench/benchmark --help`, e.g. --rounds 5 --only round_trip,
# --peers loky,ray, --runs 3). --before-daemon starts a second daemon from
# that binary (an earlier commit's: bench/build_daemon_at.sh) beside this
# one, and the round-trip figure times both in turn. --dask-scaling runs
# issue 14's Dask figure instead (bench/dask_scaling.py: threads, worker
# processes and extrainterpreters.dask on a two-slot cluster; it starts its
# own daemon), with Dask from requirements-peers.txt, and prints its table.
#
# numpy and the peers come from PyPI, installed once into cached environments
# of the build's Python (bazel/py_env.sh), and used by the bench alone:
# bench/requirements.txt (numpy) is on the daemon's --python-path and on the
# benchmark's PYTHONPATH; requirements-peers.txt (loky, mpire, Dask) on the
# benchmark's PYTHONPATH, which their worker processes inherit;
# requirements-ray.txt goes to Ray alone (--ray-path; bench/peers.py).
# $EI_BENCH_ARGS adds flags too. The exit status is 1 if a measurement
# failed (the results say which); slow figures never fail it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source bazel/install_deps.sh
source bazel/py_env.sh
EI_PACKAGES+=(python3-matplotlib)  # the chart, drawn with Debian's python3
ei_install_deps

workers=2
before_daemon=
dask_scaling=
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers=$2; shift 2 ;;
    --workers=*) workers=${1#--workers=}; shift ;;
    --before-daemon) before_daemon=$2; shift 2 ;;
    --before-daemon=*) before_daemon=${1#--before-daemon=}; shift ;;
    --dask-scaling) dask_scaling=1; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ -n "$before_daemon" ] && [ ! -x "$before_daemon" ]; then
  echo "error: --before-daemon $before_daemon is not an executable" >&2
  exit 2
fi
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

numpy_site=$(ei_py_env bench/requirements.txt)
peers_site=$(ei_py_env bench/requirements-peers.txt)
if [ -n "$dask_scaling" ]; then
  PYTHONPATH="$root/client/python:$root/bench/jobs:$peers_site" exec \
    "$(ei_build_python)" bench/dask_scaling.py \
    --daemon bazel-bin/daemon/extrainterpretersd ${args[@]+"${args[@]}"}
fi
ray_site=$(ei_py_env bench/requirements-ray.txt)

tmp=$(mktemp -d /tmp/ei-bench-XXXX)
daemon_pids=()
stop_one() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "warning: extrainterpretersd (pid $pid) ignored SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
stop_daemons() {
  for pid in ${daemon_pids[@]+"${daemon_pids[@]}"}; do stop_one "$pid"; done
  rm -rf "$tmp"
}
trap stop_daemons EXIT
trap 'exit 130' INT TERM

# The process lane gets as many warm worker processes as the pool has
# interpreters: the numpy figure compares W workers with W workers.
echo "Starting extrainterpretersd --workers $workers on $tmp/ei.sock..."
bazel-bin/daemon/extrainterpretersd --socket "$tmp/ei.sock" --workers "$workers" \
  --process-workers "$workers" --max-process-workers "$workers" \
  --python-path "$root/bench/jobs:$numpy_site" >"$tmp/daemon.log" 2>&1 </dev/null &
daemon_pids+=($!)
if [ -n "$before_daemon" ]; then
  echo "Starting $before_daemon --workers $workers on $tmp/before.sock..."
  "$before_daemon" --socket "$tmp/before.sock" --workers "$workers" \
    --python-path "$root/bench/jobs:$numpy_site" >"$tmp/before.log" 2>&1 </dev/null &
  daemon_pids+=($!)
  before_label=$(basename "$(dirname "$before_daemon")")
  args=(--before-socket "$tmp/before.sock" --before-label "${before_label#ei-daemon-}"
        ${args[@]+"${args[@]}"})
fi

status=0
PYTHONPATH="$numpy_site:$peers_site" bazel-bin/bench/benchmark --socket "$tmp/ei.sock" \
  --out "$root/bench/results" --ray-path "$ray_site" \
  --raw-tool "$root/bazel-bin/bench/raw_socket_pingpong" \
  --label "$(git describe --always --dirty 2>/dev/null || echo unknown)" \
  ${args[@]+"${args[@]}"} || status=$?
if [ "$status" -ne 0 ]; then
  echo "The daemon's log ends (a failed measurement may be explained there):" >&2
  grep -vE ' INFO (connection|client hello)' "$tmp/daemon.log" | tail -n 15 >&2 || true
fi
for index in "${!daemon_pids[@]}"; do
  if ! kill -0 "${daemon_pids[$index]}" 2>/dev/null; then
    log=$tmp/daemon.log
    [ "$index" -eq 1 ] && log=$tmp/before.log
    echo "error: a daemon exited during the benchmark; $log ends:" >&2
    tail -n 20 "$log" >&2
    status=1
  fi
done

if [ -f bench/results/latest.json ]; then
  if /usr/bin/python3 bench/chart.py bench/results/latest.json bench/results/latest.png; then
    echo "Wrote bench/results/latest.json, latest.md and latest.png"
  else
    echo "error: drawing the chart failed" >&2
    status=1
  fi
fi
exit "$status"
