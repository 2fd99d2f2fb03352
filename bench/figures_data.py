"""Figures 4 and 6: large data, and memory per warm idle interpreter.

Large data: ``bench_jobs.nbytes(payload)`` with a ``data_bytes`` argument
(client to worker) and ``bench_jobs.make_bytes(n)`` returning as many bytes
(worker to client), each timed from the call to its value, after one
untimed transfer each way; MB/s with MB = 10^6 bytes. Anchors: a warm
``ProcessPoolExecutor``, the raw socket (one process writes, another reads
it all and answers one byte) and ``memcpy``, both from the C++ tool.

Memory: the daemon's RSS and PSS (``/proc/PID/smaps_rollup``) with its
pool and spare idle, then with ``memory_leases`` more interpreters leased
(each ran one trivial job, then idles) and the spare replaced; the growth
per interpreter. Anchor: one ``ProcessPoolExecutor`` worker made by a
fresh Python that imports nothing else, measured the same way.
"""

import concurrent.futures
import contextlib
import inspect
import json
import os
import subprocess
import sys
import time

import bench_jobs
import extrainterpreters

from bench import peers, stats
from bench.context import measure

_SETTLE_TIMEOUT = 60.0


def _mbps(size, seconds_list):
    return stats.spread([size / seconds / 1e6 for seconds in seconds_list])


def _timed(call, repeats):
    call()  # warm: buffers grown, pages faulted in
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def _check(value, size):
    """Raise unless ``value`` is ``size`` or has ``size`` bytes."""
    got = value if isinstance(value, int) else len(value)
    if got != size:
        raise RuntimeError(f"wrong result: {got} instead of {size}")


def large_data(ctx):
    s = ctx.settings
    size = s.data_bytes
    payload = bytes(size)
    result = {"unit": "MB/s", "bytes": size}

    def project(direction):
        with extrainterpreters.Client(ctx.socket_path) as client:
            if direction == "arg":
                call = lambda: _check(client.run(bench_jobs.nbytes, payload), size)  # noqa: E731
            else:
                call = lambda: _check(client.run(bench_jobs.make_bytes, size), size)  # noqa: E731
            return _mbps(size, _timed(call, s.data_repeats))

    def process_pool(direction):
        with concurrent.futures.ProcessPoolExecutor(
                ctx.workers, mp_context=ctx.mp_context) as executor:
            if direction == "arg":
                call = lambda: _check(executor.submit(bench_jobs.nbytes, payload).result(), size)  # noqa: E731
            else:
                call = lambda: _check(executor.submit(bench_jobs.make_bytes, size).result(), size)  # noqa: E731
            return _mbps(size, _timed(call, s.data_repeats))

    def tool(mode):
        summary = ctx.raw(mode, bytes=size, repeats=max(s.data_repeats, 3))
        return {"median": summary["p50"], "min": summary["min"],
                "max": summary["max"]}

    measure(result, "project_arg", project, "arg")
    measure(result, "project_result", project, "result")
    measure(result, "process_pool_arg", process_pool, "arg")
    measure(result, "process_pool_result", process_pool, "result")
    with contextlib.ExitStack() as stack:  # after PPE forked, as elsewhere
        result["peers"] = {}
        for name, peer in peers.open_peers(ctx, stack,
                                           result["peers"]).items():
            into = result["peers"][name] = {}
            measure(into, "arg", _peer_transfer, peer, "arg", size,
                    s.data_repeats, payload)
            measure(into, "result", _peer_transfer, peer, "result", size,
                    s.data_repeats, payload)
    measure(result, "raw_socket", tool, "bulk")
    measure(result, "memcpy", tool, "memcpy")
    return result


def _peer_transfer(peer, direction, size, repeats, payload):
    if direction == "arg":
        call = lambda: _check(peer.call(bench_jobs.nbytes, payload), size)  # noqa: E731
    else:
        call = lambda: _check(peer.call(bench_jobs.make_bytes, size), size)  # noqa: E731
    return _mbps(size, _timed(call, repeats))


