"""Stopping jobs through the real daemon: cancel, timeouts, stuck jobs,
recycling, and the status counters for each.

Each test that counts starts its own daemon, so totals start at zero.
Jobs that must keep running loop in pure Python or wait on a file; the
test learns they started from a file they create, never from a sleep.
"""

import concurrent.futures
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import jobs  # noqa: E402

import extrainterpreters  # noqa: E402
from extrainterpreters import JobTimeout, RemoteError  # noqa: E402

WAIT = 60.0


class StopTestCase(harness.DaemonTestCase):

    workers = 1

    def private_daemon(self, *extra_args, workers=1):
        daemon = self.start_daemon(workers=workers, extra_args=extra_args)
        return daemon, daemon.client(self)

    def path(self, name):
        return os.path.join(self.tmp_path(), name)

    def wait_for_file(self, path):
        harness.wait_until(lambda: os.path.exists(path), WAIT, path)

    def blocking_fifo(self, daemon):
        """A FIFO for ``jobs.block_in_c``, released at cleanup so the
        stuck thread ends before its daemon stops."""
        fifo = os.path.join(daemon.tmpdir, f"fifo-{len(self._cleanups)}")
        os.mkfifo(fifo)
        self.addCleanup(jobs.release_fifo, fifo)
        return fifo


class CancelTest(StopTestCase):

    def test_cancel_queued_job_never_runs(self):
        daemon, client = self.private_daemon()
        release = self.release_file(daemon)
        marks = self.path("marks")
        blocker = client.submit(jobs.wait_for_file, release, "blocker")
        queued = client.submit(jobs.append_line, marks, "ran")
        harness.wait_until(lambda: client.status()["queue_depth"] == 1, WAIT,
                           "the job to be queued")
        self.assertTrue(queued.cancel())
        self.assertTrue(queued.cancelled())
        with self.assertRaises(concurrent.futures.CancelledError):
            queued.result(0)
        harness.touch(release)
        self.assertEqual(blocker.result(WAIT), "blocker")
        self.assertEqual(client.run(jobs.add, 1, 2), 3)  # Same worker, after.
        self.assertEqual(jobs.read_lines(marks), [])
        harness.wait_until(
            lambda: client.status()["totals"]["cancelled"] == 1, WAIT,
            "totals.cancelled == 1")

    def test_cancel_running_job(self):
        daemon, client = self.private_daemon()
        before = client.run(jobs.interpreter_id)
        started = self.path("started")
        running = client.submit(jobs.spin, started)
        self.wait_for_file(started)
        self.assertTrue(running.cancel())
        self.assertTrue(running.cancelled())
        with self.assertRaises(concurrent.futures.CancelledError):
            running.result(0)
        # The same interpreter serves the next job: the job unwound.
        self.assertEqual(client.run(jobs.interpreter_id), before)
        status = client.status()
        self.assertEqual(status["totals"]["cancelled"], 1)
        self.assertEqual(status["retired"]["stuck"], 0)

    def test_cancel_finished_job_returns_false(self):
        future = self.client.submit(jobs.add, 1, 2)
        self.assertEqual(future.result(WAIT), 3)
        self.assertFalse(future.cancel())
        self.assertFalse(future.cancelled())

    def test_cancel_twice(self):
        daemon, client = self.private_daemon()
        started = self.path("started")
        running = client.submit(jobs.spin, started)
        self.wait_for_file(started)
        self.assertTrue(running.cancel())
        self.assertTrue(running.cancel())
        self.assertEqual(client.run(jobs.add, 2, 2), 4)

    def test_done_callback_sees_the_cancel(self):
        daemon, client = self.private_daemon()
        started = self.path("started")
        running = client.submit(jobs.spin, started)
        seen = []
        running.add_done_callback(lambda f: seen.append(f.cancelled()))
        self.wait_for_file(started)
        running.cancel()
        self.assertEqual(seen, [True])

    def test_interpreter_cancel(self):
        daemon, client = self.private_daemon()
        started = self.path("started")
        with extrainterpreters.Interpreter(client=client) as interp:
            interp.run_in_thread(jobs.spin, started)
            self.wait_for_file(started)
            self.assertTrue(interp.cancel())
            with self.assertRaises(concurrent.futures.CancelledError):
                interp.result(0)
            self.assertEqual(interp.run(jobs.add, 1, 1), 2)
            self.assertFalse(interp.cancel())  # Its last job finished.


