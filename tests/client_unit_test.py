"""Unit tests of the client against a scripted fake daemon (no real daemon).

The fake peer lets each test send exactly the replies it needs, including
ones the real daemon never should: out-of-order replies, fatal errors,
replies to unknown ids, a connection cut in the middle of a frame.
"""

import gc
import json
import os
import pickle
import shutil
import socket
import struct
import sys
import tempfile
import threading
import unittest
import unittest.mock
import weakref

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (makes the client importable outside Bazel)

import extrainterpreters  # noqa: E402
from extrainterpreters import (  # noqa: E402
    DaemonConnectionError, ProtocolError, RemoteError, _codec, _regions)

HELLO_REPLY = {"type": "hello", "protocol": 1, "daemon_version": "0.1.0",
               "pid": 1, "python": "3.13.0", "workers": 1,
               "limits": {"max_frame_bytes": 268435456,
                          "max_header_bytes": 65536,
                          "buffer_size": 10485760, "max_interpreters": 4}}
IO_TIMEOUT = 30.0


class FakeDaemon:
    """Accepts one connection and runs ``script(peer)`` on it in a thread."""

    def __init__(self, script, *, answer_hello=True):
        self.tmpdir = tempfile.mkdtemp(prefix="ei-fake-", dir="/tmp")
        self.path = os.path.join(self.tmpdir, "ei.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(1)
        self.listener.settimeout(IO_TIMEOUT)
        self.script = script
        self.answer_hello = answer_hello
        self.error = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.listener.accept()
            with conn:
                peer = Peer(conn)
                if self.answer_hello:
                    hello = peer.receive()
                    peer.send(dict(HELLO_REPLY, id=hello.header["id"]))
                self.script(peer)
        except BaseException as exc:  # Reported by close().
            self.error = exc

    def close(self):
        self.thread.join(IO_TIMEOUT)
        self.listener.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        if self.error is not None:
            raise self.error


class Peer:
    """The fake daemon's end of one connection."""

    def __init__(self, conn):
        conn.settimeout(IO_TIMEOUT)
        self.conn = conn
        self.decoder = _codec.FrameDecoder()
        self.frames = []

    def receive(self):
        while not self.frames:
            data = self.conn.recv(65536)
            if not data:
                raise EOFError("client closed the connection")
            self.frames += self.decoder.feed(data)
        return self.frames.pop(0)

    def send(self, header, payload=b""):
        # By hand, not with encode_frame, which refuses the null id that
        # the daemon's connection-level errors carry.
        header_bytes = json.dumps(header).encode("utf-8")
        self.conn.sendall(struct.pack(">4sBBHII", b"EIPC", 1, 0, 0,
                                      len(header_bytes), len(payload))
                          + header_bytes + payload)

    def send_raw(self, data):
        self.conn.sendall(data)

    def wait_for_close(self):
        """Block until the client closes its end."""
        while self.conn.recv(65536):
            pass


class FakeDaemonTest(unittest.TestCase):

    def serve(self, script, **kwargs):
        fake = FakeDaemon(script, **kwargs)
        self.addCleanup(fake.close)
        return fake

    def connect(self, script, **kwargs):
        fake = self.serve(script, **kwargs)
        client = extrainterpreters.Client(fake.path)
        self.addCleanup(client.close)
        return client

    def test_replies_out_of_order_reach_their_futures(self):
        def script(peer):
            first, second = peer.receive(), peer.receive()
            peer.send({"type": "result", "id": second.header["id"],
                       "status": "ok"}, pickle.dumps("second"))
            peer.send({"type": "result", "id": first.header["id"],
                       "status": "ok"}, pickle.dumps("first"))
            peer.wait_for_close()
        client = self.connect(script)
        first = client.submit(len, "a")
        second = client.submit(len, "b")
        self.assertEqual(second.result(IO_TIMEOUT), "second")
        self.assertEqual(first.result(IO_TIMEOUT), "first")

    def test_request_frames_follow_the_protocol(self):
        seen = []

        def script(peer):
            request = peer.receive()
            seen.append(request)
            peer.send({"type": "result", "id": request.header["id"],
                       "status": "ok"}, pickle.dumps(None))
            peer.wait_for_close()
        client = self.connect(script)
        client.run(divmod, 7, 2)
        (request,) = seen
        self.assertEqual(request.header["type"], "run")
        self.assertNotIn("lease", request.header)
        self.assertEqual(pickle.loads(request.payload), (divmod, (7, 2), {}))

    def test_hello_is_sent_first_and_info_kept(self):
        client = self.connect(lambda peer: peer.wait_for_close())
        self.assertEqual(client.hello["limits"]["max_interpreters"], 4)
        self.assertEqual(client.hello["python"], "3.13.0")

    def test_fatal_error_fails_every_pending_future(self):
        def script(peer):
            peer.receive()
            peer.receive()
            peer.send({"type": "error", "id": None, "code": "bad_frame",
                       "fatal": True, "message": "bad magic"})
        client = self.connect(script)
        futures = [client.submit(len, "a"), client.submit(len, "b")]
        for future in futures:
            with self.assertRaises(ProtocolError) as cm:
                future.result(IO_TIMEOUT)
            self.assertEqual(cm.exception.code, "bad_frame")
            self.assertIn("bad magic", str(cm.exception))
        self.assertTrue(client.closed)
        with self.assertRaises(ProtocolError):
            client.submit(len, "c")

    def test_connection_cut_mid_frame_fails_pending(self):
        def script(peer):
            request = peer.receive()
            data = _codec.encode_frame({"type": "result",
                                        "id": request.header["id"],
                                        "status": "ok"}, b"x" * 100)
            peer.send_raw(data[:40])
        client = self.connect(script)
        future = client.submit(len, "a")
        with self.assertRaises(DaemonConnectionError) as cm:
            future.result(IO_TIMEOUT)
        self.assertIn("middle of a frame", str(cm.exception))
        self.assertEqual(cm.exception.socket_path, client.socket_path)

    def test_garbage_from_the_daemon_is_a_protocol_error(self):
        def script(peer):
            peer.receive()
            peer.send_raw(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            peer.wait_for_close()
        client = self.connect(script)
        with self.assertRaises(ProtocolError) as cm:
            client.run(len, "a")
        self.assertEqual(cm.exception.code, "bad_frame")

    def test_reply_to_an_unknown_id_breaks_the_connection(self):
        def script(peer):
            peer.receive()
            peer.send({"type": "ping", "id": 12345})
            peer.wait_for_close()
        client = self.connect(script)
        with self.assertRaises(ProtocolError) as cm:
            client.run(len, "a")
        self.assertIn("12345", str(cm.exception))

    def test_error_reply_about_a_job_is_a_remote_error(self):
        def script(peer):
            request = peer.receive()
            peer.send({"type": "error", "id": request.header["id"],
                       "code": "job_load_failed", "fatal": False,
                       "message": "cannot unpickle job: No module named 'm'",
                       "exception": {"type": "builtins.ModuleNotFoundError",
                                     "message": "No module named 'm'",
                                     "traceback": "Traceback...\nboom\n"}})
            peer.wait_for_close()
        client = self.connect(script)
        with self.assertRaises(RemoteError) as cm:
            client.run(len, "a")
        error = cm.exception
        self.assertEqual(error.code, "job_load_failed")
        self.assertEqual(error.type_name, "builtins.ModuleNotFoundError")
        self.assertEqual(error.traceback_text, "Traceback...\nboom\n")
        self.assertIn("No module named 'm'", str(error))
        self.assertIn("boom", str(error))
        self.assertFalse(client.closed)

    def test_raised_with_empty_payload_is_a_remote_error(self):
        def script(peer):
            request = peer.receive()
            peer.send({"type": "result", "id": request.header["id"],
                       "status": "raised",
                       "exception": {"type": "mod.Weird", "message": "odd",
                                     "traceback": "Traceback:\n  here\n"}})
            peer.wait_for_close()
        client = self.connect(script)
        with self.assertRaises(RemoteError) as cm:
            client.run(len, "a")
        self.assertEqual(cm.exception.type_name, "mod.Weird")
        self.assertEqual(str(cm.exception),
                         "mod.Weird: odd\n\nRemote traceback:\n"
                         "Traceback:\n  here")

    def test_raised_exception_gets_the_remote_traceback_as_cause(self):
        def script(peer):
            request = peer.receive()
            peer.send({"type": "result", "id": request.header["id"],
                       "status": "raised",
                       "exception": {"type": "builtins.KeyError",
                                     "message": "'k'",
                                     "traceback": "remote frames here"}},
                      pickle.dumps(KeyError("k")))
            peer.wait_for_close()
        client = self.connect(script)
        with self.assertRaises(KeyError) as cm:
            client.run(len, "a")
        self.assertEqual(str(cm.exception.__cause__), "remote frames here")

    def test_result_that_does_not_unpickle_here(self):
        def script(peer):
            request = peer.receive()
            peer.send({"type": "result", "id": request.header["id"],
                       "status": "ok"},
                      b"cno_such_mod\nThing\n.")  # GLOBAL no_such_mod.Thing
            peer.wait_for_close()
        client = self.connect(script)
        with self.assertRaises(RemoteError) as cm:
            client.run(len, "a")
        self.assertIn("does not unpickle", str(cm.exception))
        self.assertIsNotNone(cm.exception.__cause__)

    def test_ok_without_payload_is_a_protocol_error(self):
        def script(peer):
            request = peer.receive()
            peer.send({"type": "result", "id": request.header["id"],
                       "status": "ok"})
            peer.wait_for_close()
        client = self.connect(script)
        with self.assertRaises(ProtocolError):
            client.run(len, "a")

    def test_hello_with_another_protocol_is_refused(self):
        def script(peer):
            hello = peer.receive()
            peer.send(dict(HELLO_REPLY, id=hello.header["id"], protocol=2))
            peer.wait_for_close()
        fake = self.serve(script, answer_hello=False)
        with self.assertRaises(ProtocolError) as cm:
            extrainterpreters.Client(fake.path)
        self.assertIn("protocol 2", str(cm.exception))

    def test_hello_without_reply_times_out(self):
        def script(peer):
            peer.receive()  # The hello, never answered.
            peer.wait_for_close()
        fake = self.serve(script, answer_hello=False)
        with self.assertRaises(DaemonConnectionError) as cm:
            extrainterpreters.Client(fake.path, connect_timeout=0.2)
        self.assertIn("no hello reply", str(cm.exception))

    def test_frames_over_the_announced_limit_are_refused_before_sending(self):
        def script(peer):
            hello = peer.receive()
            peer.send(dict(HELLO_REPLY, id=hello.header["id"],
                           limits={"max_frame_bytes": 1000,
                                   "max_header_bytes": 200}))
            peer.wait_for_close()
        fake = self.serve(script, answer_hello=False)
        client = extrainterpreters.Client(fake.path)
        self.addCleanup(client.close)
        with self.assertRaises(ProtocolError) as cm:
            client.submit(bytes, b"x" * 2000)
        self.assertEqual(cm.exception.code, "too_large")
        self.assertFalse(client.closed)

    def test_close_fails_pending_futures(self):
        client = self.connect(lambda peer: peer.wait_for_close())
        future = client.submit(len, "a")
        client.close()
        with self.assertRaises(DaemonConnectionError) as cm:
            future.result(IO_TIMEOUT)
        self.assertIn("client closed", str(cm.exception))

    def test_a_finished_job_is_not_kept_by_the_client(self):
        # Its result may wrap shared memory: dropping the Future must free
        # it at once, also when the job's definition was answered after the
        # job was sent (its Future waits on the define's, which the client
        # keeps for the connection), and without the garbage collector.
        may_reply = threading.Event()

        def script(peer):
            hello = peer.receive()  # a daemon on this Python takes lambdas
            peer.send(dict(HELLO_REPLY, id=hello.header["id"],
                           python="%d.%d.0" % sys.version_info[:2]))
            frames = [peer.receive()]
            while frames[-1].header["type"] != "run":
                frames.append(peer.receive())
            may_reply.wait(IO_TIMEOUT)
            for frame in frames[:-1]:
                peer.send({"type": "define", "id": frame.header["id"],
                           "digest": frame.header["digest"]})
            peer.send({"type": "result", "id": frames[-1].header["id"],
                       "status": "ok"}, pickle.dumps(42))
            peer.wait_for_close()
        client = self.connect(script, answer_hello=False)
        gc.disable()
        self.addCleanup(gc.enable)
        future = client.submit(lambda: 0)  # a lambda is sent by value
        may_reply.set()
        self.assertEqual(future.result(IO_TIMEOUT), 42)
        finished = weakref.ref(future)
        del future
        self.assertIsNone(finished())


class OutOfBandMinimumTest(unittest.TestCase):
    """Which buffers of a job leave the pickle (_shm.out_of_band_min)."""

    def test_thresholds(self):
        from extrainterpreters import _shm

        class Array(bytearray):  # a buffer whose type is numpy's, by name
            pass
        Array.__module__ = "numpy"

        small, mid, big = bytes(100), bytes(512 << 10), bytes(2 << 20)
        minimum = _shm.out_of_band_min
        self.assertEqual(minimum((1, "x"), {}), 0)
        self.assertEqual(minimum((small,), {}), 0)
        self.assertEqual(minimum((mid,), {}), 0)  # stays in the pickle
        self.assertEqual(minimum((big,), {}), _shm.OUT_OF_BAND_MIN)
        self.assertEqual(minimum(([mid],), {}, process_lane=True),
                         _shm.PROCESS_OUT_OF_BAND_MIN)
        self.assertEqual(minimum((), {"data": Array(mid)},
                                 process_modules=frozenset({"numpy"})),
                         _shm.PROCESS_OUT_OF_BAND_MIN)
        self.assertEqual(minimum((Array(mid),), {}), 0)  # no such module
        self.assertEqual(minimum((Array(small),), {}, process_lane=True), 0)
        # The threshold reaches the stand-ins and the pickler's callback.
        (wrapped,), _ = _shm.wrap_large((mid,), {},
                                        _shm.PROCESS_OUT_OF_BAND_MIN)
        self.assertIsInstance(wrapped, _shm._Large)
        collector = _shm.Collector(_shm.PROCESS_OUT_OF_BAND_MIN)
        pickle.dumps(pickle.PickleBuffer(bytearray(mid)), 5,
                     buffer_callback=collector)
        self.assertEqual(len(collector.buffers), 1)
        default = _shm.Collector()
        pickle.dumps(pickle.PickleBuffer(bytearray(mid)), 5,
                     buffer_callback=default)
        self.assertEqual(default.buffers, [])


class ArgumentRegionsTest(unittest.TestCase):
    """A connection's argument regions: one per job in flight, given back
    for reuse when the daemon says so, and bounded."""

    def setUp(self):
        self.regions = _regions.Regions()
        self.addCleanup(self.regions.close)
        self.next_id = 0

    def send(self, size):
        """A job with a ``size``-byte buffer, as a request does it: its id
        and the region it got (or None)."""
        self.next_id += 1
        buffers = [pickle.PickleBuffer(bytearray(size))]
        with self.regions.attach({}, buffers, 1 << 30) as (_, region):
            if region:
                self.regions.sent(self.next_id, region)
        return self.next_id, region

    def test_jobs_in_flight_each_get_one_and_give_it_back(self):
        sent = [self.send(1 << 16) for _ in range(3)]
        self.assertEqual(len({id(region) for _, region in sent}), 3)
        for request_id, _ in sent:
            self.regions.on_reply({"id": request_id, "oob_done": True})
        again = [self.send(1 << 16)[1] for _ in range(3)]
        self.assertEqual({id(r) for r in again}, {id(r) for _, r in sent})

    def test_a_region_the_daemon_may_still_read_is_dropped(self):
        request_id, region = self.send(1 << 16)
        self.regions.on_reply({"id": request_id})  # no oob_done
        self.assertEqual(region.fd, -1)
        self.assertIsNot(self.send(1 << 16)[1], region)

    def test_at_most_max_regions_then_new_memfds(self):
        with unittest.mock.patch.object(_regions, "_MAX_REGIONS", 2):
            got = [self.send(1 << 12)[1] for _ in range(3)]
        self.assertIsNotNone(got[0])
        self.assertIsNotNone(got[1])
        self.assertIsNone(got[2])

    def test_regions_beyond_the_first_keep_a_bounded_size(self):
        with unittest.mock.patch.object(_regions, "_MAX_EXTRA_BYTES", 3 << 20):
            sent = [self.send(2 << 20) for _ in range(3)]
            for request_id, _ in sent:
                self.regions.on_reply({"id": request_id, "oob_done": True})
        kept = [region for _, region in sent if region.fd >= 0]
        self.assertEqual(len(kept), 1)  # a second would make 4 MiB


class WorkItemCancelTest(unittest.TestCase):
    """shutdown(cancel_futures=True) on the executor's queued items."""

    def item(self):
        from extrainterpreters._executor_workers import WorkItem
        from extrainterpreters._future import JobFuture
        return WorkItem(JobFuture(), abs, (-1,), {})

    def test_a_queued_item_is_cancelled(self):
        item = self.item()
        item.cancel()
        self.assertTrue(item.future.cancelled())

    def test_an_item_a_worker_put_back_is_cancelled_too(self):
        # A worker that got no lease (lease_limit) puts its item back with
        # its Future running; it never ran, so shutdown cancels it.
        item = self.item()
        self.assertTrue(item.future.set_running_or_notify_cancel())
        item.claimed = True
        item.cancel()  # raised "Future in unexpected state" before
        self.assertTrue(item.future.cancelled())
        self.assertTrue(item.future.done())


class PeerWatchTest(unittest.TestCase):
    """``_session.PeerWatch``: is the other end of a socket gone?"""

    def test_open_with_or_without_bytes_waiting_then_gone(self):
        from extrainterpreters import _session
        mine, theirs = socket.socketpair()
        self.addCleanup(mine.close)
        watch = _session.PeerWatch(mine)
        self.assertFalse(watch.gone())
        theirs.sendall(b"x")
        self.assertFalse(watch.gone())  # bytes to read: not gone
        self.assertEqual(mine.recv(1), b"x")  # and the peek left them
        theirs.close()
        self.assertTrue(watch.gone())

    def test_threads_asking_at_once_get_answers(self):
        # One poll object cannot be polled by two threads at once: the
        # second falls back to the peek instead of raising.
        from extrainterpreters import _session
        mine, theirs = socket.socketpair()
        self.addCleanup(mine.close)
        self.addCleanup(theirs.close)
        watch = _session.PeerWatch(mine)
        answers, errors = [], []

        def ask():
            try:
                answers.extend(watch.gone() for _ in range(2000))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        self.assertEqual(answers, [False] * 8000)


class ConnectErrorTest(unittest.TestCase):

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="ei-conn-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.tmpdir, ignore_errors=True)
        self.path = os.path.join(self.tmpdir, "ei.sock")

    def assert_connect_error(self, reason):
        with self.assertRaises(DaemonConnectionError) as cm:
            extrainterpreters.Client(self.path)
        self.assertEqual(str(cm.exception),
                         f"cannot connect to {self.path} ({reason})")
        self.assertEqual(cm.exception.socket_path, self.path)
        self.assertIsInstance(cm.exception,
                              extrainterpreters.ExtraInterpretersError)

    def test_no_socket_file(self):
        self.assert_connect_error("no such socket file")

    def test_nobody_listening(self):
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(self.path)
        stale.close()  # A socket file left behind by a dead daemon.
        self.assert_connect_error("no daemon is listening")

    def test_permission_denied(self):
        if os.geteuid() == 0:
            self.skipTest("root is never denied permission")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind(self.path)
        listener.listen(1)
        os.chmod(self.path, 0)
        self.assert_connect_error("permission denied")

    def test_module_run_uses_the_environment(self):
        with unittest.mock.patch.dict(
                os.environ, {"EXTRAINTERPRETERS_SOCKET": self.path}):
            with self.assertRaises(DaemonConnectionError) as cm:
                extrainterpreters.run(len, "a")
        self.assertEqual(cm.exception.socket_path, self.path)

if __name__ == "__main__":
    unittest.main()
