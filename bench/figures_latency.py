"""Figures 1 and 5: the round trip of a trivial job, and cold start.

Round trip: ``run(abs, -1)`` one at a time, each timed from the call to
its value, on a pool interpreter, on a leased ``Interpreter``, on a warm
``ProcessPoolExecutor`` with as many workers as the daemon, and the raw
limit: 64 bytes each way between two processes over a Unix stream socket.
Where the time goes: the client's ``ping`` (the same path without a job:
client threads, socket, the daemon's I/O thread), the daemon's own
latency of the pool jobs just run (status ``latency_us``: from a ``run``
frame read to its reply queued), and the raw ping-pong with the two
processes pinned to different CPUs (what one cross-CPU wake-up costs here).

Cold start: a new ``Client``'s connect (and hello) to its first result,
against creating a ``ProcessPoolExecutor`` and getting its first result.
"""

import concurrent.futures
import contextlib
import os
import time

import extrainterpreters

from bench import stats
from bench.context import failure, measure


def round_trip(ctx):
    s = ctx.settings
    result = {"unit": "us", "job": "abs(-1)"}
    clients = {}

    def process_pool(stack):
        executor = stack.enter_context(concurrent.futures.ProcessPoolExecutor(
            ctx.workers, mp_context=ctx.mp_context))
        return lambda: executor.submit(abs, -1).result()

    def pool(stack):
        client = stack.enter_context(extrainterpreters.Client(ctx.socket_path))
        clients["pool"] = client
        return lambda: client.run(abs, -1)

    def lease(stack):
        interp = stack.enter_context(
            extrainterpreters.Interpreter(ctx.socket_path))
        return lambda: interp.run(abs, -1)

    def ping(stack):
        client = stack.enter_context(extrainterpreters.Client(ctx.socket_path))
        return client.ping

    # The executor forks its workers first, before any client thread runs.
    # Then the variants take turns, round by round, so a change in the
    # machine's background load hits them all alike.
    with contextlib.ExitStack() as stack:
        calls = {}
        for name, opener in (("process_pool", process_pool),
                             ("project_pool", pool),
                             ("project_lease", lease),
                             ("project_ping", ping)):
            call = measure(result, name, _warmed, opener, stack, s.warmup)
            if callable(call):
                calls[name] = call
        samples = {name: [] for name in calls}
        per_round = max(1, s.round_trips // s.rounds)
        for _ in range(s.rounds):
            for name in list(calls):
                try:
                    samples[name] += stats.time_calls(calls[name], per_round)
                except Exception as exc:  # noqa: BLE001 -- reported
                    result[name] = failure(exc)
                    del calls[name]
        for name in calls:
            result[name] = stats.latency(samples[name])
        if "project_pool" in calls:
            measure(result, "daemon_internal_pool", _daemon_latency,
                    clients["pool"])

    def raw_socket(cross_cpu):
        if cross_cpu and (os.cpu_count() or 1) < 2:
            raise RuntimeError("needs 2 CPUs")
        summary = ctx.raw("pingpong", iterations=s.raw_iterations,
                          warmup=max(s.warmup, 10), size=64,
                          **{"cross-cpu": int(cross_cpu)})
        return {k: summary[k] for k in
                ("n", "min", "p10", "p50", "p90", "p99", "max")}

    measure(result, "raw_socket", raw_socket, False)
    measure(result, "raw_socket_cross_cpu", raw_socket, True)
    return result


def _warmed(opener, stack, warmup):
    call = opener(stack)
    for _ in range(warmup):
        call()
    return call


def _daemon_latency(client):
    """The daemon's own latency of its last jobs (status ``latency_us``)."""
    inside = client.status(timeout=10)["latency_us"]
    return {"p50": inside["p50"], "p99": inside["p99"],
            "n": inside["samples"]}


def cold_start(ctx):
    s = ctx.settings
    result = {"unit": "ms"}

    def project():
        samples = []
        for _ in range(s.cold_starts):
            start = time.perf_counter()
            client = extrainterpreters.Client(ctx.socket_path)
            try:
                client.run(abs, -1)
                samples.append((time.perf_counter() - start) * 1e3)
            finally:
                client.close()
        return stats.spread(samples)

    def process_pool():
        samples = []
        for _ in range(s.cold_starts):
            start = time.perf_counter()
            executor = concurrent.futures.ProcessPoolExecutor(
                ctx.workers, mp_context=ctx.mp_context)
            try:
                executor.submit(abs, -1).result()
                samples.append((time.perf_counter() - start) * 1e3)
            finally:
                executor.shutdown()
        return stats.spread(samples)

    measure(result, "project", project)
    measure(result, "process_pool", process_pool)
    return result
