"""End-to-end tests of ``Queue.get_async`` / ``Queue.put_async`` through
the real daemon: waits that leave the event loop free, timeouts, and
cancelled tasks that withdraw their wait (``queue_cancel``) and lose no item.

Waits are synchronised on what the daemon reports (``queue_info``, read
from another connection), never on sleeps. The race where the daemon's
answer crosses a cancellation is made deterministic by holding the
client's read lock, so the answer stays unread until the task was
cancelled.
"""

import asyncio
import contextlib
import os
import queue
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

from extrainterpreters import Queue, RemoteError  # noqa: E402

WAIT = 60.0


async def wait_for(q, **expected):
    """Until ``q.info()`` has every ``key=value`` of ``expected``; the
    loop keeps running other tasks meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        info = await asyncio.to_thread(q.info)
        if all(info[k] == v for k, v in expected.items()):
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {expected} on {q!r}: {info}")
        await asyncio.sleep(harness.POLL_INTERVAL)


class QueueAsyncTest(harness.DaemonTestCase):

    workers = 1

    def setUp(self):
        super().setUp()
        self.other = self.daemon.client(self)  # a second connection

    def run_async(self, coroutine):
        return asyncio.run(asyncio.wait_for(coroutine, WAIT))

    def pair(self, maxsize=0):
        """A queue on the test's client and the same queue on another."""
        q = Queue(maxsize, client=self.client)
        return q, Queue._attach(q._id, client=self.other)

    @contextlib.contextmanager
    def answers_held(self):
        """The client reads no reply until the block ends."""
        self.client._connection._read_lock.acquire()
        try:
            yield
        finally:
            self.client._connection._read_lock.release()

    def test_many_waiting_gets_share_the_loop(self):
        q, seen = self.pair()

        async def main():
            getters = [asyncio.ensure_future(q.get_async()) for _ in range(20)]
            await wait_for(seen, waiters=20)  # the loop runs while they wait
            self.assertFalse(any(g.done() for g in getters))
            for i in range(20):
                seen.put(i)
            return await asyncio.gather(*getters)

        self.assertEqual(self.run_async(main()), list(range(20)))  # in order

    def test_put_async_waits_for_room(self):
        q, seen = self.pair(maxsize=1)

        async def main():
            await q.put_async("first")
            putter = asyncio.ensure_future(q.put_async({"second": [2]}))
            await wait_for(seen, waiters=1, size=1)
            self.assertEqual(seen.get(), "first")  # admits the waiting put
            await putter
            return await q.get_async(timeout=WAIT)

        self.assertEqual(self.run_async(main()), {"second": [2]})

    def test_timeouts_raise_the_standard_exceptions(self):
        q, _ = self.pair(maxsize=1)

        async def main():
            with self.assertRaises(queue.Empty) as empty:
                await q.get_async(timeout=0)
            self.assertIn("is empty", str(empty.exception))
            with self.assertRaises(queue.Empty):
                await q.get_async(timeout=0.1)
            await q.put_async(1, timeout=0)
            with self.assertRaises(queue.Full):
                await q.put_async(2, timeout=0.1)
            with self.assertRaises(ValueError):
                await q.get_async(timeout=-1)

        self.run_async(main())
        self.assertEqual(q.info()["waiters"], 0)

    def test_deleted_queue_fails_the_waiting_task(self):
        q, seen = self.pair()

        async def main():
            getter = asyncio.ensure_future(q.get_async())
            await wait_for(seen, waiters=1)
            seen.delete()
            with self.assertRaises(RemoteError) as caught:
                await getter
            self.assertEqual(caught.exception.code, "queue_gone")

        self.run_async(main())

    def test_cancelled_get_is_withdrawn_and_the_next_get_receives_the_item(self):
        q, seen = self.pair()

        async def main():
            getter = asyncio.ensure_future(q.get_async())
            await wait_for(seen, waiters=1)
            getter.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await getter
            self.assertEqual(seen.info()["waiters"], 0)  # withdrawn already
            seen.put("after")
            self.assertEqual(seen.info()["size"], 1)  # not handed to the gone get
            return await q.get_async(timeout=WAIT)

        self.assertEqual(self.run_async(main()), "after")

    def test_item_answering_a_cancelled_get_goes_back_to_the_front(self):
        q, seen = self.pair(maxsize=1)

        async def main():
            with self.answers_held():
                getter = asyncio.ensure_future(q.get_async())
                await wait_for(seen, waiters=1)
                seen.put("handed")
                await wait_for(seen, waiters=0, size=0)  # handed to the held get
                seen.put("stored")
                getter.cancel()
                await asyncio.sleep(0)  # the task sees its cancellation
            with self.assertRaises(asyncio.CancelledError) as caught:
                await getter
            self.assertFalse(hasattr(caught.exception, "__notes__"))
            info = seen.info()
            self.assertEqual((info["size"], info["waiters"]), (2, 0))  # past maxsize
            return [await q.get_async(timeout=0), await q.get_async(timeout=0)]

        self.assertEqual(self.run_async(main()), ["handed", "stored"])

    def test_cancelled_put_is_withdrawn_unstored(self):
        q, seen = self.pair(maxsize=1)

        async def main():
            await q.put_async("first")
            putter = asyncio.ensure_future(q.put_async("second"))
            await wait_for(seen, waiters=1)
            putter.cancel()
            with self.assertRaises(asyncio.CancelledError) as caught:
                await putter
            self.assertFalse(hasattr(caught.exception, "__notes__"))

        self.run_async(main())
        info = seen.info()
        self.assertEqual((info["size"], info["waiters"]), (1, 0))
        self.assertEqual(seen.get_nowait(), "first")

    def test_put_stored_before_the_cancellation_says_so(self):
        q, seen = self.pair(maxsize=1)

        async def main():
            await q.put_async("first")
            with self.answers_held():
                putter = asyncio.ensure_future(q.put_async("second"))
                await wait_for(seen, waiters=1)
                self.assertEqual(seen.get_nowait(), "first")  # admits the put
                await wait_for(seen, waiters=0, size=1)
                putter.cancel()
                await asyncio.sleep(0)
            with self.assertRaises(asyncio.CancelledError) as caught:
                await putter
            self.assertIn("the item was stored before the wait could be withdrawn",
                          caught.exception.__notes__[0])

        self.run_async(main())
        self.assertEqual(seen.get_nowait(), "second")


if __name__ == "__main__":
    unittest.main()
