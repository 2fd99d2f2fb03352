"""Client CPU per job, and the 64 MiB result against memcpy (issue 15).

A small stand-alone measurement for the client's hot paths, apart from the
whole benchmark: run it against a running daemon::

    PYTHONPATH=client/python python3.13 bench/client_cpu.py --socket S \
        [--jobs 100000] [--profile] [--executor] [--large]

- submit per job: ``Client.submit(abs, -1)`` for ``--jobs`` jobs, all
  submitted, then every ``result()``: the client process's CPU seconds
  (user and system, ``os.times()``: every thread of it) per job, and jobs/s of
  wall time. ``--profile`` runs the same under cProfile and prints the
  functions by own time, and the Python calls per job. ``--executor``:
  the same through ``InterpreterPoolExecutor(2)``.
- 64 MiB result (``--large``): seconds from ``run(make_bytes, 64 MiB)`` to
  the value, against one memcpy of 64 MiB between two warm buffers in this
  process (a memoryview slice assignment), median of rounds.
"""

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time

import extrainterpreters

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "jobs"))
import bench_jobs  # noqa: E402 - the daemon imports it from --python-path

SIZE = 64 << 20


def submit_per_job(client, jobs):
    futures = [None] * jobs
    before, wall = os.times(), time.perf_counter()
    for i in range(jobs):
        futures[i] = client.submit(abs, -1)
    for future in futures:
        future.result()
    after = os.times()
    return (after.user + after.system - before.user - before.system,
            time.perf_counter() - wall, after.system - before.system)


def executor_per_job(socket, jobs):
    """The same through ``InterpreterPoolExecutor`` (2 workers)."""
    with extrainterpreters.InterpreterPoolExecutor(
            2, socket_path=socket) as pool:
        pool.submit(abs, -1).result()
        before, wall = os.times(), time.perf_counter()
        futures = [pool.submit(abs, -1) for _ in range(jobs)]
        for future in futures:
            future.result()
        after = os.times()
    return (after.user + after.system - before.user - before.system,
            time.perf_counter() - wall)


def profile(client, jobs):
    profiler = cProfile.Profile()
    profiler.enable()
    submit_per_job(client, jobs)
    profiler.disable()
    stats = pstats.Stats(profiler)
    calls = sum(entry[1] for entry in stats.stats.values())
    print(f"{calls / jobs:.1f} Python calls per job (every thread)")
    stats.sort_stats("tottime").print_stats(25)


def large_result(client, rounds):
    source = memoryview(bytearray(b"x" * SIZE))
    target = memoryview(bytearray(b"y" * SIZE))  # both faulted in
    memcpy, result = [], []
    client.run(bench_jobs.make_bytes, SIZE)  # one untimed transfer
    for _ in range(rounds):
        start = time.perf_counter()
        target[:] = source
        memcpy.append(time.perf_counter() - start)
        start = time.perf_counter()
        value = client.run(bench_jobs.make_bytes, SIZE)
        result.append(time.perf_counter() - start)
        assert len(value) == SIZE
        del value
    m, r = statistics.median(memcpy), statistics.median(result)
    print(f"64 MiB result: {r * 1e3:.1f} ms (min {min(result) * 1e3:.1f}); "
          f"memcpy {m * 1e3:.1f} ms; ratio memcpy/result {m / r:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--large", action="store_true")
    parser.add_argument("--executor", action="store_true")
    args = parser.parse_args()
    with extrainterpreters.Client(args.socket, output=False) as client:
        if args.large:
            large_result(client, args.rounds)
            return
        submit_per_job(client, min(args.jobs, 10_000))  # warm up
        if args.profile:
            profile(client, args.jobs)
            return
        if args.executor:
            rows = [executor_per_job(args.socket, args.jobs)
                    for _ in range(args.rounds)]
            cpu = statistics.median(r[0] for r in rows)
            wall = statistics.median(r[1] for r in rows)
            print(f"executor submit per job: {cpu / args.jobs * 1e6:.1f} us "
                  f"client CPU per job, {args.jobs / wall:,.0f} jobs/s wall")
            return
        rows = [submit_per_job(client, args.jobs) for _ in range(args.rounds)]
        cpu = statistics.median(r[0] for r in rows)
        wall = statistics.median(r[1] for r in rows)
        system = statistics.median(r[2] for r in rows)
        print(f"submit per job: {cpu / args.jobs * 1e6:.1f} us client CPU "
              f"per job, {system / args.jobs * 1e6:.1f} of it in the kernel "
              f"({cpu:.2f} s per {args.jobs} jobs; rounds "
              f"{', '.join(f'{r[0]:.2f}' for r in rows)}), "
              f"{args.jobs / wall:,.0f} jobs/s wall")


if __name__ == "__main__":
    sys.exit(main())
