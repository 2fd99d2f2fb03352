"""End-to-end tests of the daemon as a whole: parallelism and shutdown."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import jobs  # noqa: E402

from extrainterpreters import DaemonConnectionError, RemoteError  # noqa: E402

SPIN_ITERATIONS = 3_000_000


def usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class PerInterpreterGilTest(harness.DaemonTestCase):

    # Another process on the machine can take a CPU away from one attempt;
    # it cannot make a shared GIL pass, so retrying keeps the proof sound.
    ATTEMPTS = 5

    def test_cpu_bound_jobs_run_in_parallel(self):
        if usable_cpus() < 2:
            self.skipTest("needs two CPUs to show two jobs running at once")
        measurements = []
        for _ in range(self.ATTEMPTS):
            one, two = self.spin_twice()
            self.assertNotEqual(one["interpreter"], two["interpreter"])
            # The loops overlap in time: each started before the other ended.
            self.assertLess(one["start"], two["end"])
            self.assertLess(two["start"], one["end"])
            # And they ran at the same instants, not taking turns: if only
            # one thread at a time could run (one GIL), the CPU time of both
            # loops together could not exceed the wall time from the first
            # start to the last end. Both clocks are the daemon's own.
            span = (max(one["end"], two["end"])
                    - min(one["start"], two["start"]))
            cpu = one["cpu"] + two["cpu"]
            if cpu > span:
                return
            measurements.append(f"cpu {cpu:.3f} s in span {span:.3f} s")
        self.fail(f"the loops never ran at the same time (the CPU time of "
                  f"both never exceeded their wall time span): "
                  f"{'; '.join(measurements)}")

    def spin_twice(self):
        """Run two ``spin_together`` jobs at once; return their reports."""
        tmp = self.tmp_path()
        a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
        first = self.client.submit(jobs.spin_together, a, b, SPIN_ITERATIONS)
        second = self.client.submit(jobs.spin_together, b, a, SPIN_ITERATIONS)
        return first.result(timeout=120), second.result(timeout=120)


class ShutdownTest(harness.DaemonTestCase):

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
