"""Issue 14's scaling figure: the same CPU-bound pure-Python workload on a
Dask cluster of two task slots, run three ways in one run:

    threads     one Dask worker process with 2 threads (Dask's default on a
                2-core host: one process, so one GIL for both)
    processes   two Dask worker processes with 1 thread each
    daemon      one Dask worker process with 2 threads and
                extrainterpreters.dask's executor: the tasks run in an
                extrainterpretersd with 2 sub-interpreters (own GILs)

plus, as the yardstick, one worker with one thread (a single slot). The
figure is the wall time of a round of tasks (``bench_jobs.spin``) and the
speedup over the single slot; two slots can reach 2x at most.

    bench/run.sh --dask-scaling                   # 200 tasks x 3 rounds
    bench/run.sh --dask-scaling --tasks 100 --rounds 1 --json out.json

Every cluster is a ``distributed.LocalCluster`` with worker processes
(each behind its nanny); the daemon is started here on a temporary socket
and stopped on exit. Nothing here is a test: the numbers go to the terminal
(and --json FILE).
"""

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import distributed

import bench_jobs
from extrainterpreters.dask import ExtraInterpretersPlugin

SLOTS = 2
START_TIMEOUT = 120.0

# name -> (Dask worker processes, threads per worker, through the daemon)
LAYOUTS = {
    "single slot": (1, 1, False),
    "threads": (1, SLOTS, False),
    "processes": (SLOTS, 1, False),
    "daemon": (1, SLOTS, True),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--daemon", required=True,
                        help="the extrainterpretersd binary")
    parser.add_argument("--tasks", type=int, default=200,
                        help="tasks per round (default 200)")
    parser.add_argument("--iterations", type=int, default=300_000,
                        help="bench_jobs.spin's loop per task (default "
                             "300,000: about 30 ms of CPU here)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed rounds per layout; the median is "
                             "reported (default 3)")
    parser.add_argument("--json", help="also write the figures here")
    options = parser.parse_args()

    # The workers log only errors; a UserWarning about large graphs or
    # resource limits would clutter the table.
    warnings.filterwarnings("ignore", category=UserWarning,
                            module=r"distributed\.")
    jobs_dir = os.path.dirname(os.path.abspath(bench_jobs.__file__))
    with tempfile.TemporaryDirectory(prefix="ei-dask-bench-", dir="/tmp") as tmp:
        socket_path = os.path.join(tmp, "ei.sock")
        daemon = _start_daemon(options.daemon, socket_path, jobs_dir, tmp)
        try:
            results = {name: _measure(name, layout, socket_path, options)
                       for name, layout in LAYOUTS.items()}
        finally:
            _stop_daemon(daemon)
    _report(results, options)


def _measure(name, layout, socket_path, options):
    nworkers, nthreads, through_daemon = layout
    print(f"{name}: {nworkers} worker process(es) x {nthreads} thread(s)"
          f"{', tasks in the daemon' if through_daemon else ''}...",
          file=sys.stderr, flush=True)
    cluster = distributed.LocalCluster(
        n_workers=nworkers, threads_per_worker=nthreads, processes=True,
        dashboard_address=None, silence_logs=logging.ERROR)
    client = distributed.Client(cluster, timeout=START_TIMEOUT)
    try:
        client.wait_for_workers(nworkers, timeout=START_TIMEOUT)
        if through_daemon:
            client.register_plugin(ExtraInterpretersPlugin(socket_path))
        # A round not timed: the workers (or the daemon's interpreters)
        # import bench_jobs and warm up.
        _round(client, options.tasks // 4 or 1, options.iterations)
        times = [_round(client, options.tasks, options.iterations)
                 for _ in range(options.rounds)]
        where = client.run(os.getpid)
    finally:
        client.close()
        cluster.close()
    return {"workers": nworkers, "threads": nthreads,
            "through_daemon": through_daemon,
            "worker_pids": sorted(where.values()),
            "seconds": times, "median": statistics.median(times)}


def _round(client, tasks, iterations):
    began = time.monotonic()
    # pure=False: equal calls are separate tasks, not one cached result.
    futures = client.map(bench_jobs.spin, [iterations] * tasks, pure=False)
    values = client.gather(futures)
    elapsed = time.monotonic() - began
    expected = bench_jobs.spin(iterations)
    if values != [expected] * tasks:
        raise SystemExit(f"wrong results from the cluster: {values[:4]}...")
    return elapsed


def _start_daemon(binary, socket_path, jobs_dir, tmp):
    log = open(os.path.join(tmp, "daemon.log"), "wb")
    with log:
        process = subprocess.Popen(
            [binary, "--socket", socket_path, "--workers", str(SLOTS),
             "--python-path", jobs_dir],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT
    while not os.path.exists(socket_path):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            with open(os.path.join(tmp, "daemon.log"), errors="replace") as f:
                raise SystemExit(f"extrainterpretersd did not start on "
                                 f"{socket_path}:\n{f.read()[-2000:]}")
        time.sleep(0.05)
    return process


def _stop_daemon(process):
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _report(results, options):
    base = results["single slot"]["median"]
    print(f"\n{options.tasks} tasks of bench_jobs.spin({options.iterations:,})"
          f", median of {options.rounds} round(s), {os.cpu_count()} CPUs\n")
    print("| layout | Dask worker processes x threads | round (s) "
          "| tasks/s | speedup over one slot |")
    print("|---|---|---:|---:|---:|")
    for name, result in results.items():
        median = result["median"]
        how = f"{result['workers']} x {result['threads']}"
        if result["through_daemon"]:
            how += f" + 1 daemon ({SLOTS} interpreters)"
        print(f"| {name} | {how} | {median:.2f} | "
              f"{options.tasks / median:.0f} | {base / median:.2f}x |")
    if options.json:
        with open(options.json, "w") as f:
            json.dump({"tasks": options.tasks,
                       "iterations": options.iterations,
                       "cpus": os.cpu_count(), "layouts": results}, f,
                      indent=2)


if __name__ == "__main__":
    main()
