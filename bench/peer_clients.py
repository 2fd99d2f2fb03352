"""Client processes: several at once against one system (the throughput
figure), and a new client of a running Dask or Ray cluster (cold start).

Every process is spawned, so it starts clean, and imports what it needs
before it is timed: what is measured is connecting and running jobs, as a
new client of a running daemon is in the project's figures.
"""

import multiprocessing
import time

import extrainterpreters

from bench import peers

_TIMEOUT = 120.0
_WARMUP_JOBS = 200


def _burst(system, jobs):
    """Submit ``jobs`` trivial jobs, wait for all; return (start, end)."""
    start = time.monotonic()
    system.gather([system.submit(abs, -1) for _ in range(jobs)])
    return start, time.monotonic()


class _ProjectClient:
    """A ``Client`` with the peers' ``submit``/``gather``/``close``."""

    def __init__(self, socket_path):
        self.client = extrainterpreters.Client(socket_path)

    def submit(self, fn, *args):
        return self.client.submit(fn, *args)

    def gather(self, futures):
        return [future.result() for future in futures]

    def close(self):
        self.client.close()


def connect(system, address):
    """A client of the project (``system == "project"``: ``address`` is
    the daemon's socket) or of a shared peer's running cluster."""
    if system == "project":
        return _ProjectClient(address)
    return peers.CLASSES[system].connect(address)


def _client_process(system, address, jobs, rounds, barrier, queue):
    """One client process of the clients figure."""
    try:
        client = connect(system, address)
        try:
            _burst(client, min(jobs, _WARMUP_JOBS))
            for index in range(rounds):
                barrier.wait(_TIMEOUT)
                queue.put((index, *_burst(client, jobs)))
        finally:
            client.close()
    except BaseException as exc:
        queue.put(("error", f"{type(exc).__name__}: {exc}", None))
        barrier.abort()
        raise


def clients_rates(system, address, clients, jobs, rounds):
    """Jobs/s of ``clients`` processes at once, per round: all their jobs
    over the span from the first start to the last end."""
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(clients + 1)
    queue = spawn.Queue()
    processes = [spawn.Process(
        target=_client_process, daemon=True,
        args=(system, address, jobs, rounds, barrier, queue))
        for _ in range(clients)]
    for process in processes:
        process.start()
    try:
        rates = []
        for _ in range(rounds):
            barrier.wait(_TIMEOUT)
            spans = [queue.get(timeout=_TIMEOUT) for _ in range(clients)]
            errors = [span[1] for span in spans if span[0] == "error"]
            if errors:
                raise RuntimeError(f"a client process failed: {errors[0]}")
            start = min(span[1] for span in spans)
            end = max(span[2] for span in spans)
            rates.append(clients * jobs / (end - start))
        return rates
    finally:
        _join(processes)


def _join(processes):
    for process in processes:
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()


def _timed_connect(system, address, pipe):
    """In a new process: connect to the cluster and run one job, timed."""
    try:
        peers.CLASSES[system].import_client_modules()
        pipe.send("ready")
        pipe.recv()
        start = time.perf_counter()
        client = connect(system, address)
        client.gather([client.submit(abs, -1)])
        pipe.send((time.perf_counter() - start) * 1e3)
        client.close()
    except BaseException as exc:
        pipe.send(f"{type(exc).__name__}: {exc}")
        raise


def cold_starts(ctx, system, count):
    """Milliseconds of ``count`` new clients of a running cluster of the
    shared peer ``system``, each from a fresh process."""
    peer = peers.CLASSES[system](ctx.workers, ctx.mp_context)
    try:
        peer.start()
        peer.warm()
        return [_one_connect(system, peer.address) for _ in range(count)]
    finally:
        peers.close_quietly(peer)


def _one_connect(system, address):
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    process = spawn.Process(target=_timed_connect, daemon=True,
                            args=(system, address, theirs))
    process.start()
    try:
        for expected in ("ready", float):
            if not ours.poll(_TIMEOUT):
                raise RuntimeError(f"a new {system} client did not answer")
            answer = ours.recv()
            if expected == "ready" and answer == "ready":
                ours.send("go")
            elif expected is float and isinstance(answer, float):
                return answer
            else:
                raise RuntimeError(f"a new {system} client failed: {answer}")
        raise AssertionError("unreachable")
    finally:
        _join([process])
