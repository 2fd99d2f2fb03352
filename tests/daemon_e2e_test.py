"""End-to-end tests of the daemon as a whole: parallelism and shutdown."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import jobs  # noqa: E402

import extrainterpreters  # noqa: E402
from extrainterpreters import DaemonConnectionError, RemoteError  # noqa: E402


class PerInterpreterGilTest(harness.DaemonTestCase):

    def test_jobs_run_at_once_each_holding_its_own_gil(self):
        flags = os.path.join(self.tmp_path(), "flags")
        with open(flags, "wb") as f:
            f.write(b"\0\0")
        spinner = self.client.submit(jobs.spin_holding_gil, flags)
        releaser = self.client.submit(jobs.release_spinner, flags)
        spun, released = spinner.result(timeout=120), releaser.result(timeout=120)
        self.assertTrue(spun["released"],
                        "the spinner held its GIL and was never released: "
                        "the two interpreters share one GIL")
        self.assertNotEqual(spun["interpreter"], released["interpreter"])
        # The releasing job ran while the spinner ran: it started before the
        # spinner ended, and ended after the spinner started.
        self.assertLess(released["start"], spun["end"])
        self.assertLess(spun["start"], released["end"])


class ShutdownTest(harness.DaemonTestCase):

    def test_stopping_never_removes_another_daemons_socket(self):
        first = self.start_daemon()
        path = first.socket_path
        os.unlink(path)  # as a careless cleanup would
        second = harness.Daemon(workers=1)
        second.socket_path = path  # the same path, now free
        self.addCleanup(second.stop)
        second.start()
        self.assertEqual(first.terminate(), 0)
        self.assertTrue(os.path.exists(path),
                        "the first daemon removed the second one's socket")
        with extrainterpreters.Client(path) as client:
            self.assertEqual(client.run(jobs.add, 2, 2), 4)

    def test_sigterm_answers_every_job_in_flight(self):
        """Every job in flight gets a reply before the connection closes.

        PROTOCOL.md: a job either ran (a ``result``, here the right value)
        or got ``shutting_down`` ("the daemon is stopping and did not run
        the job"). A job whose connection closed with no reply would fail
        with DaemonConnectionError, which this test counts as a failure.
        """
        daemon = self.start_daemon()
        client = daemon.client(self)
        release = self.release_file(daemon)
        running = [client.submit(jobs.wait_for_file, release, n)
                   for n in range(self.workers)]
        queued = [client.submit(jobs.add, n, 100) for n in range(10)]
        harness.wait_until(
            lambda: all(w["state"] == "busy"
                        for w in harness.pool_workers(client.status())),
            message="every pool worker to be busy")

        daemon.process.terminate()
        # Running jobs must be allowed to finish for the daemon to stop.
        harness.touch(release)
        outcomes = [self.outcome(f) for f in running + queued]

        expected = list(range(self.workers)) + [n + 100 for n in range(10)]
        for outcome, value in zip(outcomes, expected):
            self.assertIn(outcome, (value, "shutting_down"))
        self.assertEqual(daemon.process.wait(harness.STOP_TIMEOUT), 0,
                         daemon.log())
        self.assertFalse(os.path.exists(daemon.socket_path),
                         "the daemon left its socket file behind")

    def test_sigterm_when_idle(self):
        daemon = self.start_daemon()
        self.assertEqual(daemon.terminate(), 0, daemon.log())
        self.assertFalse(os.path.exists(daemon.socket_path))

    def outcome(self, future):
        """A job's value, or the code of the error reply it got."""
        try:
            return future.result(timeout=harness.STOP_TIMEOUT)
        except RemoteError as exc:
            return exc.code
        except DaemonConnectionError as exc:
            self.fail(f"a job in flight got no reply: {exc}")


if __name__ == "__main__":
    unittest.main()
