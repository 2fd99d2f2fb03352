"""End-to-end tests of withdrawing queue waits (PROTOCOL.md, "Withdrawing
a wait: queue_cancel"): the daemon's side through a raw connection, and
``extrainterpreters.Queue`` interrupted while it waits.

An interruption is a signal handler raising in the main thread, which is
waiting in ``get``/``put``, as Ctrl-C does. The race where the daemon's
answer crosses the interruption is made deterministic by holding the
client's read lock: the answer sits unread in the socket until the signal
handler lets the reader go. Every step is synchronised on what the daemon
reports (``queue_info``), never on sleeps.
"""

import contextlib
import os
import queue
import signal
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

from extrainterpreters import Queue  # noqa: E402

WAIT = 60.0


class Interrupted(BaseException):
    """What the test's SIGINT handler raises in the waiting thread."""


def wait_for(q, **expected):
    """Wait until ``q.info()`` has every ``key=value`` of ``expected``."""
    harness.wait_until(
        lambda: all(q.info()[k] == v for k, v in expected.items()),
        timeout=WAIT, message=f"{expected} on {q!r}")


class QueueCancelProtocolTest(harness.DaemonTestCase):
    """queue_cancel and front puts, frame by frame."""

    def connect(self):
        conn = harness.RawConnection(self.daemon.socket_path, timeout=WAIT)
        self.addCleanup(conn.close)
        conn.hello()
        return conn

    def test_withdrawn_get_is_answered_cancelled_and_takes_nothing(self):
        conn = self.connect()
        q = conn.request("queue_create", name=None, maxsize=0)["queue"]
        conn.send({"type": "queue_get", "id": 7, "queue": q, "block": True})
        conn.send({"type": "queue_cancel", "id": 8, "request": 7})
        withdrawn = conn.read_frame().header
        self.assertEqual((withdrawn["type"], withdrawn["id"], withdrawn["code"]),
                         ("error", 7, "cancelled"))
        self.assertIn("withdrawn by queue_cancel 8", withdrawn["message"])
        self.assertEqual(conn.read_frame().header,
                         {"type": "queue_cancel", "id": 8, "request": 7,
                          "state": "withdrawn"})
        self.assertEqual(conn.request("queue_info", queue=q)["waiters"], 0)
        conn.send({"type": "queue_put", "id": 9, "queue": q}, b"item")
        self.assertEqual(conn.read_reply(9)["type"], "queue_put")
        self.assertEqual(conn.request("queue_info", queue=q)["size"], 1)

    def test_withdrawn_put_never_stores_its_item(self):
        conn = self.connect()
        q = conn.request("queue_create", name=None, maxsize=1)["queue"]
        conn.send({"type": "queue_put", "id": 7, "queue": q}, b"first")
        conn.read_reply(7)
        conn.send({"type": "queue_put", "id": 8, "queue": q, "timeout": 600}, b"second")
        conn.send({"type": "queue_cancel", "id": 9, "request": 8})
        self.assertEqual(conn.read_reply(8)["code"], "cancelled")
        self.assertEqual(conn.read_reply(9)["state"], "withdrawn")
        info = conn.request("queue_info", queue=q)
        self.assertEqual((info["size"], info["waiters"]), (1, 0))

    def test_cancel_after_the_answer_is_unknown_and_front_put_returns_it(self):
        conn, other = self.connect(), self.connect()
        q = conn.request("queue_create", name="cancel-race-" + os.urandom(4).hex(),
                         maxsize=1)["queue"]
        conn.send({"type": "queue_get", "id": 7, "queue": q, "block": True})
        harness.wait_until(lambda: other.request("queue_info", queue=q)["waiters"] == 1,
                           timeout=WAIT, message="a waiting get")
        other.send({"type": "queue_put", "id": 5, "queue": q}, b"handed")
        other.read_reply(5)
        other.send({"type": "queue_put", "id": 6, "queue": q}, b"stored")
        other.read_reply(6)  # the queue is full now: maxsize 1
        conn.send({"type": "queue_cancel", "id": 8, "request": 7})
        self.assertEqual(conn.read_reply(7)["type"], "queue_get")  # answered first
        self.assertEqual(conn.read_reply(8)["state"], "unknown")
        conn.send({"type": "queue_put", "id": 9, "queue": q, "front": True}, b"handed")
        self.assertEqual(conn.read_reply(9)["type"], "queue_put")  # past maxsize
        info = conn.request("queue_info", queue=q)
        self.assertEqual((info["size"], info["maxsize"]), (2, 1))
        for expected in (b"handed", b"stored"):
            conn.send({"type": "queue_get", "id": 10, "queue": q, "block": False})
            while True:
                frame = conn.read_frame()
                if frame.header["id"] == 10:
                    break
            self.assertEqual(frame.payload, expected)
        self.assertEqual(conn.request("queue_cancel", request=12345)["state"], "unknown")
        self.assertEqual(conn.request("queue_cancel", request="7")["code"], "bad_request")
        self.assertEqual(conn.request("queue_put", queue=q, front=1)["code"], "bad_request")


