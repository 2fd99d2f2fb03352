"""End-to-end tests of queues in the daemon (PROTOCOL.md, "Queues") through
``extrainterpreters.Queue`` and ``extrainterpretersctl queues``.

Blocked calls are synchronised on what the daemon reports (a queue's
waiters, through ``queue_info``) and on thread joins, never on sleeps.
"""

import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import jobs  # noqa: E402

import extrainterpreters  # noqa: E402
from extrainterpreters import Queue, RemoteError  # noqa: E402

RUN_TIMEOUT = 120.0

PRODUCER = """
import sys
from extrainterpreters import Queue
q = Queue.open(sys.argv[2], socket_path=sys.argv[1])
for i in range(int(sys.argv[3])):
    q.put(i)
q.put(None)
"""

# Puts functions and classes of its __main__ (shipped by value), which
# this process cannot import, then waits for the consumer's verdict.
BY_VALUE_PRODUCER = """
import sys
from extrainterpreters import Queue
q = Queue.open(sys.argv[2], socket_path=sys.argv[1])
SCALE = 3
def triple(x):
    return x * SCALE
class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y
    def norm2(self):
        return self.x ** 2 + self.y ** 2
def adder(n):
    return lambda x: x + n
q.put({"lambda": lambda x: triple(x) + 1, "closure": adder(5), "point": Point(3, 4),
       "class": Point})
q.put(lambda x: x * 2)
"""

# Gets a function another process put, calls it and prints the result.
BY_VALUE_CONSUMER = """
import sys
from extrainterpreters import Queue
q = Queue.open(sys.argv[2], socket_path=sys.argv[1])
fn = q.get(timeout=60)
print(fn(21))
"""

BLOCKED_GETTER = """
import sys
from extrainterpreters import Queue
q = Queue.open(sys.argv[2], socket_path=sys.argv[1])
q.get()
"""

