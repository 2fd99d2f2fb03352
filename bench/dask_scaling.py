"""Issue 14's scaling figure: the same CPU-bound pure-Python workload on a
Dask cluster of two task slots, run three ways in one run:

    threads     one Dask worker process with 2 threads (Dask's default on a
                2-core host: one process, so one GIL for both)
    processes   two Dask worker processes with 1 thread each
    daemon      one Dask worker process with 2 threads and
                extrainterpreters.dask's executor: the tasks run in an
                extrainterpretersd with 2 sub-interpreters (own GILs)

plus, as the yardstick, one worker with one thread (a single slot), and
the daemon again with twice as many Dask threads as interpreters (so a job
waits in the daemon while the worker hands the next one over). The
figure is the wall time of a round of tasks (``bench_jobs.spin``) and the
speedup over the single slot; two slots can reach 2x at most. Each round
also counts the CPU its layout's processes used (this one, the workers,
the daemon) and what the rest of the machine took meanwhile
(/proc/stat): on a shared machine the second says how far to trust the
first, and a second table shows the round in which the rest of the machine
was quietest.

    bench/run.sh --dask-scaling                   # 100 tasks x 5 rounds
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

import dask
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
    "daemon, 2 threads per interpreter": (1, 2 * SLOTS, True),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--daemon", required=True,
                        help="the extrainterpretersd binary")
    parser.add_argument("--tasks", type=int, default=100,
                        help="tasks per round (default 100)")
    parser.add_argument("--iterations", type=int, default=300_000,
                        help="bench_jobs.spin's loop per task (default "
                             "300,000: about 30 ms of CPU here)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="timed rounds per layout; the median is "
                             "reported (default 5)")
    parser.add_argument("--json", help="also write the figures here")
    options = parser.parse_args()

    # The workers log only errors; a UserWarning about large graphs or
    # resource limits would clutter the table.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning,
                            module=r"distributed\.")
    # The clusters idle while others are timed: no profiler sampling their
    # threads every 10 ms meanwhile (the nannies pass this to the workers).
    dask.config.set({"distributed.worker.profile.enabled": False})
    jobs_dir = os.path.dirname(os.path.abspath(bench_jobs.__file__))
    with tempfile.TemporaryDirectory(prefix="ei-dask-bench-", dir="/tmp") as tmp:
        socket_path = os.path.join(tmp, "ei.sock")
        daemon = _start_daemon(options.daemon, socket_path, jobs_dir, tmp)
        clusters = {}
        try:
            for name, layout in LAYOUTS.items():
                clusters[name] = _start(name, layout, socket_path, options)
            # The layouts take turns, round by round, so that other load on
            # the machine falls on each alike.
            rounds = {name: [] for name in LAYOUTS}
            for number in range(options.rounds):
                print(f"round {number + 1} of {options.rounds}...",
                      file=sys.stderr, flush=True)
                for name, (_, client) in clusters.items():
                    pids = list(client.run(os.getpid).values())
                    if LAYOUTS[name][2]:
                        pids.append(daemon.pid)
                    rounds[name].append(_round(
                        client, options.tasks, options.iterations, pids))
            results = {name: _result(LAYOUTS[name], client, rounds[name])
                       for name, (_, client) in clusters.items()}
        finally:
            for cluster, client in clusters.values():
                client.close()
                cluster.close()
            _stop_daemon(daemon)
    _report(results, options)


def _start(name, layout, socket_path, options):
    """A warmed-up cluster of ``layout``: (LocalCluster, Client)."""
    nworkers, nthreads, through_daemon = layout
    print(f"{name}: {nworkers} worker process(es) x {nthreads} thread(s)"
          f"{', tasks in the daemon' if through_daemon else ''}...",
          file=sys.stderr, flush=True)
    cluster = distributed.LocalCluster(
        n_workers=nworkers, threads_per_worker=nthreads, processes=True,
        dashboard_address=None, silence_logs=logging.ERROR)
    client = distributed.Client(cluster, timeout=START_TIMEOUT)
    client.wait_for_workers(nworkers, timeout=START_TIMEOUT)
    if through_daemon:
        client.register_plugin(ExtraInterpretersPlugin(socket_path))
    # A round not timed: the workers (or the daemon's interpreters) import
    # bench_jobs and warm up.
    _round(client, options.tasks // 4 or 1, options.iterations)
    return cluster, client


def _result(layout, client, rounds):
    nworkers, nthreads, through_daemon = layout
    times = [seconds for seconds, _, _ in rounds]
    return {"workers": nworkers, "threads": nthreads,
            "through_daemon": through_daemon,
            "worker_pids": sorted(client.run(os.getpid).values()),
            "seconds": times, "median": statistics.median(times),
            "cpus_used_per_round": [ours for _, ours, _ in rounds],
            "cpus_others_per_round": [others for _, _, others in rounds],
            "cpus_used": statistics.median(ours for _, ours, _ in rounds),
            "cpus_others": statistics.median(o for _, _, o in rounds)}


def _round(client, tasks, iterations, pids=()):
    """Time one round; return (seconds, CPUs our processes used, CPUs the
    rest of the machine used meanwhile). ``pids``: this layout's processes
    besides this one (its workers, the daemon)."""
    pids = [os.getpid(), *pids]
    busy, ours = _busy_ticks(), _ticks(pids)
    began = time.monotonic()
    # pure=False: equal calls are separate tasks, not one cached result.
    futures = client.map(bench_jobs.spin, [iterations] * tasks, pure=False)
    values = client.gather(futures)
    elapsed = time.monotonic() - began
    busy, ours = _busy_ticks() - busy, _ticks(pids) - ours
    expected = bench_jobs.spin(iterations)
    if values != [expected] * tasks:
        raise SystemExit(f"wrong results from the cluster: {values[:4]}...")
    hz = os.sysconf("SC_CLK_TCK")
    return elapsed, ours / hz / elapsed, max(busy - ours, 0) / hz / elapsed


def _busy_ticks():
    """Clock ticks every CPU spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest is in user)
    return sum(fields[:8]) - fields[3] - fields[4]


