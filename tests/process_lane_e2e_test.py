"""The process lane through the real daemon: real numpy and pandas in worker
processes, chosen automatically; large arrays both ways; leases; output;
queues; and the daemon's routing counters.

numpy and pandas come from the test-only environment ./test.sh makes
(tests/requirements.txt); the daemon sees them through --python-path.
"""

import contextlib
import io
import os
import pickle
import sys
import unittest
from unittest import mock

import harness
import jobs
import lane_jobs

from extrainterpreters import Interpreter, InterpreterPoolExecutor, Queue

SITE = harness.test_site_packages()
sys.path.append(SITE)
import numpy  # noqa: E402  (from the test-only environment)
import pandas  # noqa: E402

WAIT = 60.0


def routed(client):
    return client.status()["lanes"]["process"]["routed"]


class ProcessLaneTest(harness.DaemonTestCase):
    workers = 2
    daemon_args = ("--python-path", f"{harness.TESTS_DIR}:{SITE}",
                   "--process-workers", "1", "--max-process-workers", "2")

    def test_a_numpy_job_runs_with_no_option(self):
        before = routed(self.client)["module"]
        self.assertEqual(self.client.run(numpy.add, 2, 3), 5)
        total = self.client.run(numpy.sum, numpy.arange(10))
        self.assertEqual(total, 45)
        # In a worker process, not in the daemon.
        self.assertNotEqual(self.client.run(os.getpid, lane="process"),
                            self.client.hello["pid"])
        self.assertGreaterEqual(routed(self.client)["module"], before + 2)

    def test_arrays_and_frames_travel_both_ways(self):
        array = numpy.arange(12, dtype=numpy.int64).reshape(3, 4)
        doubled = self.client.run(lane_jobs.scale, array, 2)
        numpy.testing.assert_array_equal(doubled, array * 2)
        self.assertEqual(doubled.dtype, numpy.int64)
        frame = pandas.DataFrame({"x": [1.0, 2.0, 3.0, 6.0]})
        self.assertEqual(self.client.run(lane_jobs.frame_mean, frame, "x"), 3.0)
        made = self.client.run(lane_jobs.make_frame, 4, lane="process")
        self.assertEqual(list(made["sq"]), [0, 1, 4, 9])

    def test_64_mib_arrays_as_argument_and_result(self):
        big = numpy.arange(8 * 1024 * 1024, dtype=numpy.float64)  # 64 MiB
        result = self.client.run(lane_jobs.scale, big, 3.0)
        self.assertEqual(result.nbytes, 64 << 20)
        self.assertEqual(result[0], 0.0)
        self.assertEqual(result[-1], 3.0 * (big.size - 1))
        numpy.testing.assert_array_equal(result[::4096], big[::4096] * 3.0)

    def test_mid_size_buffers_bound_for_a_worker_process_go_out_of_band(self):
        # 512 KiB: under the 1 MiB from which buffers always leave the
        # pickle, but a job bound for a worker process (a numpy argument
        # sends it there; or lane="process") would be copied twice in its
        # frame, so its buffers go out of band from 256 KiB.
        headers = []
        connection = self.client._keeper.current()
        send = connection.request

        def spy(header, *args, **kwargs):
            headers.append(header)
            return send(header, *args, **kwargs)

        patcher = mock.patch.object(connection, "request", spy)
        patcher.start()
        self.addCleanup(patcher.stop)
        array = numpy.arange(64 * 1024, dtype=numpy.float64)  # 512 KiB
        numpy.testing.assert_array_equal(
            self.client.run(lane_jobs.scale, array, 2.0), array * 2.0)
        blob = bytes(range(256)) * 2048  # 512 KiB
        self.assertEqual(self.client.run(lane_jobs.checksum, blob,
                                         lane="process"), sum(blob))
        self.assertEqual(self.client.run(lane_jobs.checksum, blob), sum(blob))
        runs = [h for h in headers if h["type"] == "run"]
        self.assertEqual(["oob" in h for h in runs], [True, True, False])

    def test_arrays_pickle_plainly_unless_they_may_hold_what_goes_by_value(self):
        # A plain array takes plain pickle's short way: the same bytes.
        from extrainterpreters import _byvalue
        job = (lane_jobs.scale, (numpy.arange(8), 2), {})
        self.assertEqual(_byvalue.dump_job(*job).payload, pickle.dumps(job, protocol=5))
        # An object array may hold a lambda, which goes by value.
        functions = numpy.array([lambda: 5, lambda: 6], dtype=object)
        self.assertEqual(self.client.run(lane_jobs.call_each, functions, lane="process"),
                         [5, 6])
        with_metadata = numpy.zeros(3, dtype=numpy.dtype(float, metadata={"f": lambda: 1}))
        numpy.testing.assert_array_equal(
            self.client.run(lane_jobs.scale, with_metadata, 2.0, lane="process"), [0.0] * 3)

    def test_a_by_value_function_and_a_lambda(self):
        def centred(values):
            return values - values.mean()
        out = self.client.run(centred, numpy.array([1.0, 2.0, 3.0]))
        numpy.testing.assert_array_equal(out, [-1.0, 0.0, 1.0])
        self.assertEqual(self.client.run(lambda a: int((a * 2).sum()),
                                         numpy.arange(4)), 12)

    def test_output_reaches_the_caller(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(self.client.run(lane_jobs.print_and_return,
                                             "from a worker process",
                                             lane="process"),
                             "from a worker process")
        self.assertIn("from a worker process\n", out.getvalue())

    def test_queues_inside_process_lane_jobs(self):
        q = Queue(client=self.client)
        self.assertEqual(self.client.run(lane_jobs.put_squares, q, 5), 5)
        self.assertEqual([q.get(timeout=WAIT) for _ in range(5)],
                         [0, 1, 4, 9, 16])
        waiting = self.client.submit(lane_jobs.get_one, q, lane="process")
        q.put("hello")
        self.assertEqual(waiting.result(WAIT), "hello")

    def test_a_leased_worker_process_keeps_its_state(self):
        with Interpreter(client=self.client, lane="process") as worker:
            self.assertEqual(worker.lane, "process")
            self.assertEqual(worker.run(lane_jobs.getpid), worker.id)
            worker.run(lane_jobs.set_state, numpy.arange(3))
            numpy.testing.assert_array_equal(worker.run(lane_jobs.get_state),
                                             [0, 1, 2])
            leased = [w for w in self.client.status()["process_workers"]
                      if w["kind"] == "lease"]
            self.assertEqual([w["pid"] for w in leased], [worker.id])

    def test_an_argument_a_leased_job_keeps_is_never_overwritten(self):
        # The worker keeps the client's reused argument files mapped; a job
        # that keeps a view of one (a numpy array unpickled from it) has it
        # for good, and the client writes later arguments elsewhere.
        first = numpy.full(64 * 1024, 1.0)  # 512 KiB: out of band
        with Interpreter(client=self.client, lane="process") as worker:
            worker.run(lane_jobs.set_state, first)
            for value in (2.0, 3.0, 4.0):
                array = numpy.full(64 * 1024, value)
                numpy.testing.assert_array_equal(worker.run(lane_jobs.scale, array, 1.0),
                                                 array)
            numpy.testing.assert_array_equal(worker.run(lane_jobs.get_state), first)

    def test_a_lease_that_keeps_each_argument_keeps_bounded_mappings(self):
        # Each kept argument pins the worker's mapping of its file; past
        # 64 MiB of those, a job maps its file itself, and that mapping
        # goes when the job's state lets go of the array.
        with Interpreter(client=self.client, lane="process") as worker:
            for value in range(100):
                array = numpy.full(128 * 1024, float(value))  # 1 MiB: out of band
                worker.run(lane_jobs.set_state, array)
            numpy.testing.assert_array_equal(worker.run(lane_jobs.get_state), array)
            self.assertLessEqual(_region_mappings(worker.id), 64 + 2)

    def test_the_executor_in_the_process_lane(self):
        with InterpreterPoolExecutor(2, socket_path=self.daemon.socket_path,
                                     lane="process") as pool:
            self.assertEqual(list(pool.map(numpy.sqrt, [1.0, 4.0, 9.0])),
                             [1.0, 2.0, 3.0])
            self.assertEqual(list(pool.map(numpy.sqrt, [1.0, 4.0, 9.0] * 9,
                                           chunksize=2)),
                             [1.0, 2.0, 3.0] * 9)

    def test_status_shows_the_worker_processes(self):
        self.client.run(numpy.add, 1, 1)
        status = self.client.status()
        workers = status["process_workers"]
        self.assertGreaterEqual(len(workers), 1)
        for worker in workers:
            self.assertGreater(worker["pid"], 0)
            self.assertEqual(os.readlink(f"/proc/{worker['pid']}/exe"),
                             os.readlink(f"/proc/{status['pid']}/exe"))
            self.assertGreater(worker["rss_bytes"], 1 << 20)
        self.assertGreaterEqual(sum(w["jobs_done"] for w in workers), 1)
        self.assertGreaterEqual(status["lanes"]["process"]["jobs"], 1)

    def test_an_unknown_lane_is_refused_clearly(self):
        with self.assertRaises(ValueError) as cm:
            self.client.run(numpy.add, 1, 1, lane="gpu")
        self.assertIn("'gpu'", str(cm.exception))
        raw = harness.RawConnection(self.daemon.socket_path)
        self.addCleanup(raw.close)
        raw.hello()
        reply = raw.request("lease", lane="gpu")
        self.assertEqual((reply["type"], reply["code"]), ("error", "bad_request"))
        self.assertIn("lane", reply["message"])
        self.assertEqual(self.client.run(numpy.add, 1, 1), 2)  # still serving


def _region_mappings(pid):
    """Mappings of the client's reused argument files in process ``pid``."""
    with open(f"/proc/{pid}/maps") as f:
        return sum("extrainterpreters-region" in line for line in f)


def _faults_and_rss(pid):
    """Minor page faults so far and resident anonymous bytes of ``pid``."""
    with open(f"/proc/{pid}/stat") as f:
        faults = int(f.read().rsplit(")", 1)[1].split()[7])
    with open(f"/proc/{pid}/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))
    return faults, kib << 10


class WorkerMemoryTest(harness.DaemonTestCase):
    """A worker process keeps the memory a job freed for the next job (no
    page faults to get it again), and gives it back once idle."""
    workers = 1
    daemon_args = ("--python-path", f"{harness.TESTS_DIR}:{SITE}",
                   "--process-workers", "1", "--max-process-workers", "1")

    def test_freed_memory_is_kept_between_jobs_and_returned_when_idle(self):
        size = 8 << 20  # 2,048 pages, three times a job
        pid = self.client.run(lane_jobs.churn, size, lane="process")
        faults, _ = _faults_and_rss(pid)
        for _ in range(3):
            self.assertEqual(self.client.run(lane_jobs.churn, size, lane="process"), pid)
        faults_after, rss = _faults_and_rss(pid)
        # Given back and faulted in again, it would be 3 x 3 x 2,048.
        self.assertLess(faults_after - faults, 1024)
        self.assertGreater(rss, size)
        harness.wait_until(lambda: _faults_and_rss(pid)[1] < rss - size // 2, WAIT,
                           "the idle worker process to give freed memory back")

    def test_a_reused_argument_file_stays_mapped_until_the_worker_idles(self):
        # Each argument is written into the client's reused file; the worker
        # maps it once, and still sees each job's own data.
        for value in range(4):
            array = numpy.full(64 * 1024, float(value))  # 512 KiB: out of band
            numpy.testing.assert_array_equal(
                self.client.run(lane_jobs.scale, array, 2.0), array * 2.0)
        pid = self.client.run(lane_jobs.getpid, lane="process")
        self.assertEqual(_region_mappings(pid), 1)
        harness.wait_until(lambda: _region_mappings(pid) == 0, WAIT,
                           "the idle worker process to unmap the file")


class ShrinkTest(harness.DaemonTestCase):
    """Worker processes started for a burst end once idle; the warm ones
    stay."""
    workers = 1
    daemon_args = ("--python-path", f"{harness.TESTS_DIR}:{SITE}",
                   "--process-workers", "1", "--max-process-workers", "3",
                   "--process-worker-idle", "0.5")

    def pids(self):
        return {w["pid"] for w in self.client.status()["process_workers"]}

    def burst(self):
        """Three jobs at once: the lane grows to three workers."""
        release = self.release_file()
        futures = [self.client.submit(jobs.wait_for_file, release, i,
                                      lane="process") for i in range(3)]
        harness.wait_until(lambda: len(self.pids()) == 3, WAIT,
                           "three worker processes")
        grown = self.pids()
        harness.touch(release)
        self.assertEqual(sorted(f.result(WAIT) for f in futures), [0, 1, 2])
        return grown

    def test_grown_workers_end_when_idle_and_start_again(self):
        warm = self.pids()
        self.assertEqual(len(warm), 1)
        grown = self.burst()
        harness.wait_until(lambda: len(self.pids()) == 1, WAIT,
                           "the lane back at one worker process")
        # The ones that ended are gone from the system, not just the list.
        for pid in grown - self.pids():
            harness.wait_until(lambda: not os.path.exists(f"/proc/{pid}"), WAIT,
                               f"worker process {pid} to end")
        # The next burst grows it again, and every job still runs.
        self.assertEqual(len(self.burst()), 3)
        harness.wait_until(lambda: len(self.pids()) == 1, WAIT,
                           "the lane back at one worker process")
        self.assertEqual(self.client.run(lane_jobs.getpid, lane="process"),
                         next(iter(self.pids())))


class RoutingTest(harness.DaemonTestCase):
    """Jobs that name no listed module: the interpreter lane tries them, and
    hands them to the process lane when a sub-interpreter refuses.
    _testsinglephase (CPython's own single-phase test extension) refuses
    cleanly, and is not in the default --process-modules."""

    workers = 1
    daemon_args = ("--python-path", f"{harness.TESTS_DIR}:{SITE}")

    def setUp(self):
        super().setUp()
        if not self.client.run(lane_jobs.getpid, lane="process"):
            self.fail("no process lane")
        try:
            __import__("_testsinglephase")
        except ImportError:
            self.skipTest("this Python has no _testsinglephase")
        self.marks = os.path.join(self.daemon.tmpdir, f"marks-{self.id()}")

    def test_refused_while_loading_goes_to_the_process_lane(self):
        import _testsinglephase
        before = routed(self.client)
        # Unpickling the job imports _testsinglephase: no job code ran yet.
        self.assertEqual(self.client.run(_testsinglephase.sum, 2, 3), 5)
        after = routed(self.client)
        self.assertEqual(after["load_refused"], before["load_refused"] + 1)
        # Remembered: the next call goes straight there.
        self.assertEqual(self.client.run(_testsinglephase.sum, 4, 5), 9)
        self.assertEqual(routed(self.client)["remembered"],
                         after["remembered"] + 1)

    def test_refused_while_running_runs_again_once(self):
        before = routed(self.client)
        self.assertEqual(self.client.run(lane_jobs.mark_then_import,
                                         self.marks, "_testsinglephase"),
                         "_testsinglephase")
        # The code before the import ran twice: in a sub-interpreter (the
        # daemon's pid) and again in a worker process.
        pids = lane_jobs.lines(self.marks)
        self.assertEqual(len(pids), 2, pids)
        self.assertEqual(int(pids[0]), self.client.hello["pid"])
        self.assertNotEqual(int(pids[1]), self.client.hello["pid"])
        self.assertEqual(routed(self.client)["run_refused"],
                         before["run_refused"] + 1)
        # Remembered: once more, straight to a worker process.
        self.client.run(lane_jobs.mark_then_import, self.marks,
                        "_testsinglephase")
        self.assertEqual(len(lane_jobs.lines(self.marks)), 3)

    def test_running_again_can_be_turned_off_per_job(self):
        # A daemon of its own: this daemon remembers the function from
        # another test, and would send it straight to a worker process.
        daemon = self.start_daemon(
            workers=1, extra_args=("--python-path", f"{harness.TESTS_DIR}:{SITE}"))
        future = daemon.client(self).submit_with(
            lane_jobs.mark_then_import, (self.marks, "_testsinglephase"),
            rerun=False)
        with self.assertRaises(ImportError) as cm:
            future.result(WAIT)
        self.assertIn("does not support loading in subinterpreters",
                      str(cm.exception))
        self.assertEqual(len(lane_jobs.lines(self.marks)), 1)

    def test_running_again_can_be_turned_off_for_the_daemon(self):
        daemon = self.start_daemon(
            workers=1, extra_args=("--python-path", f"{harness.TESTS_DIR}:{SITE}",
                                   "--process-rerun", "false"))
        client = daemon.client(self)
        with self.assertRaises(ImportError):
            client.run(lane_jobs.mark_then_import, self.marks,
                       "_testsinglephase")
        self.assertEqual(len(lane_jobs.lines(self.marks)), 1)

    def test_a_listed_module_never_loads_in_a_sub_interpreter(self):
        # Explicitly in the interpreter lane, a numpy job fails cleanly (on
        # CPython 3.13.0, letting numpy's import fail there on its own
        # aborts the process) and the daemon goes on serving.
        with self.assertRaises(ImportError) as cm:
            self.client.run(lane_jobs.numpy_total, [1, 2],
                            lane="interpreter")
        self.assertIn("--process-modules", str(cm.exception))
        # Left to choose, the daemon runs it in a worker process.
        self.assertEqual(self.client.run(lane_jobs.numpy_total, [1, 2]), 3)

    def test_process_modules_can_be_added_to(self):
        daemon = self.start_daemon(
            workers=1, extra_args=("--python-path", f"{harness.TESTS_DIR}:{SITE}",
                                   "--process-modules", "+lane_jobs"))
        client = daemon.client(self)
        # Announced in hello, the defaults with the added one.
        self.assertIn("lane_jobs", client.hello["process_modules"])
        self.assertIn("numpy", client.hello["process_modules"])
        self.assertNotEqual(client.run(lane_jobs.getpid), daemon.process.pid)
        self.assertEqual(
            client.status()["lanes"]["process"]["routed"]["module"], 1)


if __name__ == "__main__":
    unittest.main()
