"""Figures 2 and 3: throughput of trivial jobs, and CPU scaling.

Throughput: ``abs(-1)`` jobs, all submitted before the first is awaited
(submit per job), from one client and from several client processes at
once (each its own connection; the rate is all their jobs over the span
from the first start to the last end), against
``ProcessPoolExecutor.map(chunksize=1)``, and each peer's submit per job
(Dask and Ray, whose clusters take other clients, also from as many
client processes). Issue 15's chunked path: ``map`` with ``chunksize``
``map_chunksize`` through ``Client.map`` and the project's
``InterpreterPoolExecutor`` (one job per chunk, ``_batch``), on PPE, and
on each peer's own map with a chunk size (loky's and mpire's executors,
a Dask bag of that partition size, Ray's ``multiprocessing.Pool``); the
sub-interpreters have none (``Peer.no_map``). The systems take turns round
by round; Dask and Ray get a tenth of the jobs submitted one by one (they
run ~1-3k such jobs/s, so a round stays seconds). A chunked map times
``map_jobs`` calls (200,000: 0.2-2 s a round here; fewer made it a
measurement of the machine's noise), Dask's bag a tenth of them.

CPU scaling: a pure-Python loop (``bench_jobs.spin``, about
``cpu_task_seconds`` each), 2 x W tasks per round, run one after another
(one worker busy at a time) and all at once (W workers busy); speedup is
the ratio of the two times. The same for ``ProcessPoolExecutor`` with 1
and with W workers, for one thread and W threads in this process (one
GIL), and for each peer one after another and all at once on its W
workers. They take turns round by round.
"""

import concurrent.futures
import contextlib
import time

import bench_jobs
import extrainterpreters

from bench import peer_clients, peers, stats, turns
from bench.context import failure, measure

_SLOW_SHARE = 10   # Dask and Ray run 1/10 of the jobs per round


def _submit_all(submit, gather):
    return lambda jobs: gather([submit(abs, -1) for _ in range(jobs)])


def _map_all(run_map, chunksize):
    return lambda jobs: list(run_map(abs, [-1] * jobs, chunksize))


def _executor_map(executor):
    return lambda fn, items, chunksize: executor.map(fn, items,
                                                     chunksize=chunksize)


def throughput(ctx):
    s = ctx.settings
    result = {"unit": "jobs/s", "job": "abs(-1)",
              "jobs_per_round": s.throughput_jobs, "clients": s.clients,
              "chunksize": s.map_chunksize, "map_jobs_per_round": s.map_jobs,
              "peers": {}}
    n, k, m = s.throughput_jobs, s.map_chunksize, s.map_jobs
    gather = lambda futures: [f.result() for f in futures]  # noqa: E731
    with contextlib.ExitStack() as stack:
        ppe = stack.enter_context(concurrent.futures.ProcessPoolExecutor(
            ctx.workers, mp_context=ctx.mp_context))
        ppe.submit(abs, -1).result()  # forks its workers before any peer
        rates = [
            turns.Rate(result, "process_pool_map", n,
                  _map_all(_executor_map(ppe), 1)),
            turns.Rate(result, "process_pool_map_chunked", m,
                  _map_all(_executor_map(ppe), k)),
            turns.Rate(result, "process_pool_submit", n,
                  _submit_all(ppe.submit, gather))]
        opened = peers.open_peers(ctx, stack, result["peers"])
        client = stack.enter_context(extrainterpreters.Client(ctx.socket_path))
        executor = stack.enter_context(extrainterpreters.InterpreterPoolExecutor(
            ctx.workers, socket_path=ctx.socket_path))
        rates += [turns.Rate(result, "project_1_client", n,
                        _submit_all(client.submit, gather)),
                  turns.Rate(result, "project_client_map", m,
                        _map_all(_executor_map(client), k)),
                  turns.Rate(result, "project_map", m,
                        _map_all(_executor_map(executor), k))]
        for name, peer in opened.items():
            rates += _peer_rates(result["peers"].setdefault(name, {}),
                                 peer, n, k, m)
        turns.rate_rounds(rates, s.rounds)
        measure(result, "project_clients", _clients, "project",
                ctx.socket_path, s, n)
        for name, peer in opened.items():
            if peer.shared:
                measure(result["peers"][name], "clients", _clients, name,
                        peer.address, s, n // _SLOW_SHARE)
    return result


def _peer_rates(into, peer, n, k, m):
    jobs = n // _SLOW_SHARE if peer.slow else n
    rates = [turns.Rate(into, "submit", jobs, _submit_all(peer.submit, peer.gather))]
    if peer.no_map:
        into["map"] = {"skipped": peer.no_map}
    else:
        calls = m // _SLOW_SHARE if peer.slow_map else m
        rates.append(turns.Rate(into, "map", calls, _map_all(peer.map, k)))
    return rates


def _clients(system, address, s, jobs):
    return stats.spread(peer_clients.clients_rates(
        system, address, s.clients, jobs, s.rounds))


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

    def peer_timers(peer):
        return (lambda: _time_serial(lambda: peer.call(*job), tasks),
                lambda: _time_gather(peer, job, tasks))

    # Executors fork before any client thread runs, then the peers (mpire
    # forks first among them); then the systems take turns round by round,
    # so background load hits them all alike.
    with contextlib.ExitStack() as stack:
        result["peers"] = {}
        timers = {}
        for name, opener in (("process_pool", process_pool),
                             ("peers", None), ("project", project),
                             ("threads", threads)):
            if opener is None:
                for peer_name, peer in peers.open_peers(
                        ctx, stack, result["peers"]).items():
                    timers[peer_name] = (result["peers"], peer_timers(peer))
                continue
            opened = measure(result, name, opener, stack)
            if isinstance(opened, tuple):
                timers[name] = (result, opened)
        _scaling_rounds(timers, s.rounds)
    return result


def _time_gather(peer, job, tasks):
    """Seconds for a peer to run ``tasks`` jobs submitted at once."""
    start = time.perf_counter()
    peer.gather([peer.submit(*job) for _ in range(tasks)])
    return time.perf_counter() - start


def _scaling_rounds(timers, rounds):
    """Each round, each system's (one worker, W workers) times in turn."""
    times = {name: ([], []) for name in timers}
    for _ in range(rounds):
        for name in list(timers):
            into, pair = timers[name]
            try:
                for timer, kept in zip(pair, times[name]):
                    kept.append(timer())
            except Exception as exc:  # noqa: BLE001 -- reported
                into[name] = failure(exc)
                del timers[name]
    for name, (into, _) in timers.items():
        serial, parallel = times[name]
        into[name] = {
            "one_worker_s": stats.spread(serial),
            "w_workers_s": stats.spread(parallel),
            "speedup": stats.spread(
                [a / b for a, b in zip(serial, parallel)])}
