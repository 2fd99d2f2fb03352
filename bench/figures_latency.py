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
import functools
import os
import time

import extrainterpreters

from bench import peer_clients, peers, stats, turns
from bench.context import measure


def round_trip(ctx):
    s = ctx.settings
    result = {"unit": "us", "job": "abs(-1)", "peers": {}}
    clients = {}

    def process_pool(stack):
        executor = stack.enter_context(concurrent.futures.ProcessPoolExecutor(
            ctx.workers, mp_context=ctx.mp_context))
        return lambda: executor.submit(abs, -1).result()

    def pool(socket_path, key):
        def opener(stack):
            client = stack.enter_context(extrainterpreters.Client(socket_path))
            clients[key] = client
            return lambda: client.run(abs, -1)
        return opener

    def lease(socket_path):
        def opener(stack):
            interp = stack.enter_context(
                extrainterpreters.Interpreter(socket_path))
            return lambda: interp.run(abs, -1)
        return opener

    def ping(stack):
        client = stack.enter_context(extrainterpreters.Client(ctx.socket_path))
        return client.ping

    openers = [("process_pool", process_pool),
               ("project_pool", pool(ctx.socket_path, "pool")),
               ("project_lease", lease(ctx.socket_path)),
               ("project_ping", ping)]
    if ctx.before_socket:  # the interpreter lane before the process lane
        openers += [("before_pool", pool(ctx.before_socket, "before")),
                    ("before_lease", lease(ctx.before_socket))]
    # The executor forks its workers first, before any client thread runs;
    # then the peers (mpire forks first among them). Then the variants take
    # turns, round by round, so a change in the machine's background load
    # hits them all alike.
    with contextlib.ExitStack() as stack:
        calls = {}
        for name, opener in openers[:1]:
            _open_call(result, calls, name, opener, stack, s.warmup)
        for name, peer in peers.open_peers(ctx, stack, result["peers"]).items():
            _open_call(result["peers"], calls, name,
                       lambda _, p=peer: functools.partial(p.call, abs, -1),
                       stack, min(s.warmup, s.slow_round_trips),
                       slow=peer.slow)
        for name, opener in openers[1:]:
            _open_call(result, calls, name, opener, stack, s.warmup)
        turns.latency_rounds(calls.values(), s)
        for key, client in clients.items():
            measure(result, f"daemon_internal_{key}", _daemon_latency, client)
    _raw_sockets(ctx, result)
    return result


def _open_call(into, calls, name, opener, stack, warmup, slow=False):
    call = measure(into, name, _warmed, opener, stack, warmup)
    if callable(call):
        calls[name] = turns.Latency(into, name, call, slow)


def _raw_sockets(ctx, result):
    s = ctx.settings

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
    result["peers"] = _peer_cold_starts(ctx)
    return result


def _peer_cold_starts(ctx):
    """Each peer's pool made to its first result; Dask and Ray also a new
    client (in a process of its own, its imports done) connecting to the
    running cluster to its first result, which is what the project's cold
    start is: a new client of a running daemon."""
    s = ctx.settings
    into = {}
    for name in peers.ALL:
        if name not in ctx.peers:
            continue
        reason = peers.skip_reason(name, s.mode)
        if reason:
            into[name] = {"skipped": reason}
            continue
        cls = peers.CLASSES[name]
        count = s.slow_cold_starts if cls.slow else s.cold_starts
        try:
            pool = stats.spread(_new_pools(ctx, cls, count))
        except Exception as exc:  # noqa: BLE001 -- reported, not hidden
            into[name] = peers.unavailable(exc)
            continue
        if cls.shared:
            into[name] = {"new_cluster": pool}
            measure(into[name], "new_client", lambda n=name: stats.spread(
                peer_clients.cold_starts(ctx, n, count)))
        else:
            into[name] = pool
    return into


def _new_pools(ctx, cls, count):
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        peer = cls(ctx.workers, ctx.mp_context)
        try:
            peer.start()
            peer.call(abs, -1)
            samples.append((time.perf_counter() - start) * 1e3)
        finally:
            peers.close_quietly(peer)
    return samples
