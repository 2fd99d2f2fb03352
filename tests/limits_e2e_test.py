"""End-to-end tests of the daemon's connection limits (PROTOCOL.md, "busy"
and "too_slow"; docs/operations.md, "Limits and faults").

Each test starts its own daemon with small limits on the command line and
drives it over raw sockets, so that a client can misbehave on purpose:
connect too often, queue too much, stall in the middle of a frame, sit idle,
or never read its replies. The daemon must answer each with its error, keep
serving everyone else, and answer every job it accepted.

Waits are polls with deadlines; no test depends on how fast the machine is.
"""

import os
import pickle
import resource
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import jobs  # noqa: E402

from extrainterpreters import _codec  # noqa: E402

IO_TIMEOUT = 30.0
HELLO = {"type": "hello", "id": 1, "protocol": 1, "client": "limits-test"}


def job(fn, *args):
    return pickle.dumps((fn, args, {}), protocol=5)


class LimitsTestCase(unittest.TestCase):

    def start(self, *args, workers=1):
        daemon = harness.Daemon(workers=workers, extra_args=args)
        self.addCleanup(daemon.stop)
        return daemon.start()

    def connect(self, daemon, **kwargs):
        conn = harness.RawConnection(daemon.socket_path, timeout=IO_TIMEOUT, **kwargs)
        self.addCleanup(conn.close)
        return conn

    def assert_error(self, header, code, fatal):
        self.assertEqual(header["type"], "error", header)
        self.assertEqual(header["code"], code, header)
        self.assertIs(header["fatal"], fatal, header)
        self.assertTrue(header["message"])

    def assert_closed_with(self, conn, code):
        """The daemon sends one fatal ``code`` error, then closes."""
        frames = conn.read_until_eof()
        self.assertTrue(frames, "closed without an error frame")
        self.assert_error(frames[-1].header, code, True)
        return frames[-1].header

    def status(self, conn):
        return conn.request("status")["status"]


class HelloTest(LimitsTestCase):

    def test_hello_announces_every_limit(self):
        daemon = self.start(
            "--max-connections", "7", "--max-jobs-per-connection", "5",
            "--max-queue-depth", "9", "--frame-deadline", "0.5",
            "--idle-timeout", "2.5", "--max-output-buffer", "1M")
        limits = self.connect(daemon).hello()["limits"]
        self.assertEqual(limits["max_connections"], 7)
        self.assertEqual(limits["max_jobs_per_connection"], 5)
        self.assertEqual(limits["max_queue_depth"], 9)
        self.assertEqual(limits["frame_deadline_seconds"], 0.5)
        self.assertEqual(limits["idle_timeout_seconds"], 2.5)
        self.assertEqual(limits["max_output_buffer"], 1 << 20)
        for key in ("max_frame_bytes", "max_header_bytes", "buffer_size",
                    "max_interpreters", "max_definitions",
                    "cancel_grace_seconds"):
            self.assertIn(key, limits)

    def test_defaults_are_announced(self):
        daemon = self.start()
        limits = self.connect(daemon).hello()["limits"]
        self.assertEqual(limits["max_jobs_per_connection"], 10000)
        self.assertEqual(limits["max_queue_depth"], 100000)
        self.assertEqual(limits["frame_deadline_seconds"], 30)
        self.assertEqual(limits["idle_timeout_seconds"], 0)
        self.assertEqual(limits["max_output_buffer"], 64 << 20)
        self.assertGreaterEqual(limits["max_connections"], 1)
        self.assertLessEqual(limits["max_connections"], 1024)