def smaps_rollup(pid):
    """``{"rss_kib": n, "pss_kib": n}`` of a live process."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
        for line in rollup:
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss"):
                fields[name.lower() + "_kib"] = int(rest.split()[0])
    if len(fields) != 2:
        raise RuntimeError(f"/proc/{pid}/smaps_rollup has no Rss/Pss")
    return fields


def _settled(client, interpreters):
    """Wait until ``interpreters`` live interpreters are all idle."""
    deadline = time.monotonic() + _SETTLE_TIMEOUT
    while True:
        workers = client.status(timeout=10)["workers"]
        if (len(workers) == interpreters
                and all(w["state"] == "idle" for w in workers)):
            return
        if time.monotonic() > deadline:
            states = [(w["kind"], w["state"]) for w in workers]
            raise RuntimeError(f"interpreters did not settle: {states}")
        time.sleep(0.02)


# Run by a fresh ``python -I``: the worker it forks has nothing else loaded.
_PPE_WORKER_MEMORY = """
import concurrent.futures, json, multiprocessing, os, time
{smaps_rollup}
context = multiprocessing.get_context({method!r})
with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as executor:
    pid = executor.submit(os.getpid).result()
    time.sleep(0.2)
    print(json.dumps(smaps_rollup(pid)))
"""


def memory(ctx):
    s = ctx.settings
    result = {"unit": "KiB", "leases": s.memory_leases}

    def project():
        rss, pss, samples = [], [], []
        with extrainterpreters.Client(ctx.socket_path) as client:
            baseline = len(client.status(timeout=10)["workers"])
            for _ in range(s.memory_rounds):
                _settled(client, baseline)
                time.sleep(0.2)
                before = smaps_rollup(ctx.daemon_pid)
                leased = [extrainterpreters.Interpreter(client=client)
                          for _ in range(s.memory_leases)]
                try:
                    for interp in leased:
                        interp.run(abs, -1)
                    _settled(client, baseline + s.memory_leases)
                    time.sleep(0.2)
                    after = smaps_rollup(ctx.daemon_pid)
                finally:
                    for interp in leased:
                        interp.close()
                rss.append((after["rss_kib"] - before["rss_kib"])
                           / s.memory_leases)
                pss.append((after["pss_kib"] - before["pss_kib"])
                           / s.memory_leases)
                samples.append({"before": before, "after": after})
            _settled(client, baseline)
        return {"rss_kib_per_interpreter": stats.spread(rss),
                "pss_kib_per_interpreter": stats.spread(pss),
                "daemon": samples}

    def process_pool_worker():
        code = _PPE_WORKER_MEMORY.format(
            smaps_rollup=inspect.getsource(smaps_rollup),
            method=ctx.mp_context.get_start_method())
        done = subprocess.run([sys.executable, "-I", "-c", code],
                              capture_output=True, text=True, timeout=60,
                              check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the measuring Python failed: "
                               f"{done.stderr.strip()[-500:]}")
        return json.loads(done.stdout)

    measure(result, "project", project)
    measure(result, "process_pool_worker", process_pool_worker)
    result["peers"] = {}
    for name in peers.ALL:
        if name not in ctx.peers:
            continue
        reason = peers.skip_reason(name, s.mode)
        if reason:
            result["peers"][name] = {"skipped": reason}
        else:
            measure(result["peers"], name, _peer_memory, ctx, name)
    return result


def _peer_memory(ctx, name):
    """``bench.peer_memory`` for one peer, in a fresh process."""
    # This process's path, but Ray's environment, which only Ray's own
    # processes get (peers.RAY_PATH); the script adds it for Ray.
    path = [p for p in sys.path if p and p != peers.RAY_PATH]
    done = subprocess.run(
        [sys.executable, "-m", "bench.peer_memory", name, str(ctx.workers),
         ctx.mp_context.get_start_method(), peers.RAY_PATH],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path)})
    if done.returncode != 0:
        raise RuntimeError(f"measuring {name} failed: "
                           f"{done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