class TimeoutTest(StopTestCase):

    def test_running_job_times_out(self):
        daemon, client = self.private_daemon()
        before = client.run(jobs.interpreter_id)
        started = self.path("started")
        with self.assertRaises(JobTimeout) as cm:
            client.run(jobs.spin, started, timeout=0.2)
        self.assertIsInstance(cm.exception, TimeoutError)
        self.assertIsInstance(cm.exception,
                              extrainterpreters.ExtraInterpretersError)
        self.assertTrue(os.path.exists(started))  # It did run.
        self.assertEqual(client.run(jobs.interpreter_id), before)
        status = client.status()
        self.assertEqual(status["totals"]["timeouts"], 1)
        self.assertEqual(status["retired"]["stuck"], 0)

    def test_queued_job_times_out_without_running(self):
        daemon, client = self.private_daemon()
        release = self.release_file(daemon)
        marks = self.path("marks")
        blocker = client.submit(jobs.wait_for_file, release, "blocker")
        queued = client.submit(jobs.append_line, marks, "ran", timeout=0.1)
        # The blocker holds the only worker until the timeout is answered.
        with self.assertRaises(JobTimeout):
            queued.result(WAIT)
        harness.touch(release)
        self.assertEqual(blocker.result(WAIT), "blocker")
        self.assertEqual(client.run(jobs.add, 1, 2), 3)
        self.assertEqual(jobs.read_lines(marks), [])

    def test_timeout_is_not_passed_to_the_job(self):
        self.assertEqual(self.client.run(jobs.echo, 1, timeout=WAIT),
                         ((1,), {}))
        future = self.client.submit_with(jobs.echo, (1,), {"timeout": 5},
                                         timeout=WAIT)
        self.assertEqual(future.result(WAIT), ((1,), {"timeout": 5}))

    def test_bad_timeouts_are_refused(self):
        for bad in (0, -1, float("inf"), float("nan"), "1", True):
            with self.subTest(timeout=bad):
                with self.assertRaises(ValueError):
                    self.client.submit(jobs.add, 1, 2, timeout=bad)

    def test_interpreter_run_timeout(self):
        started = self.path("started")
        with extrainterpreters.Interpreter(client=self.client) as interp:
            interp.run(jobs.set_global, "kept", 1)
            with self.assertRaises(JobTimeout):
                interp.run(jobs.spin, started, timeout=0.2)
            self.assertEqual(interp.run(jobs.get_global, "kept"), 1)


