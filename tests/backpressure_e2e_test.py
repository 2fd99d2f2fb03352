"""Flow control through the real daemon: a burst from many client processes
into a small queue waits for room instead of being refused, every job comes
back once, and a caller that asks not to wait is refused clearly."""

import json
import os
import pickle
import subprocess
import sys
import unittest

import harness
import jobs

from extrainterpreters import Client, DaemonBusy

WAIT = 120.0
CLIENTS, JOBS = 16, 300  # the bench runs 64 x 3000 (bench/README.md)


class BurstTest(harness.DaemonTestCase):
    workers = 2
    daemon_args = ("--max-queue-depth", "40", "--max-jobs-per-connection", "25")

    def test_a_burst_from_many_processes_is_never_refused(self):
        env = dict(os.environ, PYTHONPATH=harness.client_pythonpath())
        script = os.path.join(harness.TESTS_DIR, "burst_client.py")
        processes = [subprocess.Popen(
            [sys.executable, script, self.daemon.socket_path, str(JOBS), str(n)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for n in range(CLIENTS)]
        reports = []
        for process in processes:
            out, err = process.communicate(timeout=WAIT)
            self.assertEqual(process.returncode, 0, err)
            reports.append(json.loads(out))
        for report in reports:
            self.assertEqual((report["right"], report["error_count"]), (JOBS, 0),
                             report["errors"])
        totals = self.client.status()["totals"]
        self.assertGreaterEqual(totals["completed"], CLIENTS * JOBS)
        self.assertEqual(totals["failed"], 0)
        self.assertNotIn("queue full", self.daemon.log())  # no job refused

    def test_a_job_that_must_not_wait_is_refused_when_there_is_no_room(self):
        release = self.release_file()
        client = Client(self.daemon.socket_path)
        self.addCleanup(client.close)
        blockers = [client.submit(jobs.wait_for_file, release, i) for i in range(25)]
        # The connection's window (25) is full: no room here.
        with self.assertRaises(DaemonBusy) as cm:
            client.submit_with(jobs.add, (1, 2), wait=False)
        self.assertEqual(cm.exception.code, "busy")
        self.assertIn("max_jobs_per_connection", str(cm.exception))
        # Waiting has a limit when asked for one.
        limited = Client(self.daemon.socket_path, submit_timeout=0.2)
        self.addCleanup(limited.close)
        more = [limited.submit(jobs.wait_for_file, release, i) for i in range(25)]
        with self.assertRaises(DaemonBusy) as cm:
            limited.submit(jobs.add, 1, 2)
        self.assertIn("none ended within 0.2 s", str(cm.exception))
        # Another client's job waits in the daemon (its queue is full now),
        # and is not refused either.
        other = self.client.submit(jobs.add, 2, 2)
        harness.touch(release)
        self.assertEqual(other.result(WAIT), 4)
        self.assertEqual([f.result(WAIT) for f in blockers], list(range(25)))
        self.assertEqual([f.result(WAIT) for f in more], list(range(25)))
        self.assertEqual(client.run(jobs.add, 1, 2), 3)

    def test_the_daemon_holds_a_client_that_ignores_its_window(self):
        # Raw frames, past the window and past the queue: none refused.
        raw = harness.RawConnection(self.daemon.socket_path)
        self.addCleanup(raw.close)
        raw.hello()
        for request_id in range(1, 61):
            raw.run(request_id, pickle.dumps((jobs.add, (request_id, 0), {}), 5))
        for request_id in range(1, 61):
            reply = raw.read_reply(request_id)
            self.assertEqual(reply["type"], "result", reply)


if __name__ == "__main__":
    unittest.main()