class ConnectionLimitTest(LimitsTestCase):

    def test_connections_past_the_limit_get_busy(self):
        daemon = self.start("--max-connections", "3")
        first = self.connect(daemon)
        first.hello()
        # The start-up check's connection may still be closing.
        harness.wait_until(lambda: self.status(first)["connections"] == 1,
                           message="one open connection")
        others = [self.connect(daemon) for _ in range(2)]
        for conn in others:
            conn.hello()
        for _ in range(3):
            refused = self.connect(daemon)
            refused.send(HELLO)
            header = self.assert_closed_with(refused, "busy")
            self.assertIsNone(header["id"])
            self.assertIn("3 connections are open (max_connections)",
                          header["message"])
        # The open connections are served throughout.
        for conn in [first, *others]:
            conn.run(7, job(jobs.add, 40, 2))
            reply = conn.read_reply(7)
            self.assertEqual(reply["type"], "result", reply)
        self.assertIn("connection refused", daemon.log())
        # A closed connection makes room for a new one.
        others[0].close()
        harness.wait_until(lambda: self.status(first)["connections"] == 2,
                           message="the closed connection to be gone")
        self.connect(daemon).hello()


class DescriptorExhaustionTest(LimitsTestCase):

    def test_accepting_pauses_when_out_of_descriptors_and_resumes(self):
        daemon = self.start()
        pid = daemon.process.pid
        watcher = self.connect(daemon)
        watcher.hello()
        harness.wait_until(lambda: self.status(watcher)["connections"] == 1,
                           message="one open connection")
        limit = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        self.addCleanup(restore_limit, pid, limit)
        # Room for two more descriptors, then accept fails with EMFILE.
        open_fds = len(os.listdir(f"/proc/{pid}/fd"))
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (open_fds + 2, limit[1]))
        waiting = [self.connect(daemon) for _ in range(5)]
        for conn in waiting:
            conn.send(HELLO)
        harness.wait_until(lambda: "pausing accepts" in daemon.log(),
                           message="accept to fail")
        cpu_before, started = cpu_seconds(pid), time.monotonic()
        self.assertLess(self.status(watcher)["connections"], 1 + len(waiting))
        harness.wait_until(lambda: time.monotonic() - started > 1.0,
                           message="a second to pass")
        # Paused, not spinning on the readable listening socket.
        self.assertLess(cpu_seconds(pid) - cpu_before,
                        0.5 * (time.monotonic() - started))
        self.assertEqual(daemon.log().count("accept failed"), 1)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, limit)
        for conn in waiting:
            self.assertEqual(conn.read_frame().header["type"], "hello")
        self.assertIn("accepting again", daemon.log())
        watcher.run(5, job(jobs.add, 2, 3))
        self.assertEqual(watcher.read_reply(5)["type"], "result")


def restore_limit(pid, limit):
    try:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, limit)
    except ProcessLookupError:
        pass