class StuckJobTest(StopTestCase):
    """A job that cannot take the exception raised into it in time."""

    GRACE = "0.5"

    def test_stuck_job_is_answered_and_capacity_kept(self):
        daemon, client = self.private_daemon("--cancel-grace", self.GRACE)
        fifo = self.blocking_fifo(daemon)
        started = self.path("started")
        before = client.run(jobs.interpreter_id)
        with self.assertRaises(JobTimeout):
            client.run(jobs.block_in_c, started, fifo, timeout=0.2)
        # Answered although the job still runs: its interpreter was given
        # up and a fresh one took its place.
        self.assertEqual(client.run(jobs.add, 2, 3), 5)
        self.assertNotEqual(client.run(jobs.interpreter_id), before)
        status = client.status()
        self.assertEqual(status["retired"]["stuck"], 1)
        self.assertEqual(status["totals"]["timeouts"], 1)
        self.assertEqual(len(harness.pool_workers(status)), 1)

    def test_cancelled_stuck_job(self):
        daemon, client = self.private_daemon("--cancel-grace", self.GRACE)
        fifo = self.blocking_fifo(daemon)
        started = self.path("started")
        stuck = client.submit(jobs.block_in_c, started, fifo)
        self.wait_for_file(started)
        self.assertTrue(stuck.cancel())
        # The pool keeps its capacity once the daemon gives up on the job.
        self.assertEqual(client.run(jobs.add, 2, 3), 5)
        harness.wait_until(
            lambda: client.status()["retired"]["stuck"] == 1, WAIT,
            "retired.stuck == 1")

    def test_stuck_job_on_a_lease_loses_the_lease(self):
        daemon, client = self.private_daemon("--cancel-grace", self.GRACE)
        fifo = self.blocking_fifo(daemon)
        started = self.path("started")
        interp = extrainterpreters.Interpreter(client=client)
        self.addCleanup(interp.close)
        with self.assertRaises(JobTimeout):
            interp.run(jobs.block_in_c, started, fifo, timeout=0.2)
        with self.assertRaises(RemoteError) as cm:
            interp.run(jobs.add, 1, 1)
        self.assertEqual(cm.exception.code, "lease_lost")

    def test_executor_worker_survives_a_stuck_job(self):
        daemon, client = self.private_daemon("--cancel-grace", self.GRACE)
        fifo = self.blocking_fifo(daemon)
        started = self.path("started")
        log = self.path("inits")
        with extrainterpreters.InterpreterPoolExecutor(
                1, socket_path=daemon.socket_path, initializer=jobs.record_init,
                initargs=(log,)) as executor:
            stuck = executor.submit(jobs.block_in_c, started, fifo)
            self.wait_for_file(started)
            self.assertTrue(stuck.cancel())
            # Its lease is lost; the worker leases again, re-initializes.
            state = executor.submit(jobs.init_state).result(WAIT)
            self.assertEqual(state[:2], (state[2], 1))
            self.assertEqual(len(jobs.read_lines(log)), 2)


class RecycleTest(StopTestCase):

    def test_max_jobs_per_interpreter(self):
        daemon, client = self.private_daemon(
            "--max-jobs-per-interpreter", "3")
        ids = [client.run(jobs.interpreter_id) for _ in range(9)]
        self.assertEqual(len(set(ids)), 3, ids)
        self.assertEqual([len(set(ids[i:i + 3])) for i in (0, 3, 6)],
                         [1, 1, 1])
        harness.wait_until(
            lambda: client.status()["retired"]["recycled"] >= 2, WAIT,
            "retired.recycled >= 2")


class TotalsTest(StopTestCase):

    def test_status_counts_cancels_and_timeouts(self):
        daemon, client = self.private_daemon(workers=2)
        release = self.release_file(daemon)
        started = self.path("started")
        running = client.submit(jobs.spin, started)
        blocker = client.submit(jobs.wait_for_file, release, "ok")
        queued = client.submit(jobs.add, 1, 1)
        self.wait_for_file(started)
        harness.wait_until(lambda: client.status()["queue_depth"] == 1, WAIT,
                           "one queued job")
        self.assertTrue(queued.cancel())  # First, or it might start.
        self.assertTrue(running.cancel())
        with self.assertRaises(JobTimeout):
            client.run(jobs.spin, self.path("started2"), timeout=0.1)
        harness.touch(release)
        self.assertEqual(blocker.result(WAIT), "ok")
        harness.wait_until(
            lambda: client.status()["totals"]["cancelled"] == 2, WAIT,
            "totals.cancelled == 2")
        totals = client.status()["totals"]
        self.assertEqual(totals["timeouts"], 1)
        self.assertEqual(totals["failed"], 3)


if __name__ == "__main__":
    unittest.main()
