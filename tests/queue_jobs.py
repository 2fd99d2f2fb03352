"""Jobs that use extrainterpreters.Queue from inside the daemon, for
queue_jobs_e2e_test. The daemon imports this module from the tests
directory (--python-path); `extrainterpreters` is the daemon's own copy.
"""

import sys

import extrainterpreters
from extrainterpreters import Queue
from jobs import interpreter_id


def where_from():
    """Where this job's extrainterpreters came from, and whether its queues
    go through a socket (they must not)."""
    from extrainterpreters import _queue_local
    return (extrainterpreters.__spec__.origin, _queue_local.inside_daemon(),
            "socket" in sys.modules and "extrainterpreters._client" in sys.modules)


def report_then_work(progress, control, steps):
    """Streams progress: says it started, waits for the go-ahead, then
    reports each step while it runs."""
    progress.put(("started", interpreter_id()))
    if control.get() != "go":
        raise ValueError("expected 'go'")
    for step in range(steps):
        progress.put(("step", step))
    return "finished"


def produce(queue, count):
    for i in range(count):
        queue.put(i)
    return interpreter_id()


def consume_in_order(queue, count):
    """Takes `count` items; returns (interpreter, items seen, first item out
    of order or None)."""
    for expected in range(count):
        item = queue.get()
        if item != expected:
            return interpreter_id(), expected, item
    return interpreter_id(), count, None


def fan_out_worker(ready, work, done_marker):
    """Says it is ready, then takes work items until `done_marker`."""
    ready.put(interpreter_id())
    taken = []
    while True:
        item = work.get()
        if item == done_marker:
            return interpreter_id(), taken
        taken.append(item * item)


def get_one(queue, timeout=None):
    return queue.get(timeout=timeout)


def put_one(queue, item, timeout=None):
    queue.put(item, timeout=timeout)
    return "stored"


def get_catching_everything(queue):
    """Swallows even the stop exception once, then waits again: a job that
    fights its cancellation gets it again at once, at the next wait."""
    try:
        return queue.get()
    except BaseException as first:
        try:
            queue.get()
        except BaseException as second:
            return type(first).__name__, type(second).__name__
    return "not stopped"


def nonblocking(queue):
    """queue.Empty / queue.Full inside a job, as in the standard library."""
    import queue as stdlib_queue
    results = []
    try:
        queue.get_nowait()
    except stdlib_queue.Empty as exc:
        results.append(("empty", str(exc)))
    queue.put_nowait("a")
    try:
        queue.put(item="b", block=True, timeout=0.01)
    except stdlib_queue.Full as exc:
        results.append(("full", str(exc)))
    results.append(("size", queue.qsize(), queue.full(), queue.empty()))
    results.append(("got", queue.get_nowait()))
    return results


def make_named(name, maxsize):
    queue = Queue.create(name, maxsize)
    queue.put("made in a job")
    return queue


def make_anonymous():
    queue = Queue()
    queue.put("anonymous, from a job")
    return queue


def open_missing(name):
    return Queue.open(name)


class Count(int):
    """An int subclass: a queue must give it back as itself."""


def plain_and_near_plain():
    """Items that a job's put pickles in the daemon (None, bool, 64-bit int,
    float, bytes, str, tuples of up to 16 of them), the values at each
    encoding's edges, and items just outside: a bigger int, subclasses, a
    lone surrogate, longer or nested tuples, a repeated string (pickle
    refers back to its memo), other containers."""
    values = [None, True, False, 0, 1, 255, 256, 65535, 65536, -1, -128, -129,
              -256, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32, 2**40 + 7,
              -2**40, 2**63 - 1, -2**63, 2**63, -2**63 - 1, 10**30, 0.0, -0.0,
              1.5, -2.25e300, float("inf"), float("-inf"), float("nan"),
              b"", b"x", b"y" * 255, b"z" * 256, b"w" * 70_000, "", "e", "é",
              "漢字" * 100, "a" * 70_000, "\ud800 lone", Count(5), bytearray(b"ab"),
              (), (1,), (b"x",), ("step", 3), (None, True, 1.5, -2**63, "é"),
              tuple(range(16)), tuple(range(17)), ("a", "a"), ((1, 2), 3),
              (Count(1),), (bytearray(b"c"),), [3], {"k": 4},
              # many empty tuples fill the daemon's reading stack
              ((),) * 33, tuple(range(32)) + ((),), ((),) * 1000]
    return values


def put_items(queue, items):
    for item in items:
        queue.put(item)
    return len(items)


def put_pickles(queue, items):
    """Each item pickled by pickle itself, in every protocol, put as is."""
    import pickle
    from extrainterpreters import _queue_local
    count = 0
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        for item in items:
            _queue_local.queue_put(queue._id, pickle.dumps(item, protocol), True, None)
            count += 1
    return count


def get_items(queue, count):
    return [queue.get() for _ in range(count)]


def put_raw_then_get(queue, pickles):
    """Puts each byte string as an item's pickle and gets it back: the
    value, or the name of the error its unpickling raised."""
    from extrainterpreters import _queue_local
    outcomes = []
    for data in pickles:
        _queue_local.queue_put(queue._id, data, True, None)
        try:
            outcomes.append(queue.get())
        except Exception as exc:  # noqa: BLE001 - the outcome is the test's
            outcomes.append(type(exc).__name__)
    return outcomes
