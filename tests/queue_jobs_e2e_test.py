"""End-to-end tests of queues used inside jobs (issue 6): the daemon's own
``extrainterpreters`` package in its interpreters, Queue objects passed to
jobs as references, waits answered across clients and jobs, and waits
ended by a job's cancellation, timeout, or the daemon's shutdown.

Blocked calls are synchronised on what the daemon reports (a queue's
waiters, through ``queue_info``) and on results, never on sleeps.
"""

import asyncio
import concurrent.futures
import os
import pickle
import queue
import sys
import threading
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import queue_jobs  # noqa: E402

import extrainterpreters  # noqa: E402
from extrainterpreters import JobTimeout, Queue, RemoteError  # noqa: E402

RESULT_TIMEOUT = 120.0


def wait_for_waiters(q, count):
    harness.wait_until(lambda: q.info()["waiters"] == count,
                       message=f"{count} waiters on {q!r}")


class QueuesInJobsTest(harness.DaemonTestCase):

    def test_a_job_uses_the_daemons_package_without_a_socket(self):
        origin, inside, uses_socket = self.client.run(queue_jobs.where_from)
        self.assertTrue(origin.startswith("<extrainterpretersd>/"), origin)
        self.assertTrue(inside)
        self.assertFalse(uses_socket)
        # Out here, the same module knows it is a client.
        from extrainterpreters import _queue_local
        self.assertFalse(_queue_local.inside_daemon())

    def test_a_long_job_streams_progress_to_its_client_while_it_runs(self):
        progress, control = Queue(client=self.client), Queue(client=self.client)
        future = self.client.submit(queue_jobs.report_then_work, progress, control, 5)
        kind, _ = progress.get(timeout=RESULT_TIMEOUT)
        self.assertEqual(kind, "started")
        self.assertFalse(future.done())  # it is waiting for us, in the job
        control.put("go")
        steps = [progress.get(timeout=RESULT_TIMEOUT) for _ in range(5)]
        self.assertEqual(steps, [("step", i) for i in range(5)])
        self.assertEqual(future.result(RESULT_TIMEOUT), "finished")

    def assertSameItems(self, got, expected):
        self.assertEqual(len(got), len(expected))
        for item, want in zip(got, expected):
            # type and repr: -0.0 is not 0.0, nan is nan, True is not 1
            self.assertIs(type(item), type(want), (item, want))
            self.assertEqual(repr(item), repr(want))

    def test_plain_items_keep_their_value_and_type_every_way(self):
        items = queue_jobs.plain_and_near_plain()
        q = Queue(client=self.client)
        # job to job
        self.assertEqual(self.client.run(queue_jobs.put_items, q, items), len(items))
        self.assertSameItems(self.client.run(queue_jobs.get_items, q, len(items)), items)
        # job to client
        self.client.run(queue_jobs.put_items, q, items)
        self.assertSameItems([q.get(timeout=RESULT_TIMEOUT) for _ in items], items)
        # client to job
        for item in items:
            q.put(item)
        self.assertSameItems(self.client.run(queue_jobs.get_items, q, len(items)), items)
        # pickles of every protocol, framed and memoized as pickle writes them
        count = self.client.run(queue_jobs.put_pickles, q, items)
        got = self.client.run(queue_jobs.get_items, q, count)
        self.assertSameItems(got, items * (count // len(items)))
        self.assertEqual(q.info()["size"], 0)

    def test_odd_item_bytes_get_what_pickle_makes_of_them(self):
        # Bytes the daemon's own reading of plain items must leave to
        # pickle: each item is what pickle.loads makes of it, or fails
        # with pickle's error.
        odd = [b"\x80\x05\x94N.",  # memoizes nothing
               b"\x80\x05(\x94K\x01t.",  # memoizes the mark
               b"\x80\x05K\x01K\x02.",  # two values: pickle takes the last
               b"\x80\x05t.",  # a tuple without a mark
               b"\x80\x05K\x07."]
        expected = []
        for data in odd:
            try:
                expected.append(pickle.loads(data))
            except pickle.UnpicklingError:
                expected.append("UnpicklingError")
        q = Queue(client=self.client)
        self.assertEqual(self.client.run(queue_jobs.put_raw_then_get, q, odd),
                         expected)
        self.assertEqual(expected.count("UnpicklingError"), 3)

    def test_100000_items_pass_between_two_jobs_once_and_in_order(self):
        count = 100_000
        q = Queue(maxsize=64, client=self.client)
        consumer = self.client.submit(queue_jobs.consume_in_order, q, count)
        producer = self.client.submit(queue_jobs.produce, q, count)
        consumer_id, seen, out_of_order = consumer.result(RESULT_TIMEOUT)
        producer_id = producer.result(RESULT_TIMEOUT)
        self.assertEqual((seen, out_of_order), (count, None))
        self.assertNotEqual(consumer_id, producer_id)  # two interpreters at once
        self.assertEqual(q.info()["size"], 0)  # nothing extra, nothing left

    def test_fan_out_over_every_worker_takes_each_item_exactly_once(self):
        workers = self.daemon.workers
        ready, work = Queue(client=self.client), Queue(maxsize=10, client=self.client)
        futures = [self.client.submit(queue_jobs.fan_out_worker, ready, work, None)
                   for _ in range(workers)]
        ids = {ready.get(timeout=RESULT_TIMEOUT) for _ in range(workers)}
        self.assertEqual(len(ids), workers)  # all of them run at once
        items = list(range(2000))
        for item in items:
            work.put(item)
        for _ in range(workers):
            work.put(None)
        taken = []
        for future in futures:
            _, results = future.result(RESULT_TIMEOUT)
            taken.extend(results)
        self.assertEqual(sorted(taken), [i * i for i in items])

    def test_a_jobs_get_is_answered_by_a_client_put_and_the_other_way(self):
        q = Queue(client=self.client)
        future = self.client.submit(queue_jobs.get_one, q)
        wait_for_waiters(q, 1)
        q.put({"from": "client"})
        self.assertEqual(future.result(RESULT_TIMEOUT), {"from": "client"})

        got = concurrent.futures.Future()
        thread = threading.Thread(target=lambda: got.set_result(q.get()))
        thread.start()
        wait_for_waiters(q, 1)
        self.assertEqual(self.client.run(queue_jobs.put_one, q, ("from", "job")), "stored")
        thread.join(RESULT_TIMEOUT)
        self.assertEqual(got.result(0), ("from", "job"))

    def test_a_jobs_put_on_a_full_queue_waits_for_room(self):
        q = Queue(maxsize=1, client=self.client)
        q.put("first")
        future = self.client.submit(queue_jobs.put_one, q, "second")
        wait_for_waiters(q, 1)
        self.assertEqual(q.get(), "first")
        self.assertEqual(future.result(RESULT_TIMEOUT), "stored")
        self.assertEqual(q.get(), "second")

    def test_empty_and_full_inside_a_job_are_the_standard_exceptions(self):
        q = Queue(maxsize=1, client=self.client)
        results = self.client.run(queue_jobs.nonblocking, q)
        self.assertEqual(results[0][0], "empty")
        self.assertIn("is empty", results[0][1])
        self.assertEqual(results[1][0], "full")
        self.assertIn("stayed full for 0.01 s", results[1][1])
        self.assertEqual(results[2], ("size", 1, True, False))
        self.assertEqual(results[3], ("got", "a"))

    def test_a_cancelled_job_stops_waiting_at_once_and_loses_no_item(self):
        q = Queue(client=self.client)
        before = self.client.status()["retired"]["stuck"]
        future = self.client.submit(queue_jobs.get_one, q)
        wait_for_waiters(q, 1)
        self.assertTrue(future.cancel())
        with self.assertRaises(concurrent.futures.CancelledError):
            future.result(RESULT_TIMEOUT)
        wait_for_waiters(q, 0)
        # The item goes to the next get, not to the cancelled job.
        q.put("kept")
        self.assertEqual(self.client.run(queue_jobs.get_one, q), "kept")
        # It ended within the grace period: nothing was retired.
        self.assertEqual(self.client.status()["retired"]["stuck"], before)

    def test_a_job_that_swallows_its_cancellation_gets_it_again_at_its_next_wait(self):
        q = Queue(client=self.client)
        future = self.client.submit(queue_jobs.get_catching_everything, q)
        wait_for_waiters(q, 1)
        future.cancel()
        with self.assertRaises(concurrent.futures.CancelledError):
            future.result(RESULT_TIMEOUT)
        wait_for_waiters(q, 0)

    def test_a_job_timeout_ends_its_wait_with_job_timeout(self):
        q = Queue(client=self.client)
        future = self.client.submit(queue_jobs.get_one, q, timeout=0.2)
        with self.assertRaises(JobTimeout):
            future.result(RESULT_TIMEOUT)
        wait_for_waiters(q, 0)
        q.put("still works")
        self.assertEqual(q.get(), "still works")

    def test_a_get_timeout_inside_a_job_raises_empty(self):
        q = Queue(client=self.client)
        with self.assertRaises(queue.Empty):
            self.client.run(queue_jobs.get_one, q, 0.05)

    def test_a_jobs_wait_on_an_anonymous_queue_ends_when_its_owner_closes(self):
        owner = self.daemon.client()
        q = Queue(client=owner)
        future = self.client.submit(queue_jobs.get_one, q)
        wait_for_waiters(q, 1)
        owner.close()
        with self.assertRaises(RemoteError) as caught:
            future.result(RESULT_TIMEOUT)
        self.assertEqual(caught.exception.code, "queue_gone")
        self.assertIn("closed", caught.exception.message)

    def test_queues_made_in_jobs_come_back_as_references(self):
        name = f"made-in-job-{uuid.uuid4().hex}"
        named = self.client.run(queue_jobs.make_named, name, 3)
        self.addCleanup(named.delete)
        self.assertIsInstance(named, Queue)
        self.assertEqual((named.name, named.maxsize), (name, 3))
        self.assertEqual(named.get(), "made in a job")
        self.assertEqual(Queue.open(name, client=self.client).maxsize, 3)

        anonymous = self.client.run(queue_jobs.make_anonymous)
        self.assertIsNone(anonymous.name)
        self.assertEqual(anonymous.get(), "anonymous, from a job")

    def test_a_queue_returned_to_an_async_client_works_in_the_loop(self):
        async def main():
            async with extrainterpreters.AsyncClient(self.daemon.socket_path) as aclient:
                made = await aclient.run(queue_jobs.make_anonymous)
                return made, await made.get_async(timeout=RESULT_TIMEOUT)
        made, item = asyncio.run(main())
        self.assertEqual(item, "anonymous, from a job")
        # It went through one shared client of that socket, not one of its own.
        self.assertIs(made._client, extrainterpreters._client._default_client(
            self.daemon.socket_path))
        self.assertFalse(made._own_client)

    def test_an_anonymous_queue_made_in_a_job_belongs_to_the_jobs_connection(self):
        submitter = self.daemon.client()
        made = submitter.run(queue_jobs.make_anonymous)
        q = Queue._attach(made._id, client=self.client)
        self.assertEqual(q.info()["size"], 1)
        submitter.close()
        harness.wait_until(lambda: not harness.queue_exists(q), message=f"{q!r} to go")

    def test_errors_inside_a_job_name_the_queue_and_keep_their_code(self):
        with self.assertRaises(RemoteError) as caught:
            self.client.run(queue_jobs.open_missing, "no-such-queue")
        self.assertEqual(caught.exception.code, "unknown_queue")
        self.assertIn("no-such-queue", caught.exception.message)


class ShutdownTest(unittest.TestCase):

    def test_a_stopping_daemon_ends_a_jobs_queue_wait_and_exits(self):
        with harness.running_daemon(workers=1) as daemon:
            with daemon.client() as client:
                q = Queue(client=client)
                future = client.submit(queue_jobs.get_one, q)
                wait_for_waiters(q, 1)
                status = daemon.terminate()
                with self.assertRaises(RemoteError) as caught:
                    future.result(RESULT_TIMEOUT)
        self.assertEqual(status, 0)
        self.assertEqual(caught.exception.code, "queue_gone")
        self.assertIn("shutting down", caught.exception.message)


if __name__ == "__main__":
    unittest.main()
