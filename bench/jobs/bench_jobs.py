"""Job functions for the benchmark, run by the daemon and by the anchors.

``bench/run.sh`` puts this file's directory on the daemon's
``--python-path``, so functions pickled here as ``bench_jobs.<name>`` import
in every sub-interpreter; ``ProcessPoolExecutor`` workers and threads run
the very same functions. Standard library only, nothing at import time.
"""

import os


def spin(iterations):
    """Pure-Python CPU work: holds its GIL for the whole loop."""
    total = 0
    for i in range(iterations):
        total = (total + i * i) % 1_000_003
    return total


def nbytes(data):
    """The size of a (large) argument: data goes in, a small int comes out."""
    return len(data)


def make_bytes(size):
    """A (large) result: a small int goes in, ``size`` bytes come out."""
    return bytes(size)


def call(fn, *args):
    """``fn(*args)``: lets Ray, which runs Python functions only, run a
    builtin such as ``abs``."""
    return fn(*args)


def getpid():
    """The process the job runs in (for memory figures)."""
    return os.getpid()


def queue_echo(inbox, outbox):
    """Moves items from inbox to outbox until it gets None (queue round trip)."""
    moved = 0
    while (item := inbox.get()) is not None:
        outbox.put(item)
        moved += 1
    return moved


def queue_produce(queue, count):
    """Puts 0..count-1, then None. Works with any queue.Queue-like object."""
    for i in range(count):
        queue.put(i)
    queue.put(None)


def queue_consume(queue):
    """Gets items until None; returns how many came before it."""
    count = 0
    while queue.get() is not None:
        count += 1
    return count
