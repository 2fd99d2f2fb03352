"""Crash containment, cancel, timeout and recycling in the process lane,
through the real daemon and real worker processes."""

import concurrent.futures
import os
import re
import signal
import sys
import time
import unittest

import harness
import jobs
import lane_jobs

import extrainterpreters
from extrainterpreters import Interpreter, JobTimeout, RemoteError, WorkerCrashed

SITE = harness.test_site_packages()
sys.path.append(SITE)
import numpy  # noqa: E402  (from the test-only environment)

WAIT = 60.0
GRACE = "1"  # --cancel-grace, seconds
CRASH = re.compile(r"process worker (\d+) \(pid (\d+)\) died with (SIG\w+) while "
                   r"running job (\d+)")


def process_pids(client):
    return sorted(w["pid"] for w in client.status()["process_workers"]
                  if w["kind"] == "pool" and w["state"] in ("idle", "busy"))


class CrashTest(harness.DaemonTestCase):
    workers = 2
    daemon_args = ("--python-path", f"{harness.TESTS_DIR}:{SITE}",
                   "--process-workers", "2", "--max-process-workers", "2",
                   "--cancel-grace", GRACE)

    def setUp(self):
        super().setUp()
        harness.wait_until(lambda: len(process_pids(self.client)) == 2, WAIT,
                           "two warm worker processes")

    def test_a_segfault_fails_only_its_job(self):
        release = self.release_file()
        other_pool = self.client.submit(jobs.wait_for_file, release, "sub")
        before = process_pids(self.client)
        with self.assertRaises(WorkerCrashed) as cm:
            self.client.run(lane_jobs.crash, lane="process")
        match = CRASH.search(str(cm.exception))
        self.assertIsNotNone(match, str(cm.exception))
        self.assertEqual(match.group(3), "SIGSEGV")
        self.assertIn(int(match.group(2)), before)
        self.assertEqual(cm.exception.code, "worker_crashed")
        self.assertIsInstance(cm.exception, RemoteError)
        # The daemon, its sub-interpreter jobs and the other worker carry on.
        self.assertEqual(self.client.run(numpy.add, 1, 2), 3)
        harness.touch(release)
        self.assertEqual(other_pool.result(WAIT), "sub")
        # A fresh worker took the dead one's place.
        after = harness.wait_until(
            lambda: (lambda p: p if len(p) == 2 else None)(process_pids(self.client)),
            WAIT, "the worker replaced")
        self.assertNotIn(int(match.group(2)), after)
        self.assertGreaterEqual(
            self.client.status()["lanes"]["process"]["crashed"], 1)
        self.assertIn("process worker crashed", self.daemon.log())

    def test_a_crash_beside_jobs_in_both_lanes(self):
        numbers = [self.client.submit(numpy.multiply, i, 2) for i in range(20)]
        subs = [self.client.submit(jobs.add, i, 1) for i in range(20)]
        crash = self.client.submit(lane_jobs.crash, lane="process")
        with self.assertRaises(WorkerCrashed):
            crash.result(WAIT)
        self.assertEqual([f.result(WAIT) for f in numbers],
                         [2 * i for i in range(20)])
        self.assertEqual([f.result(WAIT) for f in subs], list(range(1, 21)))

    def test_os_exit_is_a_crash_too(self):
        with self.assertRaises(WorkerCrashed) as cm:
            self.client.run(lane_jobs.exit_now, 7, lane="process")
        self.assertIn("exited with status 7", str(cm.exception))

    def test_a_killed_worker_is_reported_with_its_signal(self):
        started = os.path.join(self.daemon.tmpdir, f"started-{time.monotonic()}")
        future = self.client.submit(lane_jobs.sleep_with_numpy, started, 60)
        harness.wait_until(lambda: os.path.exists(started), WAIT, started)
        busy = [w for w in self.client.status()["process_workers"]
                if w["state"] == "busy"]
        self.assertEqual(len(busy), 1, busy)
        os.kill(busy[0]["pid"], signal.SIGKILL)  # as the OOM killer would
        with self.assertRaises(WorkerCrashed) as cm:
            future.result(WAIT)
        self.assertIn(f"(pid {busy[0]['pid']}) died with SIGKILL",
                      str(cm.exception))

    def test_a_leased_worker_that_dies_ends_its_lease(self):
        with Interpreter(client=self.client, lane="process") as worker:
            with self.assertRaises(WorkerCrashed):
                worker.run(lane_jobs.crash)
            with self.assertRaises(RemoteError) as cm:
                worker.run(lane_jobs.getpid)
            self.assertIn(cm.exception.code, ("lease_lost", "unknown_lease"))


    def test_executor_map_sends_the_chunks_of_a_lost_lease_again(self):
        # The map's first chunk ends its worker process, and with it the
        # lease: the chunks sent behind it come back lease_lost without
        # having run. The worker leases again (the initializer runs there)
        # and sends them again; each call runs once.
        log = os.path.join(self.daemon.tmpdir, f"log-{time.monotonic()}")
        inits = os.path.join(self.daemon.tmpdir, f"inits-{time.monotonic()}")
        count = 40
        with extrainterpreters.InterpreterPoolExecutor(
                1, socket_path=self.daemon.socket_path, lane="process",
                initializer=jobs.append_line,
                initargs=(inits, "init")) as executor:
            results = executor.map(jobs.crash_or_append,
                                   [True] + [False] * (count - 1),
                                   [log] * count, range(count), chunksize=2)
            # Before the crash is read: reading it ends the map (the
            # chunks not reached are cancelled, as Executor.map does).
            harness.wait_until(
                lambda: len(jobs.read_lines(log)) >= count - 2, WAIT,
                "the other chunks to run")
            with self.assertRaises(WorkerCrashed):
                next(results)
        self.assertEqual(sorted(jobs.read_lines(log), key=int),
                         [str(i) for i in range(2, count)])
        self.assertEqual(jobs.read_lines(inits), ["init", "init"])