def _ticks(pids):
    """User + system clock ticks of ``pids`` (0 for one that is gone)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


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


def _quietest_round(results):
    """The round in which the most the rest of the machine took during any
    layout's turn was least: the layouts' fairest comparison."""
    rounds = len(next(iter(results.values()))["seconds"])
    return min(range(rounds), key=lambda r: max(
        result["cpus_others_per_round"][r] for result in results.values()))


def _report(results, options):
    base = results["single slot"]["median"]
    print(f"\n{options.tasks} tasks of bench_jobs.spin({options.iterations:,})"
          f", median of {options.rounds} round(s), {os.cpu_count()} CPUs\n")
    print("| layout | Dask worker processes x threads | round (s), median "
          "| min - max | tasks/s | speedup over one slot | CPUs it used "
          "| CPUs others used |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, result in results.items():
        median = result["median"]
        how = f"{result['workers']} x {result['threads']}"
        if result["through_daemon"]:
            how += f" + 1 daemon ({SLOTS} interpreters)"
        print(f"| {name} | {how} | {median:.2f} | {min(result['seconds']):.2f}"
              f" - {max(result['seconds']):.2f} | "
              f"{options.tasks / median:.0f} | {base / median:.2f}x | "
              f"{result['cpus_used']:.2f} | {result['cpus_others']:.2f} |")
    quiet = _quietest_round(results)
    others = max(r["cpus_others_per_round"][quiet] for r in results.values())
    base = results["single slot"]["seconds"][quiet]
    print(f"\nThe quietest round (round {quiet + 1}: the rest of the machine "
          f"used at most {others:.2f} CPUs during any layout's turn):\n")
    print("| layout | round (s) | speedup over one slot | CPUs it used |")
    print("|---|---:|---:|---:|")
    for name, result in results.items():
        seconds = result["seconds"][quiet]
        print(f"| {name} | {seconds:.2f} | {base / seconds:.2f}x | "
              f"{result['cpus_used_per_round'][quiet]:.2f} |")
    if options.json:
        with open(options.json, "w") as f:
            json.dump({"tasks": options.tasks,
                       "iterations": options.iterations,
                       "cpus": os.cpu_count(), "layouts": results}, f,
                      indent=2)


if __name__ == "__main__":
    main()