# Makes an anonymous queue, says its id, and blocks on it.
BLOCKED_ON_OWN_QUEUE = """
import sys
from extrainterpreters import Queue
q = Queue(socket_path=sys.argv[1])
print(q._id, flush=True)
q.get()
"""


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def python(daemon, code, *args):
    env = dict(os.environ, PYTHONPATH=harness.client_pythonpath())
    return subprocess.Popen([sys.executable, "-c", code, daemon.socket_path, *args],
                            env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Getter(threading.Thread):
    """Calls ``q.get(**kwargs)`` on its own thread; keeps the result or error."""

    def __init__(self, q, **kwargs):
        super().__init__(daemon=True)
        self.q, self.kwargs = q, kwargs
        self.value = self.error = None

    def run(self):
        try:
            self.value = self.q.get(**self.kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def wait_for_waiters(q, count):
    harness.wait_until(lambda: q.info()["waiters"] == count,
                       message=f"{count} waiters on {q!r}")


class QueueTest(harness.DaemonTestCase):

    def test_round_trip_of_various_items(self):
        q = Queue(client=self.client)
        items = [None, 0, -7, 2**100, 1.5, "text", "\u00e9t\u00e9", b"\x00bytes",
                 bytearray(b"ba"), [1, [2]], (1, "a"), {"k": {1, 2}},
                 frozenset({3}), b"x" * (1 << 20), ValueError("boom")]
        for item in items:
            q.put(item)
        self.assertEqual(q.qsize(), len(items))
        self.assertFalse(q.empty())
        for item in items[:-1]:
            self.assertEqual(q.get(), item)
        error = q.get_nowait()
        self.assertIsInstance(error, ValueError)
        self.assertEqual(error.args, ("boom",))
        self.assertTrue(q.empty())

    def test_fifo_between_two_processes_through_a_bounded_queue(self):
        name = unique("fifo")
        q = Queue.create(name, maxsize=50, client=self.client)
        self.addCleanup(q.delete)
        count = 10000
        producer = python(self.daemon, PRODUCER, name, str(count))
        got = []
        while (item := q.get(timeout=RUN_TIMEOUT)) is not None:
            got.append(item)
        out, err = producer.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(producer.returncode, 0, err)
        self.assertEqual(got, list(range(count)))

    def test_blocking_get_answered_by_a_put_from_another_client(self):
        name = unique("handoff")
        q = Queue.create(name, client=self.client)
        self.addCleanup(q.delete)
        getter = Getter(q)
        getter.start()
        wait_for_waiters(q, 1)
        other = Queue.open(name, client=self.daemon.client(self))
        started = time.monotonic()
        other.put("hello")
        getter.join(RUN_TIMEOUT)
        self.assertIsNone(getter.error)
        self.assertEqual(getter.value, "hello")
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(q.info()["size"], 0)  # handed over, never stored
        # The client served others while the get was blocked.
        self.client.ping(timeout=RUN_TIMEOUT)

    def test_get_timeout_and_nowait_raise_empty(self):
        q = Queue(client=self.client)
        with self.assertRaises(queue.Empty):
            q.get_nowait()
        started = time.monotonic()
        with self.assertRaises(queue.Empty) as caught:
            q.get(timeout=0.2)
        self.assertGreaterEqual(time.monotonic() - started, 0.2)
        self.assertIn("stayed empty", str(caught.exception))
        self.assertEqual(q.info()["waiters"], 0)
        with self.assertRaises(ValueError):
            q.get(timeout=-1)

    def test_full_queue(self):
        q = Queue(maxsize=1, client=self.client)
        q.put(1)
        self.assertTrue(q.full())
        with self.assertRaises(queue.Full):
            q.put_nowait(2)
        with self.assertRaises(queue.Full):
            q.put(2, timeout=0.2)
        self.assertEqual(q.info()["waiters"], 0)
        putter = threading.Thread(target=q.put, args=(2,), daemon=True)
        putter.start()
        wait_for_waiters(q, 1)
        self.assertEqual(q.get(), 1)
        putter.join(RUN_TIMEOUT)
        self.assertFalse(putter.is_alive())
        self.assertEqual(q.get_nowait(), 2)

    def test_named_queue_opened_from_another_connection(self):
        name = unique("named")
        q = Queue.create(name, maxsize=7, client=self.client)
        self.addCleanup(q.delete)
        other = Queue.open(name, client=self.daemon.client(self))
        self.assertEqual(other.maxsize, 7)
        other.put({"from": "other"})
        self.assertEqual(q.get(), {"from": "other"})
        with self.assertRaises(RemoteError) as caught:
            Queue.create(name, client=self.client)
        self.assertEqual(caught.exception.code, "queue_exists")
        with self.assertRaises(RemoteError) as caught:
            Queue.open(unique("missing"), client=self.client)
        self.assertEqual(caught.exception.code, "unknown_queue")

    def test_anonymous_queue_goes_with_its_connection(self):
        owner = self.daemon.client(self)
        q = Queue(client=owner)
        waiting = Queue._attach(q._id, client=self.client)
        getter = Getter(waiting)
        getter.start()
        wait_for_waiters(q, 1)
        owner.close()
        getter.join(RUN_TIMEOUT)
        self.assertIsInstance(getter.error, RemoteError)
        self.assertEqual(getter.error.code, "queue_gone")
        self.assertIn("which created it, closed", str(getter.error))
        with self.assertRaises(RemoteError) as caught:
            waiting.qsize()
        self.assertEqual(caught.exception.code, "unknown_queue")

    def test_client_killed_while_blocked_leaves_no_waiter(self):
        name = unique("killed")
        q = Queue.create(name, client=self.client)
        self.addCleanup(q.delete)
        child = python(self.daemon, BLOCKED_GETTER, name)
        self.addCleanup(child.communicate)
        wait_for_waiters(q, 1)
        child.send_signal(signal.SIGKILL)
        child.wait(RUN_TIMEOUT)
        wait_for_waiters(q, 0)
        q.put("still served")
        self.assertEqual(q.get(), "still served")
        self.assertEqual(self.daemon.process.poll(), None)

    def test_a_killed_clients_anonymous_queue_is_gone(self):
        child = python(self.daemon, BLOCKED_ON_OWN_QUEUE)
        self.addCleanup(child.communicate)
        q = Queue._attach(int(child.stdout.readline()), client=self.client)
        wait_for_waiters(q, 1)
        child.send_signal(signal.SIGKILL)
        child.wait(RUN_TIMEOUT)

        harness.wait_until(lambda: not harness.queue_exists(q),
                           message=f"{q!r} to go with its killed owner")
        self.assertEqual(self.client.status()["queues"]["waiters"], 0)
        self.assertIsNone(self.daemon.process.poll())

    def test_by_value_functions_cross_processes(self):
        name = unique("byvalue")
        q = Queue.create(name, client=self.client)
        self.addCleanup(q.delete)
        producer = python(self.daemon, BY_VALUE_PRODUCER, name)
        out, err = producer.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(producer.returncode, 0, err)  # gone: items outlive it
        item = q.get(timeout=RUN_TIMEOUT)
        self.assertEqual(item["lambda"](4), 13)  # its global helper and SCALE came too
        self.assertEqual(item["closure"](1), 6)
        self.assertEqual(item["point"].norm2(), 25)
        self.assertIsInstance(item["point"], item["class"])
        self.assertEqual(item["class"](1, 1).norm2(), 2)
        self.assertEqual(q.get(timeout=RUN_TIMEOUT)(8), 16)
        # And the other way: a lambda of this process, called by another.
        q.put(lambda x: f"doubled {x * 2}")
        consumer = python(self.daemon, BY_VALUE_CONSUMER, name)
        out, err = consumer.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(consumer.returncode, 0, err)
        self.assertEqual(out, "doubled 42\n")

    def test_by_value_item_unpickles_in_a_job(self):
        q = Queue(client=self.client)
        offset = 100
        payload = q._dump_item({"fn": lambda x: x + offset})
        self.assertEqual(self.client.run(jobs.call_item, payload, "fn", 1), 101)

    def test_items_that_do_not_pickle_or_unpickle_say_so(self):
        q = Queue(client=self.client)
        with self.assertRaises(pickle.PicklingError) as caught:
            q.put({"lock": threading.Lock()})
        self.assertIn("cannot put a dict into <extrainterpreters.Queue", str(caught.exception))
        self.assertIn("lock", str(caught.exception))
        raw = harness.RawConnection(self.daemon.socket_path, timeout=RUN_TIMEOUT)
        self.addCleanup(raw.close)
        raw.hello()
        raw.send({"type": "queue_put", "id": 2, "queue": q._id}, b"not a pickle")
        self.assertEqual(raw.read_reply(2)["type"], "queue_put")
        with self.assertRaises(pickle.UnpicklingError) as caught:
            q.get()
        self.assertIn("does not unpickle here (12 bytes", str(caught.exception))

    def test_deleted_queue_is_gone(self):
        q = Queue(client=self.client)
        q.delete()
        with self.assertRaises(RemoteError) as caught:
            q.put(1)
        self.assertEqual(caught.exception.code, "unknown_queue")


class QueueLimitsTest(harness.DaemonTestCase):
    workers = 1
    daemon_args = ("--max-queues", "2", "--max-queue-items", "3",
                   "--max-queue-bytes", "2000")

    def test_limits_are_announced(self):
        limits = self.client.hello["limits"]
        self.assertEqual((limits["max_queues"], limits["max_queue_items"],
                          limits["max_queue_bytes"]), (2, 3, 2000))

    def test_items_bytes_and_queues(self):
        by_items = Queue(client=self.client)
        for i in range(3):
            by_items.put_nowait(i)
        with self.assertRaises(queue.Full) as caught:
            by_items.put_nowait(3)
        self.assertIn("at most 3", str(caught.exception))
        by_bytes = Queue(client=self.client)
        by_bytes.put(b"x" * 1500)
        with self.assertRaises(queue.Full):
            by_bytes.put(b"y" * 1000, timeout=0.1)
        with self.assertRaises(RemoteError) as caught:
            by_bytes.put(b"z" * 3000)
        self.assertEqual(caught.exception.code, "item_too_large")
        with self.assertRaises(RemoteError) as caught:
            Queue(client=self.client)
        self.assertEqual(caught.exception.code, "queue_limit")
        by_bytes.delete()
        with self.assertRaises(extrainterpreters.ProtocolError):
            Queue(maxsize=4, client=self.client)  # past max_queue_items
        self.assertEqual(by_items.get(), 0)


class QueueIdleTest(harness.DaemonTestCase):
    daemon_args = ("--idle-timeout", "0.3")

    def test_a_blocked_get_is_not_idle(self):
        q = Queue(client=self.client)
        with self.assertRaises(queue.Empty):
            q.get(timeout=1.0)  # past idle_timeout, still answered
        q.put(1)
        self.assertEqual(q.get(), 1)


class QueueCliTest(harness.DaemonTestCase):

    def ctl(self, *args):
        ctl = harness.built_binary("extrainterpretersctl", "EI_CTL")
        return subprocess.run([ctl, "--socket", self.daemon.socket_path, *args],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=RUN_TIMEOUT)

    def test_queues_table_and_status_line(self):
        name = unique("cli")
        named = Queue.create(name, maxsize=9, client=self.client)
        self.addCleanup(named.delete)
        named.put("a")
        anonymous = Queue(client=self.client)
        getter = Getter(anonymous)
        getter.start()
        wait_for_waiters(anonymous, 1)
        result = self.ctl("queues")
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertRegex(lines[0], r"^QUEUE\s+NAME OR OWNER\s+SIZE\s+MAXSIZE\s+BYTES\s+WAITERS")
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        self.assertEqual(rows[str(named._id)][1:4], [name, "1", "9"])
        self.assertEqual(rows[str(anonymous._id)][-1], "1")
        self.assertEqual(rows[str(anonymous._id)][1], "(connection")
        status = self.ctl("status")
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertRegex(status.stdout, r"(?m)^queues\s+2 queues, 1 blocked puts and gets$")
        anonymous.put("done")
        getter.join(RUN_TIMEOUT)
        self.assertEqual(getter.value, "done")
        document = self.client.status()["queues"]
        self.assertEqual(document["count"], 2)
        self.assertEqual({q["id"] for q in document["list"]}, {named._id, anonymous._id})


if __name__ == "__main__":
    unittest.main()