class StopTest(harness.DaemonTestCase):
    workers = 1
    daemon_args = ("--python-path", f"{harness.TESTS_DIR}:{SITE}",
                   "--process-workers", "1", "--max-process-workers", "1",
                   "--cancel-grace", GRACE)

    def started_path(self):
        return os.path.join(self.daemon.tmpdir, f"started-{self.id()}-{time.monotonic()}")

    def test_cancel_a_sleeping_numpy_job(self):
        started = self.started_path()
        future = self.client.submit(lane_jobs.sleep_with_numpy, started, 60)
        harness.wait_until(lambda: os.path.exists(started), WAIT, started)
        pid = process_pids(self.client)
        self.assertTrue(future.cancel())
        with self.assertRaises(concurrent.futures.CancelledError):
            future.result(WAIT)
        # The stop signal ended the sleep: the same worker goes on.
        self.assertEqual(self.client.run(numpy.add, 2, 2), 4)
        self.assertEqual(process_pids(self.client), pid)
        harness.wait_until(
            lambda: self.client.status()["totals"]["cancelled"] >= 1, WAIT,
            "the cancel counted")

    def test_timeout_of_a_sleeping_numpy_job(self):
        started = self.started_path()
        pid = process_pids(self.client)
        with self.assertRaises(JobTimeout):
            self.client.run(lane_jobs.sleep_with_numpy, started, 60, timeout=0.5)
        self.assertEqual(self.client.run(numpy.add, 3, 3), 6)
        self.assertEqual(process_pids(self.client), pid)

    def test_a_job_stuck_in_c_is_killed_after_the_grace_period(self):
        started = self.started_path()
        # The worker has numpy and this module loaded, so the job reaches
        # its blocked signal soon after it is sent.
        self.assertEqual(self.client.run(lane_jobs.getpid, lane="process"),
                         process_pids(self.client)[0])
        self.client.run(numpy.add, 1, 1)
        pid = process_pids(self.client)
        with self.assertRaises(JobTimeout) as cm:
            self.client.run(lane_jobs.stuck_in_c_with_numpy, started, 600,
                            timeout=2, lane="process")
        self.assertIn("was killed and replaced", str(cm.exception))
        self.assertIn(f"(pid {pid[0]})", str(cm.exception))
        self.assertEqual(self.client.run(numpy.add, 4, 4), 8)
        self.assertNotEqual(process_pids(self.client), pid)

    def test_cancel_a_job_waiting_on_a_queue(self):
        q = extrainterpreters.Queue(client=self.client)
        future = self.client.submit(lane_jobs.get_one, q, lane="process")
        harness.wait_until(lambda: q.info()["getters"] == 1, WAIT,
                           "the job waiting on the queue")
        pid = process_pids(self.client)
        self.assertTrue(future.cancel())
        harness.wait_until(lambda: q.info()["getters"] == 0, WAIT,
                           "the wait withdrawn")
        # Nothing was lost: a later item is there for a later get.
        q.put("kept")
        self.assertEqual(self.client.run(lane_jobs.get_one, q, lane="process"),
                         "kept")
        self.assertEqual(process_pids(self.client), pid)


class RecycleTest(harness.DaemonTestCase):
    workers = 1
    daemon_args = ("--python-path", f"{harness.TESTS_DIR}:{SITE}",
                   "--process-workers", "1", "--max-process-workers", "1",
                   "--max-jobs-per-process-worker", "2")

    def test_a_worker_is_replaced_after_max_jobs(self):
        pids = [self.client.run(lane_jobs.getpid, lane="process")
                for _ in range(6)]
        self.assertEqual([len(set(pids[i:i + 2])) for i in (0, 2, 4)],
                         [1, 1, 1], pids)
        self.assertEqual(len(set(pids)), 3, pids)


if __name__ == "__main__":
    unittest.main()
