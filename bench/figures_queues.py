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
"""

import time

import extrainterpreters

from bench import stats
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
    return result


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
