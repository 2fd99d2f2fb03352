"""asyncio through the real daemon: AsyncClient, Interpreter.run_async and
run_in_executor, including cancelling the awaiting task."""

import asyncio
import concurrent.futures
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import jobs  # noqa: E402

import extrainterpreters  # noqa: E402
from extrainterpreters import AsyncClient, JobTimeout  # noqa: E402

WAIT = 60.0


async def wait_for_file(path):
    """Poll for ``path`` without blocking the loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not os.path.exists(path):
        if loop.time() > deadline:
            raise AssertionError(f"{path} did not appear")
        await asyncio.sleep(harness.POLL_INTERVAL)


async def wait_until(predicate, message):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        await asyncio.sleep(harness.POLL_INTERVAL)


class AsyncTestCase(harness.DaemonTestCase):

    workers = 1

    def run_async(self, coroutine):
        return asyncio.run(asyncio.wait_for(coroutine, WAIT))

    def path(self, name):
        return os.path.join(self.tmp_path(), name)

    def connect(self):
        return AsyncClient(self.daemon.socket_path, output=False)


class AsyncClientTest(AsyncTestCase):

    def test_run_submit_status(self):
        async def main():
            async with self.connect() as client:
                self.assertEqual(await client.run(jobs.add, 2, 3), 5)
                future = client.submit(jobs.echo, 1, k=2)
                self.assertIsInstance(future, asyncio.Future)
                self.assertEqual(await future, ((1,), {"k": 2}))
                status = await client.status()
                self.assertEqual(status["state"], "ready")
                self.assertEqual(client.hello["workers"], self.workers)
                await client.ping()
            self.assertTrue(client.closed)
        self.run_async(main())

    def test_exceptions_are_reraised(self):
        async def main():
            async with self.connect() as client:
                with self.assertRaises(ZeroDivisionError) as cm:
                    await client.run(jobs.divide, 1, 0)
                self.assertIn("divide", str(cm.exception.__cause__))
        self.run_async(main())

    def test_connect_error(self):
        async def main():
            client = AsyncClient(os.path.join(self.tmp_path(), "none.sock"))
            with self.assertRaises(extrainterpreters.DaemonConnectionError):
                await client.connect()
        self.run_async(main())

    def test_many_concurrent_jobs_use_no_extra_threads(self):
        release = self.release_file()

        async def main():
            async with self.connect() as client:
                threads_before = threading.active_count()
                blocker = client.submit(jobs.wait_for_file, release, "b")
                futures = [client.submit(jobs.add, i, i) for i in range(300)]
                await wait_until(
                    lambda: _queue_depth_is(client, 300), "300 queued jobs")
                self.assertEqual(threading.active_count(), threads_before)
                harness.touch(release)
                results = await asyncio.gather(*futures)
                self.assertEqual(await blocker, "b")
                self.assertEqual(results, [2 * i for i in range(300)])
        self.run_async(main())

    def test_cancel_queued_job_never_runs(self):
        release = self.release_file()
        marks = self.path("marks")

        async def main():
            async with self.connect() as client:
                blocker = client.submit(jobs.wait_for_file, release, "b")
                task = asyncio.ensure_future(
                    client.run(jobs.append_line, marks, "ran"))
                await wait_until(lambda: _queue_depth_is(client, 1),
                                 "the job to be queued")
                task.cancel()
                with self.assertRaises(asyncio.CancelledError):
                    await task
                harness.touch(release)
                self.assertEqual(await blocker, "b")
                self.assertEqual(await client.run(jobs.add, 1, 1), 2)
                status = await client.status()
                self.assertEqual(status["totals"]["cancelled"], 1)
        daemon = self.start_daemon(workers=1)
        self.daemon = daemon  # A private daemon, so the totals start at 0.
        self.run_async(main())
        self.assertEqual(jobs.read_lines(marks), [])

    def test_cancel_running_job(self):
        started = self.path("started")

        async def main():
            async with self.connect() as client:
                before = await client.run(jobs.interpreter_id)
                task = asyncio.ensure_future(client.run(jobs.spin, started))
                await wait_for_file(started)
                task.cancel()
                with self.assertRaises(asyncio.CancelledError):
                    await task
                # The daemon interrupted it; the worker serves on.
                self.assertEqual(await client.run(jobs.interpreter_id),
                                 before)
                await wait_until(lambda: _totals_cancelled_is(client, 1),
                                 "totals.cancelled == 1")
        self.daemon = self.start_daemon(workers=1)
        self.run_async(main())

    def test_wait_for_timeout_cancels_the_job(self):
        started = self.path("started")

        async def main():
            async with self.connect() as client:
                with self.assertRaises(asyncio.TimeoutError):
                    await asyncio.wait_for(client.run(jobs.spin, started),
                                           0.1)
                self.assertEqual(await client.run(jobs.add, 1, 2), 3)
        self.run_async(main())

    def test_job_timeout(self):
        started = self.path("started")

        async def main():
            async with self.connect() as client:
                with self.assertRaises(JobTimeout):
                    await client.run(jobs.spin, started, timeout=0.1)
                self.assertEqual(await client.run(jobs.add, 1, 2), 3)
        self.run_async(main())

    def test_close_fails_pending(self):
        release = self.release_file()

        async def main():
            client = await self.connect().connect()
            future = client.submit(jobs.wait_for_file, release)
            client.close()
            await client.wait_closed()
            with self.assertRaises(extrainterpreters.DaemonConnectionError):
                await future
        self.run_async(main())


class InterpreterRunAsyncTest(AsyncTestCase):

    def test_run_async(self):
        async def main():
            with extrainterpreters.Interpreter(
                    self.daemon.socket_path) as interp:
                await interp.run_async(jobs.set_global, "k", 7)
                self.assertEqual(await interp.run_async(jobs.get_global, "k"),
                                 7)
        self.run_async(main())

    def test_cancel_run_async(self):
        started = self.path("started")

        async def main():
            with extrainterpreters.Interpreter(
                    self.daemon.socket_path) as interp:
                await interp.run_async(jobs.set_global, "k", 7)
                task = asyncio.ensure_future(
                    interp.run_async(jobs.spin, started))
                await wait_for_file(started)
                task.cancel()
                with self.assertRaises(asyncio.CancelledError):
                    await task
                # Stopped, and the interpreter kept its state.
                self.assertEqual(await interp.run_async(jobs.get_global, "k"),
                                 7)
        self.run_async(main())


class RunInExecutorTest(AsyncTestCase):

    workers = 2

    def test_run_in_executor(self):
        async def main():
            loop = asyncio.get_running_loop()
            with extrainterpreters.InterpreterPoolExecutor(
                    socket_path=self.daemon.socket_path) as executor:
                results = await asyncio.gather(*(
                    loop.run_in_executor(executor, jobs.add, i, 1)
                    for i in range(20)))
                self.assertEqual(results, [i + 1 for i in range(20)])
        self.run_async(main())

    def test_cancelling_run_in_executor_stops_the_job(self):
        started = self.path("started")

        async def main():
            loop = asyncio.get_running_loop()
            with extrainterpreters.InterpreterPoolExecutor(
                    1, socket_path=self.daemon.socket_path) as executor:
                before = await loop.run_in_executor(executor,
                                                    jobs.interpreter_id)
                task = asyncio.ensure_future(
                    loop.run_in_executor(executor, jobs.spin, started))
                await wait_for_file(started)
                task.cancel()
                with self.assertRaises(asyncio.CancelledError):
                    await task
                self.assertEqual(
                    await loop.run_in_executor(executor, jobs.interpreter_id),
                    before)
        self.run_async(main())

    def test_executor_future_is_cancelled_concurrent_future(self):
        started = self.path("started")
        with extrainterpreters.InterpreterPoolExecutor(
                1, socket_path=self.daemon.socket_path) as executor:
            future = executor.submit(jobs.spin, started)
            harness.wait_until(lambda: os.path.exists(started), WAIT)
            self.assertTrue(future.cancel())
            with self.assertRaises(concurrent.futures.CancelledError):
                future.result(0)


async def _queue_depth_is(client, n):
    return (await client.status())["queue_depth"] == n


async def _totals_cancelled_is(client, n):
    return (await client.status())["totals"]["cancelled"] == n


if __name__ == "__main__":
    unittest.main()
