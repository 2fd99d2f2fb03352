"""End-to-end tests of bad input on the wire, sent over raw sockets.

Each malformed frame must get an ``error`` frame naming the fault (its code
from PROTOCOL.md) and then the connection closes, while a client connected
at the same time keeps working.
"""

import os
import pickle
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import jobs  # noqa: E402

from extrainterpreters import _codec  # noqa: E402

IO_TIMEOUT = 30.0
HELLO = {"type": "hello", "id": 1, "protocol": 1, "client": "raw-test"}


def raw_frame(header_bytes, payload=b"", *, magic=b"EIPC", version=1,
              flags=0, reserved=0, header_len=None, payload_len=None):
    """A frame built field by field, so that any field can be wrong."""
    prefix = struct.pack(
        ">4sBBHII", magic, version, flags, reserved,
        len(header_bytes) if header_len is None else header_len,
        len(payload) if payload_len is None else payload_len)
    return prefix + header_bytes + payload


def frame(header, payload=b""):
    return _codec.encode_frame(header, payload)


class BadFrameTest(harness.DaemonTestCase):

    def connect(self):
        conn = harness.RawConnection(self.daemon.socket_path, timeout=IO_TIMEOUT)
        self.addCleanup(conn.close)
        return conn

    def assert_fatal_error(self, conn, code):
        """The daemon answers with one fatal ``code`` error, then closes."""
        frames = conn.read_until_eof()
        self.assertEqual(len(frames), 1, frames)
        header = frames[0].header
        self.assertEqual(header["type"], "error")
        self.assertEqual(header["code"], code, header)
        self.assertIs(header["fatal"], True)
        self.assertIsInstance(header["message"], str)
        self.assertTrue(header["message"])
        return header

    def assert_others_unaffected(self):
        self.assertEqual(self.client.run(jobs.add, 40, 2), 42)

    def test_malformed_frames_after_hello(self):
        ping = b'{"type":"ping","id":2}'
        cases = {
            "bad magic": (raw_frame(ping, magic=b"GET "), "bad_frame"),
            "non-zero flags": (raw_frame(ping, flags=4), "bad_frame"),
            "non-zero reserved": (raw_frame(ping, reserved=1), "bad_frame"),
            "unknown frame version": (raw_frame(ping, version=9),
                                      "unsupported_version"),
            "header over the limit": (
                raw_frame(b"", header_len=65536 + 1), "too_large"),
            "frame over the limit": (
                raw_frame(b"", header_len=2, payload_len=268435456),
                "too_large"),
            "header under 2 bytes": (raw_frame(b"{"), "too_large"),
            "invalid JSON": (raw_frame(b'{"type": "ping", "id": '),
                             "bad_header"),
            "header not UTF-8": (raw_frame(b'{"type":"\xff\xfe","id":2}'),
                                 "bad_header"),
            "header not an object": (raw_frame(b'[1, 2]'), "bad_header"),
            "header without type": (raw_frame(b'{"id": 2}'), "bad_header"),
            "header without id": (raw_frame(b'{"type": "ping"}'),
                                  "bad_header"),
            "id not an integer": (raw_frame(b'{"type":"ping","id":"2"}'),
                                  "bad_header"),
        }
        for name, (data, code) in cases.items():
            with self.subTest(name):
                conn = self.connect()
                conn.hello()
                # The other client is connected while the bad frame arrives.
                self.client.ping()
                conn.send_bytes(data)
                self.assert_fatal_error(conn, code)
                self.assert_others_unaffected()

    def test_bad_magic_as_first_frame(self):
        conn = self.connect()
        conn.send_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assert_fatal_error(conn, "bad_frame")
        self.assert_others_unaffected()

    def test_first_frame_not_hello(self):
        conn = self.connect()
        conn.send_bytes(frame({"type": "ping", "id": 1}))
        self.assert_fatal_error(conn, "hello_required")
        self.assert_others_unaffected()

    def test_unknown_protocol_version_in_hello(self):
        conn = self.connect()
        conn.send_bytes(frame(dict(HELLO, protocol=99)))
        header = self.assert_fatal_error(conn, "unsupported_version")
        self.assertIn(header["id"], (1, None))
        self.assert_others_unaffected()

    def test_split_frames_are_reassembled(self):
        conn = self.connect()
        data = frame(HELLO) + frame({"type": "ping", "id": 2})
        for i in range(len(data)):
            conn.send_bytes(data[i:i + 1])
        self.assertEqual(conn.read_frame().header["type"], "hello")
        self.assertEqual(conn.read_frame().header,
                         {"type": "ping", "id": 2})


class NonFatalErrorTest(harness.DaemonTestCase):
    """Errors about one request leave the connection open."""

    def setUp(self):
        super().setUp()
        self.conn = harness.RawConnection(self.daemon.socket_path, timeout=IO_TIMEOUT)
        self.addCleanup(self.conn.close)
        self.conn.hello()

    def request(self, header, payload=b""):
        self.conn.send_bytes(frame(header, payload))
        reply = self.conn.read_frame()
        self.assertEqual(reply.header["id"], header["id"])
        return reply.header

    def assert_error(self, header, code, payload=b""):
        reply = self.request(header, payload)
        self.assertEqual(reply["type"], "error")
        self.assertEqual(reply["code"], code, reply)
        self.assertIs(reply["fatal"], False)
        self.assertTrue(reply["message"])
        # Still usable.
        self.assertEqual(self.request({"type": "ping", "id": 999}),
                         {"type": "ping", "id": 999})
        return reply

    def test_unknown_type(self):
        self.assert_error({"type": "frobnicate", "id": 5}, "unknown_type")

    def test_run_without_payload(self):
        self.assert_error({"type": "run", "id": 5}, "bad_request")

    def test_run_with_non_integer_lease(self):
        self.assert_error({"type": "run", "id": 5, "lease": "x"},
                          "bad_request", pickle.dumps((jobs.add, (1, 2), {})))

    def test_release_of_unknown_lease(self):
        self.assert_error({"type": "release", "id": 5, "lease": 123456},
                          "unknown_lease")

    def test_payload_not_a_job_tuple(self):
        reply = self.assert_error({"type": "run", "id": 5}, "job_load_failed",
                                  pickle.dumps("not a job", protocol=5))
        self.assertIn("message", reply)

    def test_payload_not_a_pickle(self):
        reply = self.assert_error({"type": "run", "id": 5}, "job_load_failed",
                                  b"\x80\x05garbage")
        self.assertIn("exception", reply)

    def test_unknown_header_fields_are_ignored(self):
        reply = self.request({"type": "ping", "id": 6, "future_field": [1]})
        self.assertEqual(reply, {"type": "ping", "id": 6})

    def test_replies_carry_the_request_id(self):
        job = pickle.dumps((jobs.add, (2, 3), {}), protocol=5)
        self.conn.send_bytes(frame({"type": "run", "id": 77}, job)
                       + frame({"type": "run", "id": 78}, job))
        replies = {}
        for _ in range(2):
            reply = self.conn.read_frame()
            replies[reply.header["id"]] = reply
        self.assertEqual(set(replies), {77, 78})
        for reply in replies.values():
            self.assertEqual(reply.header["status"], "ok")
            self.assertEqual(pickle.loads(reply.payload), 5)


if __name__ == "__main__":
    unittest.main()
