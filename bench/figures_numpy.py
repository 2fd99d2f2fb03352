"""Issue 11's figure: numpy work through the daemon's process lane.

Workload: ``numpy_jobs.decimate`` on a ``numpy_signal``-sample float64
array (512 KiB in, 64 KiB out, a few ms of FFT), ``numpy_jobs`` jobs all
submitted at once, then awaited. (Results of 512 KiB each, 400 at once,
got the project's client dropped by its daemon: replies past
``--max-output-buffer``, 64 MiB, while the client was still submitting;
bench/README.md.) jobs/s of the project (``Client.submit``
with no option: the array routes the job to the process lane, which has W
warm worker processes), of a ``ProcessPoolExecutor`` with W workers and of
each peer. A peer that cannot run numpy (sub-interpreters refuse it) is
reported with its error. Round trip: ``numpy_jobs.total`` of an 8-element
array, one at a time, p50/p99. Both take turns round by round.

``process_lane_jobs``: how many jobs the daemon's status counts in its
process lane during the figure, so the JSON shows where the jobs ran.
"""

import concurrent.futures
import contextlib
import time

import extrainterpreters

from bench import peers, turns
from bench.context import failure, measure


def numpy_lane(ctx):
    s = ctx.settings
    try:
        import numpy
        import numpy_jobs
    except ImportError as exc:
        return {"skipped": f"needs numpy, which bench/run.sh installs from "
                           f"bench/requirements.txt ({exc})"}
    signal = numpy.random.default_rng(0).standard_normal(s.numpy_signal)
    tiny = numpy.arange(8)
    result = {"unit": "jobs/s", "job": f"numpy_jobs.decimate({s.numpy_signal} "
              f"float64)", "jobs_per_round": s.numpy_jobs,
              "job_ms_here": _job_ms(numpy_jobs.decimate, signal),
              "round_trip": {"unit": "us", "job": "numpy_jobs.total(arange(8))",
                             "peers": {}},
              "peers": {}}
    latency = result["round_trip"]
    with contextlib.ExitStack() as stack:
        ppe = stack.enter_context(concurrent.futures.ProcessPoolExecutor(
            ctx.workers, mp_context=ctx.mp_context))
        ppe.submit(abs, -1).result()  # forks its workers before any peer
        systems = {"process_pool": (result, latency, ppe.submit, _results)}
        for name, peer in peers.open_peers(ctx, stack, result["peers"]).items():
            systems[name] = (result["peers"], latency["peers"], peer.submit,
                             peer.gather)
        client = stack.enter_context(extrainterpreters.Client(ctx.socket_path))
        systems["project"] = (result, latency, client.submit, _results)
        jobs_before = _process_lane_jobs(client)
        rates, calls = [], []
        for name, (into, into_latency, submit, gather) in systems.items():
            if not _runs_numpy(into, name, submit, gather, tiny, numpy_jobs):
                into_latency[name] = into[name]
                continue
            rates.append(turns.Rate(into, name, s.numpy_jobs, _burst(
                submit, gather, numpy_jobs.decimate, signal)))
            calls.append(turns.Latency(
                into_latency, name, _one(submit, gather, numpy_jobs.total, tiny),
                slow=name in ("dask", "ray")))
        turns.rate_rounds(rates, s.rounds, warmup_jobs=4 * ctx.workers)
        turns.latency_rounds(calls, s)
        measure(result, "process_lane_jobs",
                lambda: _process_lane_jobs(client) - jobs_before)
    return result


def _results(futures):
    return [future.result() for future in futures]


def _burst(submit, gather, fn, arg):
    return lambda jobs: gather([submit(fn, arg) for _ in range(jobs)])


def _one(submit, gather, fn, arg):
    return lambda: gather([submit(fn, arg)])[0]


def _runs_numpy(into, name, submit, gather, tiny, numpy_jobs):
    """Whether ``name`` runs a numpy job; if not, ``into[name]`` says why."""
    try:
        if gather([submit(numpy_jobs.total, tiny)])[0] != int(tiny.sum()):
            raise RuntimeError("wrong result")
        return True
    except Exception as exc:  # noqa: BLE001 -- reported, not hidden
        # A peer may be unable to (sub-interpreters refuse numpy); the
        # project and its anchor must, so theirs is a failed measurement.
        anchor = name in ("project", "process_pool")
        into[name] = failure(exc) if anchor else peers.unavailable(exc)
        return False


def _job_ms(fn, arg, repeats=20):
    """One job's time in this process, for scale."""
    fn(arg)
    start = time.perf_counter()
    for _ in range(repeats):
        fn(arg)
    return round((time.perf_counter() - start) / repeats * 1e3, 3)


def _process_lane_jobs(client):
    return client.status(timeout=10)["lanes"]["process"]["jobs"]
