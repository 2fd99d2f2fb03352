"""End-to-end tests of hostile jobs: code that tries to take the daemon down
with it. Each gets a typed error back (or its own exception re-raised) and
the daemon goes on serving every worker.

``os._exit`` is the exception: it ends the daemon's process (a documented
limit), and the test checks that clients then fail fast with
``DaemonConnectionError`` instead of hanging.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import hostile_jobs  # noqa: E402
import jobs  # noqa: E402

from extrainterpreters import DaemonConnectionError, RemoteError  # noqa: E402

WAIT = 30.0  # bound on any one reply; the jobs here answer in milliseconds
SINGLE_PHASE_MODULES = ["_testsinglephase", "readline", "_curses", "_tkinter"]


class HostileJobTest(harness.DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.pid = self.client.hello["pid"]

    def assert_still_serving(self):
        """Same daemon process; every worker answers, several jobs at once."""
        self.assertIsNone(self.daemon.process.poll(), self.daemon.log())
        futures = [self.client.submit(jobs.add, i, 1) for i in range(4 * self.workers)]
        self.assertEqual([f.result(WAIT) for f in futures],
                         [i + 1 for i in range(4 * self.workers)])
        with self.daemon.client() as fresh:
            self.assertEqual(fresh.hello["pid"], self.pid)
            self.assertEqual(fresh.run(jobs.add, 40, 2, timeout=WAIT), 42)
            workers = harness.pool_workers(fresh.status(timeout=WAIT))
        self.assertEqual(len(workers), self.workers)

    def run_job(self, fn, *args):
        return self.client.submit(fn, *args).result(WAIT)

    def test_sys_exit_is_an_exception_not_an_exit(self):
        with self.assertRaises(SystemExit) as cm:
            self.run_job(jobs.raise_system_exit, 3)
        self.assertEqual(cm.exception.code, 3)
        self.assert_still_serving()

    def test_fork_is_refused(self):
        with self.assertRaises(RuntimeError) as cm:
            self.run_job(hostile_jobs.fork)
        self.assertIn("fork not supported", str(cm.exception))
        self.assert_still_serving()

    def test_execv_is_refused(self):
        with self.assertRaises(RuntimeError) as cm:
            self.run_job(hostile_jobs.execv)
        self.assertIn("exec not supported", str(cm.exception))
        self.assert_still_serving()

    def test_signal_handlers_cannot_be_installed(self):
        with self.assertRaises(ValueError) as cm:
            self.run_job(hostile_jobs.install_signal_handler)
        self.assertIn("main thread of the main interpreter", str(cm.exception))
        self.assert_still_serving()

    def test_daemon_threads_are_refused(self):
        with self.assertRaises(RuntimeError) as cm:
            self.run_job(hostile_jobs.start_daemon_thread)
        self.assertIn("daemon threads are disabled", str(cm.exception))
        self.assert_still_serving()

    def test_unbounded_recursion(self):
        with self.assertRaises(RecursionError):
            self.run_job(hostile_jobs.recurse)
        self.assert_still_serving()

    def test_huge_allocation(self):
        with self.assertRaises(MemoryError):
            self.run_job(hostile_jobs.allocate, 2 ** 62)
        self.assert_still_serving()

    def test_unpicklable_result(self):
        with self.assertRaises(RemoteError) as cm:
            self.run_job(jobs.return_lock)
        self.assertEqual(cm.exception.code, "result_not_picklable")
        self.assert_still_serving()

    def test_single_phase_extension_import(self):
        name = next((m for m in SINGLE_PHASE_MODULES
                     if self.run_job(jobs.has_module, m)), None)
        if name is None:
            self.skipTest(f"the daemon's Python has none of {SINGLE_PHASE_MODULES}")
        # In the interpreter lane (auto would run it again in a worker
        # process: process_lane_e2e_test).
        for _ in range(2 * self.workers):  # on every worker
            with self.assertRaises(ImportError) as cm:
                self.client.submit(jobs.import_module, name,
                                   lane="interpreter").result(WAIT)
            self.assertIn("subinterpreter", str(cm.exception))
            # Refused before it loads: on CPython 3.12 its init function
            # would run in the sub-interpreter first (gh-117953).
            self.assertIn("before they load", str(cm.exception))
        self.assert_still_serving()

    def test_thread_left_running_does_not_block_the_pool(self):
        # The job's value comes back, and the pool keeps serving: each
        # interpreter left with a thread is replaced by a fresh one.
        release = self.release_file()
        names = [self.run_job(hostile_jobs.leave_thread_running, release, WAIT)
                 for _ in range(2 * self.workers)]
        self.assertTrue(all(n.startswith("left-running") for n in names))
        self.assert_still_serving()
        harness.touch(release)

    def test_a_job_that_logs_keeps_its_interpreter(self):
        # The worker thread itself is not a thread the job left running.
        daemon = self.start_daemon(workers=1)
        with daemon.client() as client:
            first = client.run(hostile_jobs.log_a_line, timeout=WAIT)
            self.assertEqual(
                [client.run(hostile_jobs.log_a_line, timeout=WAIT)
                 for _ in range(5)], [first] * 5)
            self.assertEqual(client.status()["retired"]["threads"], 0)

    def test_interpreters_that_used_datetime_and_logging_end_cleanly(self):
        # Every job ends its interpreter (--max-jobs-per-interpreter 1):
        # with the interpreters that imported _datetime ending one after
        # another, CPython 3.13.0 crashed the daemon within a few jobs
        # unless the main interpreter set that module up first.
        daemon = self.start_daemon(workers=2, extra_args=(
            "--max-jobs-per-interpreter", "1"))
        with daemon.client() as client:
            futures = [client.submit(hostile_jobs.use_datetime_and_log)
                       for _ in range(30)]
            self.assertEqual([f.result(WAIT) for f in futures],
                             ["2026-12-03"] * 30)
            self.assertGreaterEqual(client.status()["retired"]["recycled"], 29)
        self.assertEqual(daemon.terminate(), 0)
        self.assertNotIn("Exception ignored", daemon.log())

    def test_interpreter_with_a_thread_left_running_is_retired(self):
        daemon = self.start_daemon()
        release = self.release_file(daemon)
        with daemon.client() as client:
            client.run(hostile_jobs.leave_thread_running, release, 120.0,
                       timeout=WAIT)
            # Every pool interpreter is thread-free again: the one with the
            # thread was replaced.
            futures = [client.submit(hostile_jobs.left_running_threads)
                       for _ in range(4 * self.workers)]
            self.assertEqual([f.result(WAIT) for f in futures],
                             [[]] * (4 * self.workers))
            self.assertEqual(client.status()["retired"]["threads"], 1)
        # The thread runs for 120 s; stopping must not wait for it.
        start = time.monotonic()
        self.assertEqual(daemon.terminate(), 0)
        self.assertLess(time.monotonic() - start, 20.0)


class ProcessExitTest(harness.DaemonTestCase):

    def test_os_exit_ends_the_daemon_and_clients_fail_fast(self):
        daemon = self.start_daemon()
        release = self.release_file(daemon)
        bystander = daemon.client(self)
        waiting = bystander.submit(jobs.wait_for_file, release, "late", WAIT)
        victim = daemon.client(self)
        future = victim.submit(hostile_jobs.exit_process, 7)
        # Both fail with a connection error well before their own deadlines.
        with self.assertRaises(DaemonConnectionError):
            future.result(WAIT)
        with self.assertRaises(DaemonConnectionError):
            waiting.result(WAIT)
        self.assertEqual(daemon.process.wait(WAIT), 7)
        with self.assertRaises(DaemonConnectionError):
            victim.run(jobs.add, 1, 2)
        with self.assertRaises(DaemonConnectionError):
            daemon.client()
        # The shared daemon never saw any of it.
        self.assertEqual(self.client.run(jobs.add, 1, 2), 3)


if __name__ == "__main__":
    unittest.main()