class QueueInterruptTest(harness.DaemonTestCase):
    """Queue.get / Queue.put interrupted in the main thread."""

    def setUp(self):
        super().setUp()
        self.other = self.daemon.client(self)  # another connection, never held
        self.release = None  # set by tests that hold the client's read lock

        def interrupt(signum, frame):
            if self.release is not None:
                self.release()
                self.release = None
            raise Interrupted(f"signal {signum}")

        previous = signal.signal(signal.SIGINT, interrupt)
        self.addCleanup(signal.signal, signal.SIGINT, previous)

    def helper(self, steps):
        """Run ``steps`` on a thread, then interrupt the main thread."""
        errors = []

        def run():
            try:
                steps()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.addCleanup(lambda: self.assertEqual(errors, []))
        self.addCleanup(thread.join, WAIT)
        return thread

    @contextlib.contextmanager
    def answers_held(self):
        """Keep the client from reading replies until the signal handler
        runs, so the daemon's answer crosses the interruption."""
        self.client._connection._read_lock.acquire()
        self.release = self.client._connection._read_lock.release
        try:
            yield
        finally:
            if self.release is not None:
                self.release()
                self.release = None

    def test_interrupted_get_is_withdrawn_and_a_later_item_reaches_the_next_get(self):
        q = Queue(client=self.client)
        seen = Queue._attach(q._id, client=self.other)
        self.helper(lambda: wait_for(seen, waiters=1))
        with self.assertRaises(Interrupted):
            q.get()
        self.assertEqual(seen.info()["waiters"], 0)  # withdrawn before raising
        seen.put("after")
        self.assertEqual(seen.info()["size"], 1)  # stored, not handed to the gone get
        self.assertEqual(q.get(timeout=WAIT), "after")

    def test_item_answering_an_interrupted_get_goes_back_to_the_front(self):
        q = Queue(maxsize=1, client=self.client)
        seen = Queue._attach(q._id, client=self.other)

        def steps():
            wait_for(seen, waiters=1)
            seen.put("handed")
            wait_for(seen, waiters=0, size=0)  # handed to the held get
            seen.put("stored")  # the queue is full now

        with self.answers_held():
            self.helper(steps)
            with self.assertRaises(Interrupted) as caught:
                q.get()
        self.assertFalse(hasattr(caught.exception, "__notes__"))  # nothing lost
        info = seen.info()
        self.assertEqual((info["size"], info["waiters"]), (2, 0))  # past maxsize
        self.assertEqual(q.get_nowait(), "handed")
        self.assertEqual(q.get_nowait(), "stored")
        with self.assertRaises(queue.Empty):
            q.get_nowait()

    def test_interrupted_put_is_withdrawn_unstored(self):
        q = Queue(maxsize=1, client=self.client)
        seen = Queue._attach(q._id, client=self.other)
        q.put("first")
        self.helper(lambda: wait_for(seen, waiters=1))
        with self.assertRaises(Interrupted) as caught:
            q.put("second")
        self.assertFalse(hasattr(caught.exception, "__notes__"))
        info = seen.info()
        self.assertEqual((info["size"], info["waiters"]), (1, 0))
        self.assertEqual(seen.get_nowait(), "first")
        with self.assertRaises(queue.Empty):
            seen.get_nowait()

    def test_put_stored_before_the_interruption_says_so(self):
        q = Queue(maxsize=1, client=self.client)
        seen = Queue._attach(q._id, client=self.other)
        q.put("first")

        def steps():
            wait_for(seen, waiters=1)
            self.assertEqual(seen.get_nowait(), "first")  # admits the put
            wait_for(seen, waiters=0, size=1)

        with self.answers_held():
            self.helper(steps)
            with self.assertRaises(Interrupted) as caught:
                q.put("second")
        self.assertEqual(len(caught.exception.__notes__), 1)
        self.assertIn("the item was stored before the wait could be withdrawn",
                      caught.exception.__notes__[0])
        self.assertEqual(seen.get_nowait(), "second")


if __name__ == "__main__":
    unittest.main()
