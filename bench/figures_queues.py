"""Issue 6's figures: the daemon's queues against a plain job and
``multiprocessing.Queue``.

Round trip: one small item client -> job -> client through two queues (a
pool job moves items from one queue to the other), each timed from the
client's ``put`` to its ``get``, taking turns round by round with the
daemon's plain job round trip (``run(abs, -1)``, on the other pool
interpreters) on the same client. Target: within 2 x that job round trip.

Job to job: items/s of small ints from a producer job to a consumer job on
two interpreters through one bounded queue (maxsize 1000), from the first
submit to the consumer's result, against ``multiprocessing.Queue`` (same
bound) between two processes of the anchors' start method. Target: >= 5 x.

Peers with queues of their own (issue 15), the same two ways: Dask's
``distributed.Queue``, Ray's ``ray.util.queue.Queue`` (each an actor or
scheduler call per item: they move ``slow_queue_items`` items and as many
round trips as ``slow_round_trips``), and 3.13's cross-interpreter queues
(``_interpqueues``) between sub-interpreters of this process; the mover and
the jobs are each peer's own jobs. ``multiprocessing.Queue`` also gets the
round trip, through a process that moves items between two such queues.
"""

import contextlib
import time

import extrainterpreters

from bench import peers, stats
from bench.context import measure
import bench_jobs

QUEUE_BOUND = 1000


def queues(ctx):
    s = ctx.settings
    result = {}
    measure(result, "round_trip", _round_trip, ctx)
    items = s.queue_items
    result["items"] = items
    measure(result, "project_job_to_job", _job_to_job, ctx, items)
    measure(result, "multiprocessing_queue", _multiprocessing, ctx, items)
    measure(result, "multiprocessing_round_trip", _multiprocessing_round_trip,
            ctx)
    result["peers"] = {}
    with contextlib.ExitStack() as stack:
        for name, peer in peers.open_peers(ctx, stack, result["peers"],
                                           needs_queue=True).items():
            into = result["peers"][name] = {}
            measure(into, "round_trip", _peer_round_trip, ctx, peer)
            measure(into, "job_to_job", _peer_job_to_job, ctx, peer)
    return result


def _peer_round_trip(ctx, peer):
    """Client -> peer job -> client through two of the peer's queues."""
    s = ctx.settings
    inbox, outbox = peer.make_queue(0), peer.make_queue(0)
    mover = peer.submit(bench_jobs.queue_echo, inbox, outbox)

    def through_queues():
        inbox.put(1)
        outbox.get()

    count = s.slow_round_trips if peer.slow else s.round_trips
    try:
        samples = stats.time_calls(through_queues, count,
                                   warmup=min(s.warmup, count))
        inbox.put(None)
        peer.gather([mover])
    finally:
        peer.close_queue(inbox)
        peer.close_queue(outbox)
    return {"unit": "us", **stats.latency(samples)}


def _peer_job_to_job(ctx, peer):
    """Items/s from a producer job to a consumer job of the peer."""
    s = ctx.settings
    items = s.slow_queue_items if peer.slow else s.queue_items
    samples = []
    for _ in range(s.rounds):
        queue = peer.make_queue(QUEUE_BOUND)
        try:
            start = time.perf_counter()
            consumer = peer.submit(bench_jobs.queue_consume, queue)
            producer = peer.submit(bench_jobs.queue_produce, queue, items)
            got = peer.gather([consumer])[0]
            elapsed = time.perf_counter() - start
            peer.gather([producer])
        finally:
            peer.close_queue(queue)
        if got != items:
            raise RuntimeError(f"the consumer job got {got} items of {items}")
        samples.append(items / elapsed)
    return {"unit": "items/s", "items": items, **stats.spread(samples)}


def _multiprocessing_round_trip(ctx):
    """Client -> process -> client through two ``multiprocessing.Queue``."""
    s = ctx.settings
    mp = ctx.mp_context
    inbox, outbox = mp.Queue(), mp.Queue()
    mover = mp.Process(target=bench_jobs.queue_echo, args=(inbox, outbox))
    mover.start()

    def through_queues():
        inbox.put(1)
        outbox.get()

    try:
        samples = stats.time_calls(through_queues, s.round_trips,
                                   warmup=s.warmup)
    finally:
        inbox.put(None)
        mover.join(60)
    return {"unit": "us", **stats.latency(samples)}


def _round_trip(ctx):
    s = ctx.settings
    with extrainterpreters.Client(ctx.socket_path) as client:
        inbox = extrainterpreters.Queue(client=client)
        outbox = extrainterpreters.Queue(client=client)
        # It holds one pool interpreter; the plain jobs run on the others.
        mover = client.submit(bench_jobs.queue_echo, inbox, outbox)

        def through_queues():
            inbox.put(1)
            outbox.get()

        def plain_job():
            client.run(abs, -1)

        calls = {"queue": through_queues, "job": plain_job}
        for call in calls.values():
            for _ in range(s.warmup):
                call()
        samples = {name: [] for name in calls}
        per_round = max(1, s.round_trips // s.rounds)
        for _ in range(s.rounds):
            for name, call in calls.items():
                samples[name] += stats.time_calls(call, per_round)
        inbox.put(None)
        mover.result(60)
    return {"unit": "us", "project_queue": stats.latency(samples["queue"]),
            "project_job": stats.latency(samples["job"])}


def _job_to_job(ctx, items):
    samples = []
    with extrainterpreters.Client(ctx.socket_path) as client:
        for _ in range(ctx.settings.rounds):
            queue = extrainterpreters.Queue(maxsize=QUEUE_BOUND, client=client)
            start = time.perf_counter()
            consumer = client.submit(bench_jobs.queue_consume, queue)
            producer = client.submit(bench_jobs.queue_produce, queue, items)
            got = consumer.result(300)
            elapsed = time.perf_counter() - start
            producer.result(60)
            if got != items:
                raise RuntimeError(f"the consumer job got {got} items of {items}")
            samples.append(items / elapsed)
    return {"unit": "items/s", **stats.spread(samples)}


def _multiprocessing(ctx, items):
    samples = []
    mp = ctx.mp_context
    for _ in range(ctx.settings.rounds):
        queue = mp.Queue(QUEUE_BOUND)
        consumer_done = mp.Queue()
        start = time.perf_counter()
        consumer = mp.Process(target=_consume_into, args=(queue, consumer_done))
        producer = mp.Process(target=bench_jobs.queue_produce, args=(queue, items))
        consumer.start()
        producer.start()
        got = consumer_done.get(timeout=300)
        elapsed = time.perf_counter() - start
        producer.join(60)
        consumer.join(60)
        if got != items:
            raise RuntimeError(f"the consumer process got {got} items of {items}")
        samples.append(items / elapsed)
    return {"unit": "items/s", **stats.spread(samples)}


def _consume_into(queue, done):
    done.put(bench_jobs.queue_consume(queue))
