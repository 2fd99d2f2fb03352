"""Unit tests of job options, cancel and output frames, against the scripted
fake daemon of client_unit_test (no real daemon): the exact frames the
client sends, and what it does with replies the real daemon rarely sends
(a reply racing a cancel, an error about a job nobody cancelled here)."""

import asyncio
import concurrent.futures
import contextlib
import io
import os
import pickle
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client_unit_test import IO_TIMEOUT, FakeDaemon  # noqa: E402

import extrainterpreters  # noqa: E402
from extrainterpreters import JobTimeout, ProtocolError  # noqa: E402


class FakeDaemonTest(unittest.TestCase):

    def serve(self, script):
        fake = FakeDaemon(script)
        self.addCleanup(fake.close)
        return fake

    def connect(self, script):
        client = extrainterpreters.Client(self.serve(script).path)
        self.addCleanup(client.close)
        return client


def ok(peer, request, value):
    peer.send({"type": "result", "id": request.header["id"], "status": "ok"},
              pickle.dumps(value))


def output(peer, request, data, stream="stdout"):
    peer.send({"type": "output", "id": request.header["id"],
               "stream": stream, "data": data})


class JobOptionsTest(FakeDaemonTest):

    def test_run_header_carries_timeout_and_output(self):
        seen = []

        def script(peer):
            for _ in range(3):
                request = peer.receive()
                seen.append(request)
                ok(peer, request, None)
            peer.wait_for_close()
        client = self.connect(script)
        client.run(len, "a", timeout=2.5)
        client.submit_with(len, ("a",), timeout=1, output=False).result()
        client.submit(len, "a").result()
        self.assertEqual([(r.header.get("timeout"), r.header.get("output"))
                          for r in seen],
                         [(2.5, True), (1, None), (None, True)])
        self.assertEqual(pickle.loads(seen[0].payload), (len, ("a",), {}))

    def test_output_false_client(self):
        seen = []

        def script(peer):
            request = peer.receive()
            seen.append(request)
            ok(peer, request, None)
            peer.wait_for_close()
        fake = self.serve(script)
        client = extrainterpreters.Client(fake.path, output=False)
        self.addCleanup(client.close)
        client.run(len, "a")
        self.assertNotIn("output", seen[0].header)

    def test_submit_with_passes_a_timeout_keyword_to_fn(self):
        seen = []

        def script(peer):
            request = peer.receive()
            seen.append(request)
            ok(peer, request, None)
            peer.wait_for_close()
        client = self.connect(script)
        client.submit_with(dict, kwargs={"timeout": 3}).result(IO_TIMEOUT)
        self.assertEqual(pickle.loads(seen[0].payload),
                         (dict, (), {"timeout": 3}))
        self.assertNotIn("timeout", seen[0].header)

    def test_timeout_error_is_job_timeout(self):
        def script(peer):
            request = peer.receive()
            peer.send({"type": "error", "id": request.header["id"],
                       "code": "timeout", "fatal": False,
                       "message": "job 2 ran past its timeout"})
            peer.wait_for_close()
        client = self.connect(script)
        with self.assertRaises(JobTimeout) as cm:
            client.run(len, "a", timeout=1)
        self.assertIsInstance(cm.exception, TimeoutError)
        self.assertEqual(cm.exception.code, "timeout")
        self.assertIn("past its timeout", str(cm.exception))


