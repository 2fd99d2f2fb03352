"""Figures 2 and 3: throughput of trivial jobs, and CPU scaling.

Throughput: ``abs(-1)`` jobs, all submitted before the first is awaited,
from one client and from several client processes at once (each its own
connection; the rate is all their jobs over the span from the first start
to the last end), against ``ProcessPoolExecutor.map(chunksize=1)``.

CPU scaling: a pure-Python loop (``bench_jobs.spin``, about
``cpu_task_seconds`` each), 2 x W tasks per round, run one after another
(one worker busy at a time) and all at once (W workers busy); speedup is
the ratio of the two times. The same for ``ProcessPoolExecutor`` with 1
and with W workers, and for one thread and W threads in this process (one
GIL). The three take turns round by round.
"""

import concurrent.futures
import contextlib
import itertools
import multiprocessing
import time

import bench_jobs
import extrainterpreters

from bench import stats
from bench.context import failure, measure

_BARRIER_TIMEOUT = 120.0


def _burst(client, jobs):
    """Submit ``jobs`` trivial jobs, wait for all; return (start, end)."""
    start = time.monotonic()
    futures = [client.submit(abs, -1) for _ in range(jobs)]
    for future in futures:
        future.result()
    return start, time.monotonic()


def _client_process(socket_path, jobs, rounds, barrier, queue):
    """One client process of the multi-client figure (spawned)."""
    try:
        with extrainterpreters.Client(socket_path) as client:
            _burst(client, min(jobs, 200))  # warm up
            for index in range(rounds):
                barrier.wait(_BARRIER_TIMEOUT)
                queue.put((index, *_burst(client, jobs)))
    except BaseException as exc:
        queue.put(("error", f"{type(exc).__name__}: {exc}", None))
        barrier.abort()
        raise


def throughput(ctx):
    s = ctx.settings
    result = {"unit": "jobs/s", "job": "abs(-1)",
              "jobs_per_round": s.throughput_jobs, "clients": s.clients}

    def one_client():
        rates = []
        with extrainterpreters.Client(ctx.socket_path) as client:
            _burst(client, min(s.throughput_jobs, 1000))  # warm up
            for _ in range(s.rounds):
                start, end = _burst(client, s.throughput_jobs)
                rates.append(s.throughput_jobs / (end - start))
        return stats.spread(rates)

    def many_clients():
        spawn = multiprocessing.get_context("spawn")
        barrier = spawn.Barrier(s.clients + 1)
        queue = spawn.Queue()
        processes = [spawn.Process(
            target=_client_process, daemon=True,
            args=(ctx.socket_path, s.throughput_jobs, s.rounds, barrier,
                  queue)) for _ in range(s.clients)]
        for process in processes:
            process.start()
        try:
            rates = []
            for _ in range(s.rounds):
                barrier.wait(_BARRIER_TIMEOUT)
                spans = [queue.get(timeout=_BARRIER_TIMEOUT)
                         for _ in range(s.clients)]
                errors = [span[1] for span in spans if span[0] == "error"]
                if errors:
                    raise RuntimeError(f"a client process failed: {errors[0]}")
                start = min(span[1] for span in spans)
                end = max(span[2] for span in spans)
                rates.append(s.clients * s.throughput_jobs / (end - start))
            return stats.spread(rates)
        finally:
            for process in processes:
                process.join(10)
                if process.is_alive():
                    process.kill()
                    process.join()

    def process_pool_map():
        rates = []
        with concurrent.futures.ProcessPoolExecutor(
                ctx.workers, mp_context=ctx.mp_context) as executor:
            list(executor.map(abs, itertools.repeat(-1, 200), chunksize=1))
            for _ in range(s.rounds):
                start = time.perf_counter()
                list(executor.map(abs, itertools.repeat(-1, s.throughput_jobs),
                                  chunksize=1))
                rates.append(s.throughput_jobs / (time.perf_counter() - start))
        return stats.spread(rates)

    measure(result, "project_1_client", one_client)
    measure(result, "project_clients", many_clients)
    measure(result, "process_pool_map", process_pool_map)
    return result


def calibrate_spin(seconds):
    """Iterations of ``bench_jobs.spin`` taking about ``seconds`` here."""
    iterations = 20000
    while True:
        start = time.perf_counter()
        bench_jobs.spin(iterations)
        elapsed = time.perf_counter() - start
        if elapsed > 0.02 or iterations > 10**8:
            return max(1000, int(iterations * seconds / elapsed))
        iterations *= 4


def _time_batch(submit, tasks):
    """Seconds to submit ``tasks`` jobs and wait for all of them."""
    start = time.perf_counter()
    for future in [submit() for _ in range(tasks)]:
        future.result()
    return time.perf_counter() - start


def _time_serial(call, tasks):
    """Seconds to run ``tasks`` jobs one after another."""
    start = time.perf_counter()
    for _ in range(tasks):
        call()
    return time.perf_counter() - start


def cpu_scaling(ctx):
    s = ctx.settings
    iterations = calibrate_spin(s.cpu_task_seconds)
    tasks = 2 * ctx.workers
    result = {"unit": "s", "workers": ctx.workers, "tasks_per_round": tasks,
              "spin_iterations": iterations}
    job = (bench_jobs.spin, iterations)

    # Each opener returns (time on 1 worker, time on W workers) for a round.
    def process_pool(stack):
        def pool(workers):
            executor = stack.enter_context(
                concurrent.futures.ProcessPoolExecutor(
                    workers, mp_context=ctx.mp_context))
            executor.submit(abs, -1).result()  # its workers are started
            return lambda: _time_batch(lambda: executor.submit(*job), tasks)
        return pool(1), pool(ctx.workers)

    def project(stack):
        client = stack.enter_context(extrainterpreters.Client(ctx.socket_path))
        for future in [client.submit(*job) for _ in range(ctx.workers)]:
            future.result()  # every worker has imported bench_jobs
        return (lambda: _time_serial(lambda: client.run(*job), tasks),
                lambda: _time_batch(lambda: client.submit(*job), tasks))

    def threads(stack):
        executor = stack.enter_context(
            concurrent.futures.ThreadPoolExecutor(ctx.workers))
        return (lambda: _time_serial(lambda: bench_jobs.spin(iterations),
                                     tasks),
                lambda: _time_batch(lambda: executor.submit(*job), tasks))

    # Executors fork before any client thread runs; then the systems take
    # turns round by round, so background load hits them all alike.
    with contextlib.ExitStack() as stack:
        timers = {}
        for name, opener in (("process_pool", process_pool),
                             ("project", project), ("threads", threads)):
            opened = measure(result, name, opener, stack)
            if isinstance(opened, tuple):
                timers[name] = opened
        times = {name: ([], []) for name in timers}
        for _ in range(s.rounds):
            for name in list(timers):
                try:
                    for timer, into in zip(timers[name], times[name]):
                        into.append(timer())
                except Exception as exc:  # noqa: BLE001 -- reported
                    result[name] = failure(exc)
                    del timers[name]
        for name in timers:
            serial, parallel = times[name]
            result[name] = {
                "one_worker_s": stats.spread(serial),
                "w_workers_s": stats.spread(parallel),
                "speedup": stats.spread(
                    [a / b for a, b in zip(serial, parallel)])}
    return result