def cpu_seconds(pid):
    """User plus system CPU time of process ``pid`` so far, in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class JobLimitTest(LimitsTestCase):

    def test_jobs_past_max_jobs_per_connection_get_busy_when_they_ask(self):
        daemon = self.start("--max-jobs-per-connection", "3")
        release = os.path.join(daemon.tmpdir, "release")
        self.addCleanup(harness.touch, release)
        conn = self.connect(daemon)
        conn.hello()
        for request_id in range(10, 15):
            # "wait": false: refused when there is no room, not held.
            conn.send({"type": "run", "id": request_id, "wait": False},
                      job(jobs.wait_for_file, release, request_id))
        for request_id in (13, 14):
            reply = conn.read_reply(request_id)
            self.assert_error(reply, "busy", False)
            self.assertIn("max_jobs_per_connection", reply["message"])
        # Another connection is not limited by this one's jobs.
        other = self.connect(daemon)
        other.hello()
        other.run(5, job(jobs.add, 1, 2))
        harness.touch(release)
        self.assertEqual(other.read_reply(5)["type"], "result")
        for request_id in (10, 11, 12):
            self.assertEqual(conn.read_reply(request_id)["type"], "result")
        # Answered jobs free their places.
        conn.run(20, job(jobs.add, 1, 2))
        self.assertEqual(conn.read_reply(20)["type"], "result")
        totals = self.status(conn)["totals"]
        self.assertEqual(totals["submitted"], totals["completed"])

    def test_jobs_past_max_jobs_per_connection_wait_for_room(self):
        daemon = self.start("--max-jobs-per-connection", "3")
        release = os.path.join(daemon.tmpdir, "release")
        self.addCleanup(harness.touch, release)
        conn = self.connect(daemon)
        conn.hello()
        for request_id in range(10, 15):
            conn.run(request_id, job(jobs.wait_for_file, release, request_id))
        # Held, not refused; the daemon serves other connections meanwhile.
        other = self.connect(daemon)
        other.hello()
        self.assertEqual(other.request("ping")["type"], "ping")
        harness.wait_until(lambda: self.status(other)["totals"]["submitted"] == 3,
                           message="three of the five jobs in")
        harness.touch(release)
        for request_id in range(10, 15):
            self.assertEqual(conn.read_reply(request_id)["type"], "result")
        totals = self.status(other)["totals"]
        self.assertEqual((totals["submitted"], totals["completed"]), (5, 5))

    def test_jobs_past_max_queue_depth_get_busy(self):
        daemon = self.start("--max-queue-depth", "4")
        release = os.path.join(daemon.tmpdir, "release")
        self.addCleanup(harness.touch, release)
        first, second = self.connect(daemon), self.connect(daemon)
        first.hello()
        second.hello()
        # The one worker takes a job that blocks, so the rest stay queued.
        first.run(10, job(jobs.wait_for_file, release, 10))
        harness.wait_until(
            lambda: any(w["state"] == "busy" for w in
                        harness.pool_workers(self.status(second))),
            message="the blocking job to start")
        for request_id in (11, 12, 13):
            first.run(request_id, job(jobs.add, request_id, 0))
        harness.wait_until(lambda: self.status(second)["queue_depth"] == 3,
                           message="three queued jobs")
        submitted = 4
        for request_id in (21, 22, 23):
            second.send({"type": "run", "id": request_id, "wait": False},
                        job(jobs.add, request_id, 0))
        busy = 0
        for request_id in (22, 23):
            reply = second.read_reply(request_id)
            self.assert_error(reply, "busy", False)
            self.assertIn("max_queue_depth", reply["message"])
            busy += 1
        submitted += 1
        harness.touch(release)
        answered = 0
        for conn, ids in ((first, (10, 11, 12, 13)), (second, (21,))):
            for request_id in ids:
                reply = conn.read_reply(request_id)
                self.assertEqual(reply["type"], "result", reply)
                answered += 1
        self.assertEqual((answered, busy), (submitted, 2))
        self.assertEqual(self.status(first)["totals"]["completed"], submitted)
        self.assertIn("queue full", daemon.log())

    def test_jobs_past_max_queue_depth_wait_for_room_in_turn(self):
        daemon = self.start("--max-queue-depth", "2")
        release = os.path.join(daemon.tmpdir, "release")
        self.addCleanup(harness.touch, release)
        blocker = self.connect(daemon)
        blocker.hello()
        blocker.run(1, job(jobs.wait_for_file, release, 1))
        watcher = self.connect(daemon)
        watcher.hello()
        harness.wait_until(
            lambda: any(w["state"] == "busy" for w in
                        harness.pool_workers(self.status(watcher))),
            message="the blocking job to start")
        # Three connections send four jobs each into a queue with room for
        # two: none is refused; all wait, and go in as room frees.
        senders = [self.connect(daemon) for _ in range(3)]
        for n, conn in enumerate(senders):
            conn.hello()
            for k in range(4):
                conn.run(100 * n + k, job(jobs.add, 100 * n + k, 0))
        harness.wait_until(lambda: self.status(watcher)["queue_depth"] == 2,
                           message="the queue full")
        self.assertEqual(self.status(watcher)["totals"]["failed"], 0)
        harness.touch(release)
        for n, conn in enumerate(senders):
            for k in range(4):
                reply = conn.read_reply(100 * n + k)
                self.assertEqual(reply["type"], "result", reply)
        totals = self.status(watcher)["totals"]
        self.assertEqual((totals["submitted"], totals["completed"],
                          totals["failed"]), (13, 13, 0))


class DeadlineTest(LimitsTestCase):

    def test_stalled_frame_is_dropped_while_others_are_served(self):
        daemon = self.start("--frame-deadline", "0.5", workers=2)
        stalled = self.connect(daemon)
        stalled.hello()
        started = time.monotonic()
        stalled.sock.sendall(b"E")  # one byte of a frame, then nothing
        client = daemon.client(self)
        answered = 0
        stalled.sock.settimeout(0.01)
        while not stalled.eof:
            self.assertEqual(client.run(jobs.add, answered, 1), answered + 1)
            answered += 1
            self.assertLess(time.monotonic() - started, IO_TIMEOUT,
                            "the stalled client was never dropped")
            try:
                stalled._fill()
            except socket.timeout:
                pass
        elapsed = time.monotonic() - started
        self.assertGreaterEqual(elapsed, 0.5)
        self.assertGreater(answered, 0)
        self.assertEqual(len(stalled.frames), 1, stalled.frames)
        header = stalled.frames[0].header
        self.assert_error(header, "too_slow", True)
        self.assertIn("frame_deadline", header["message"])
        self.assertIn("client too slow: dropped", daemon.log())
        self.assertEqual(client.run(jobs.add, 2, 2), 4)

    def test_trickled_frame_is_dropped_at_the_deadline(self):
        daemon = self.start("--frame-deadline", "0.5")
        trickle = self.connect(daemon)
        trickle.hello()
        data = _codec.encode_frame({"type": "ping", "id": 2})
        started = time.monotonic()
        for i in range(len(data) - 1):
            try:
                trickle.sock.sendall(data[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            if time.monotonic() - started > 0.5:
                break  # past the deadline: enough sent
            time.sleep(0.05)
        self.assert_closed_with(trickle, "too_slow")
        self.assertGreaterEqual(time.monotonic() - started, 0.5)

    def test_idle_connection_is_closed(self):
        daemon = self.start("--idle-timeout", "0.5")
        release = os.path.join(daemon.tmpdir, "release")
        self.addCleanup(harness.touch, release)
        busy = self.connect(daemon)
        busy.hello()
        busy.run(10, job(jobs.wait_for_file, release, 10))
        started = time.monotonic()
        idle = self.connect(daemon)
        idle.hello()
        header = self.assert_closed_with(idle, "idle_timeout")
        self.assertIn("idle_timeout", header["message"])
        self.assertGreaterEqual(time.monotonic() - started, 0.5)
        # A second idle connection, closed in turn: by then the busy one has
        # waited more than twice the timeout with its job in flight.
        self.assert_closed_with(self.connect(daemon), "idle_timeout")
        self.assertEqual(busy.request("ping")["type"], "ping")
        harness.touch(release)
        self.assertEqual(busy.read_reply(10)["type"], "result")
        self.assertIn("idle connection closed", daemon.log())


class OutputBufferTest(LimitsTestCase):

    def test_client_that_does_not_read_is_dropped(self):
        daemon = self.start("--max-output-buffer", "256k", workers=2)
        watcher = self.connect(daemon)
        watcher.hello()
        baseline = rss_kib(daemon.process.pid)
        jobs_sent = 300  # 300 MiB of results if they were all kept
        reader = self.connect(daemon, rcvbuf=4096)
        reader.hello()
        payload = job(jobs.make_bytes, 1 << 20)
        for request_id in range(10, 10 + jobs_sent):
            try:
                reader.run(request_id, payload)
            except (BrokenPipeError, ConnectionResetError):
                break  # dropped already
        harness.wait_until(lambda: "client too slow: dropped" in daemon.log(),
                           message="the non-reading client to be dropped")
        frames = reader.read_until_eof()  # it ends, after what was sent
        self.assertLess(len(frames), jobs_sent)
        harness.wait_until(
            lambda: self.status(watcher)["connections"] == 1,
            message="the dropped connection to be gone")
        growth_mib = (rss_kib(daemon.process.pid) - baseline) / 1024
        self.assertLess(growth_mib, 64, f"RSS grew by {growth_mib:.0f} MiB")
        # The daemon keeps serving.
        watcher.run(5, job(jobs.add, 2, 3))
        self.assertEqual(watcher.read_reply(5)["type"], "result")


def rss_kib(pid):
    """The resident memory (VmRSS) of process ``pid``, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


if __name__ == "__main__":
    unittest.main()