class CancelTest(FakeDaemonTest):

    def test_cancel_sends_cancel_and_ignores_the_late_reply(self):
        seen = []

        def script(peer):
            job = peer.receive()
            cancel = peer.receive()
            seen.append((job, cancel))
            output(peer, job, "dropped\n")
            peer.send({"type": "cancel", "id": cancel.header["id"],
                       "job": job.header["id"], "state": "running"})
            peer.send({"type": "error", "id": job.header["id"],
                       "code": "cancelled", "fatal": False,
                       "message": "cancelled"})
            after = peer.receive()
            ok(peer, after, "after")
            peer.wait_for_close()
        client = self.connect(script)
        future = client.submit(len, "a")
        self.assertTrue(future.cancel())
        self.assertTrue(future.cancelled())
        with self.assertRaises(concurrent.futures.CancelledError):
            future.result(0)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(client.run(len, "b"), "after")
        self.assertEqual(out.getvalue(), "")
        (job, cancel), = seen
        self.assertEqual(cancel.header["type"], "cancel")
        self.assertEqual(cancel.header["job"], job.header["id"])
        self.assertEqual(future.job_id, job.header["id"])
        self.assertFalse(client.closed)

    def test_cancel_after_the_reply_returns_false(self):
        def script(peer):
            ok(peer, peer.receive(), 1)
            peer.wait_for_close()
        client = self.connect(script)
        future = client.submit(len, "a")
        self.assertEqual(future.result(IO_TIMEOUT), 1)
        self.assertFalse(future.cancel())

    def test_cancelled_by_the_daemon_marks_the_future_cancelled(self):
        def script(peer):
            request = peer.receive()
            peer.send({"type": "error", "id": request.header["id"],
                       "code": "cancelled", "fatal": False,
                       "message": "stopped by an operator"})
            peer.wait_for_close()
        client = self.connect(script)
        future = client.submit(len, "a")
        with self.assertRaises(concurrent.futures.CancelledError):
            future.result(IO_TIMEOUT)
        self.assertTrue(future.cancelled())

    def test_wait_sees_a_cancelled_running_future(self):
        client = self.connect(lambda peer: peer.wait_for_close())
        future = client.submit(len, "a")
        self.assertTrue(future.running())
        future.cancel()
        done, not_done = concurrent.futures.wait([future], 0)
        self.assertEqual(done, {future})


class OutputTest(FakeDaemonTest):

    def test_output_frames_go_to_the_callers_streams(self):
        def script(peer):
            request = peer.receive()
            output(peer, request, "one\n")
            output(peer, request, "two\n", "stderr")
            output(peer, request, "three\n")
            ok(peer, request, 3)
            peer.wait_for_close()
        client = self.connect(script)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            self.assertEqual(client.run(len, "abc"), 3)
        self.assertEqual(out.getvalue(), "one\nthree\n")
        self.assertEqual(err.getvalue(), "two\n")

    def test_output_for_no_such_job_is_a_protocol_error(self):
        def script(peer):
            peer.receive()
            peer.send({"type": "output", "id": 999, "stream": "stdout",
                       "data": "x\n"})
            peer.wait_for_close()
        client = self.connect(script)
        with self.assertRaises(ProtocolError):
            client.run(len, "a")


class AsyncCancelTest(FakeDaemonTest):

    def test_cancelling_the_task_sends_cancel(self):
        seen = []

        def script(peer):
            job = peer.receive()
            cancel = peer.receive()
            seen.append((job, cancel))
            peer.send({"type": "cancel", "id": cancel.header["id"],
                       "job": job.header["id"], "state": "queued"})
            peer.send({"type": "error", "id": job.header["id"],
                       "code": "cancelled", "fatal": False,
                       "message": "cancelled"})
            ok(peer, peer.receive(), "after")
            peer.wait_for_close()
        fake = self.serve(script)

        async def main():
            async with extrainterpreters.AsyncClient(fake.path) as client:
                task = asyncio.ensure_future(client.run(len, "a"))
                await asyncio.sleep(0)
                task.cancel()
                with self.assertRaises(asyncio.CancelledError):
                    await task
                return await client.run(len, "b")
        self.assertEqual(asyncio.run(asyncio.wait_for(main(), IO_TIMEOUT)),
                         "after")
        (job, cancel), = seen
        self.assertEqual(cancel.header["job"], job.header["id"])

if __name__ == "__main__":
    unittest.main()
