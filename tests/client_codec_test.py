"""Unit tests of the Python client's frame codec and socket-path resolution.

No daemon needed: ``python -m unittest tests/client_codec_test.py``.
"""

import json
import os
import pathlib
import struct
import sys
import unittest
import unittest.mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (makes the client importable outside Bazel)

from extrainterpreters import ProtocolError  # noqa: E402
from extrainterpreters import _codec, _paths  # noqa: E402


def raw_frame(header_bytes, payload=b"", *, magic=b"EIPC", version=1,
              flags=0, reserved=0, header_len=None, payload_len=None):
    """Build a frame byte by byte, so any field can be wrong."""
    if header_len is None:
        header_len = len(header_bytes)
    if payload_len is None:
        payload_len = len(payload)
    prefix = struct.pack(">4sBBHII", magic, version, flags, reserved,
                         header_len, payload_len)
    return prefix + header_bytes + payload


class EncodeTest(unittest.TestCase):

    def test_layout_matches_the_spec(self):
        frame = _codec.encode_frame({"type": "ping", "id": 5}, b"xyz")
        header = b'{"type":"ping","id":5}'
        self.assertEqual(frame[:4], b"EIPC")
        self.assertEqual(frame[4:8], b"\x01\x00\x00\x00")
        self.assertEqual(struct.unpack(">II", frame[8:16]), (len(header), 3))
        self.assertEqual(frame[16:16 + len(header)], header)
        self.assertEqual(frame[16 + len(header):], b"xyz")

    def test_parts_join_to_the_frame(self):
        header = {"type": "run", "id": 1}
        head, body = _codec.encode_frame_parts(header, b"p" * 100)
        self.assertEqual(head + body, _codec.encode_frame(header, b"p" * 100))

    def test_non_ascii_header_is_utf8(self):
        frame = _codec.encode_frame({"type": "x", "id": 1, "s": "é"})
        self.assertIn("é".encode("utf-8"), frame)

    def test_a_request_encodes_as_its_header_with_the_id_last(self):
        # encode_request_parts keeps each header's JSON between requests:
        # True and 1, 1.0 and 1 are equal keys but not the same JSON.
        headers = [{"type": "run"}, {"type": "run", "output": True},
                   {"type": "run", "output": 1}, {"type": "run", "timeout": 1.0},
                   {"type": "run", "timeout": 1}, {"type": "run", "uses": ["ab"]},
                   {"type": "queue_put", "name": "é\u2603"},
                   {"type": "run", "timeout": -0.0}, {"type": "run", "timeout": 0.0},
                   {"type": "run", "t": (1, 2)}, {"type": "run", "t": (True, 2)},
                   {"type": "cancel", "job": 5}]
        for _ in range(2):  # encoded, then from what was kept
            for header in headers:
                for request_id in (0, 9, 2**53 - 1):
                    self.assertEqual(
                        _codec.encode_request_parts(header, request_id, b"pp"),
                        _codec.encode_frame_parts(dict(header, id=request_id),
                                                  b"pp"))
        for header, request_id in (({}, 1), ({"type": 5}, 1),
                                   ({"type": "run"}, -1), ({"type": "run"}, True),
                                   ({"type": "run"}, 2**53)):
            with self.subTest(header=header, id=request_id), \
                    self.assertRaises(ProtocolError):
                _codec.encode_request_parts(header, request_id)

    def test_rejects_headers_the_daemon_would_reject(self):
        cases = {
            "no type": {"id": 1},
            "type not a string": {"type": 3, "id": 1},
            "no id": {"type": "ping"},
            "id a string": {"type": "ping", "id": "1"},
            "id a bool": {"type": "ping", "id": True},
            "id negative": {"type": "ping", "id": -1},
            "id past 2**53-1": {"type": "ping", "id": 2**53},
            "id null": {"type": "ping", "id": None},
        }
        for name, header in cases.items():
            with self.subTest(name), self.assertRaises(ProtocolError) as cm:
                _codec.encode_frame(header)
            self.assertEqual(cm.exception.code, "bad_header")

    def test_rejects_frames_over_the_limits(self):
        limits = _codec.Limits(max_header_bytes=64, max_frame_bytes=128)
        with self.assertRaises(ProtocolError) as cm:
            _codec.encode_frame({"type": "x", "id": 1, "pad": "a" * 64},
                                limits=limits)
        self.assertEqual(cm.exception.code, "too_large")
        self.assertIn("max_header_bytes 64", str(cm.exception))
        with self.assertRaises(ProtocolError) as cm:
            _codec.encode_frame({"type": "x", "id": 1}, b"p" * 128,
                                limits=limits)
        self.assertIn("max_frame_bytes 128", str(cm.exception))

    def test_frame_exactly_at_the_limit_is_accepted(self):
        header = {"type": "x", "id": 1}
        size = 16 + len(json.dumps(header, separators=(",", ":")))
        limits = _codec.Limits(max_header_bytes=64, max_frame_bytes=size + 10)
        frame = _codec.encode_frame(header, b"p" * 10, limits=limits)
        self.assertEqual(len(frame), size + 10)


class DecodeTest(unittest.TestCase):

    FRAMES = [
        ({"type": "hello", "id": 1, "protocol": 1, "s": "\U0001f40d"}, b""),
        ({"type": "result", "id": 7, "status": "ok"}, bytes(range(256)) * 3),
        ({"type": "error", "id": None, "code": "bad_frame"}, b""),
        ({"type": "ping", "id": 2**53 - 1, "extra": ["é", 1.5]}, b"\x00"),
    ]

    def stream(self):
        # raw_frame, since encode_frame refuses a null id (clients never
        # send one) while the daemon's error frames may carry it.
        return b"".join(raw_frame(json.dumps(h).encode("utf-8"), p)
                        for h, p in self.FRAMES)

    def expected(self):
        return [_codec.Frame(h, p) for h, p in self.FRAMES]

    def test_round_trip_at_every_chunk_size(self):
        stream = self.stream()
        for size in range(1, len(stream) + 1):
            with self.subTest(chunk_size=size):
                decoder = _codec.FrameDecoder()
                frames = []
                for start in range(0, len(stream), size):
                    frames += decoder.feed(stream[start:start + size])
                self.assertEqual(frames, self.expected())
                self.assertEqual(decoder.buffered, 0)

    def test_partial_frame_waits_for_more(self):
        frame = _codec.encode_frame({"type": "ping", "id": 1}, b"abc")
        decoder = _codec.FrameDecoder()
        self.assertEqual(decoder.feed(frame[:-1]), [])
        self.assertEqual(decoder.buffered, len(frame) - 1)
        self.assertEqual(decoder.feed(frame[-1:]),
                         [_codec.Frame({"type": "ping", "id": 1}, b"abc")])

    def test_result_headers_as_the_daemon_writes_them_read_as_json_reads_them(self):
        # The common reply header has a path without json; its edges must
        # decode (or fail) exactly as json would have them.
        decoder = _codec.FrameDecoder()
        for frame_id in (0, 7, 10, 123456789, 2**53 - 1):
            header = b'{"id":%d,"status":"ok","type":"result"}' % frame_id
            (frame,) = decoder.feed(raw_frame(header, b"p"))
            self.assertEqual(frame.header, json.loads(header))
            self.assertIs(type(frame.header["id"]), int)
        for text in (b"007", b"-1", b"1.5", b"1e3", b"", b"2", b'"7"',
                     b"%d" % 2**53, b" 7", b"9" * 17, b"0"):
            header = b'{"id":' + text + b',"status":"ok","type":"result"}'
            try:
                expected = json.loads(header)
            except ValueError:
                expected = None
            valid = (expected is not None and type(expected["id"]) is int
                     and 0 <= expected["id"] <= 2**53 - 1)
            decoder = _codec.FrameDecoder()
            with self.subTest(id=text):
                if valid:
                    (frame,) = decoder.feed(raw_frame(header))
                    self.assertEqual(frame.header, expected)
                else:
                    with self.assertRaises(ProtocolError):
                        decoder.feed(raw_frame(header))

    def test_null_id_can_be_refused(self):
        decoder = _codec.FrameDecoder(allow_null_id=False)
        with self.assertRaises(ProtocolError):
            decoder.feed(raw_frame(b'{"type":"error","id":null}'))

    def test_malformed_frames(self):
        ok_header = b'{"type":"ping","id":1}'
        cases = {
            "bad magic": (raw_frame(ok_header, magic=b"EIPX"), "bad_frame"),
            "unknown version": (raw_frame(ok_header, version=2),
                                "unsupported_version"),
            "version zero": (raw_frame(ok_header, version=0),
                             "unsupported_version"),
            "non-zero flags": (raw_frame(ok_header, flags=1), "bad_frame"),
            "non-zero reserved": (raw_frame(ok_header, reserved=0x100),
                                  "bad_frame"),
            "header length 0": (raw_frame(b""), "too_large"),
            "header length 1": (raw_frame(b"{"), "too_large"),
            "header over max_header_bytes": (
                raw_frame(b"", header_len=65537), "too_large"),
            "frame over max_frame_bytes": (
                raw_frame(b"", header_len=2,
                          payload_len=268435456 - 16 - 2 + 1), "too_large"),
            "payload length 2**32-1": (
                raw_frame(b"", header_len=2, payload_len=2**32 - 1),
                "too_large"),
            "header not UTF-8": (raw_frame(b'{"type":"\xff","id":1}'),
                                 "bad_header"),
            "header not JSON": (raw_frame(b'{"type":'), "bad_header"),
            "header NaN": (raw_frame(b'{"type":"x","id":1,"v":NaN}'),
                           "bad_header"),
            # PROTOCOL.md, Frames: a header's "numbers fit a double".
            "number past a double": (
                raw_frame(b'{"type":"x","id":1,"v":-1e400}'), "bad_header"),
            "integer past a double": (
                raw_frame(b'{"type":"x","id":1,"v":1' + b"0" * 309 + b'}'),
                "bad_header"),
            # PROTOCOL.md, Frames: a header's "strings are Unicode text".
            "unpaired high surrogate": (
                raw_frame(b'{"type":"x","id":1,"v":"\\ud83d"}'), "bad_header"),
            "unpaired low surrogate in a key": (
                raw_frame(b'{"type":"x","id":1,"\\udc0d":0}'), "bad_header"),
            "header a list": (raw_frame(b'["type","id"]'), "bad_header"),
            "header lacks type": (raw_frame(b'{"id":1}'), "bad_header"),
            "type not a string": (raw_frame(b'{"type":1,"id":1}'),
                                  "bad_header"),
            "header lacks id": (raw_frame(b'{"type":"ping"}'), "bad_header"),
            "id a float": (raw_frame(b'{"type":"ping","id":1.5}'),
                           "bad_header"),
            "id negative": (raw_frame(b'{"type":"ping","id":-1}'),
                            "bad_header"),
        }
        for name, (data, code) in cases.items():
            with self.subTest(name):
                decoder = _codec.FrameDecoder()
                with self.assertRaises(ProtocolError) as cm:
                    decoder.feed(data)
                self.assertEqual(cm.exception.code, code)
                # The stream has lost its framing: the decoder stays broken.
                with self.assertRaises(ProtocolError):
                    decoder.feed(_codec.encode_frame({"type": "x", "id": 1}))

    def test_header_too_deep_for_json_is_a_protocol_error(self):
        # Within max_header_bytes but past the json module's recursion
        # limit: a ProtocolError, not a RecursionError out of feed().
        header = b'{"type":"x","id":1,"v":' + b"[" * 30000 + b"]" * 30000
        with self.assertRaises(ProtocolError) as cm:
            _codec.FrameDecoder().feed(raw_frame(header + b"}"))
        self.assertEqual(cm.exception.code, "bad_header")

    def test_prefix_is_checked_before_the_body_arrives(self):
        # Only the 16-byte prefix is sent: a decoder that waited for the
        # announced 256 MiB before checking would return [] here.
        decoder = _codec.FrameDecoder()
        with self.assertRaises(ProtocolError) as cm:
            decoder.feed(raw_frame(b"", header_len=2,
                                   payload_len=300 * 1024 * 1024))
        self.assertEqual(cm.exception.code, "too_large")

    def test_announced_limits_apply(self):
        frame = _codec.encode_frame({"type": "result", "id": 1}, b"p" * 1000)
        small = _codec.Limits(max_header_bytes=100, max_frame_bytes=500)
        with self.assertRaises(ProtocolError):
            _codec.FrameDecoder(small).feed(frame)
        decoder = _codec.FrameDecoder()
        decoder.limits = small
        with self.assertRaises(ProtocolError):
            decoder.feed(frame)
        roomy = _codec.Limits(max_header_bytes=100, max_frame_bytes=len(frame))
        self.assertEqual(len(_codec.FrameDecoder(roomy).feed(frame)), 1)

    def test_error_message_names_the_fault(self):
        with self.assertRaises(ProtocolError) as cm:
            _codec.FrameDecoder().feed(raw_frame(b"{}", magic=b"HTTP"))
        self.assertIn("magic", str(cm.exception))
        self.assertIn("HTTP", str(cm.exception))


class SocketPathTest(unittest.TestCase):

    def test_order_of_precedence(self):
        cases = [
            ("explicit wins", "/x/explicit.sock",
             {"EXTRAINTERPRETERS_SOCKET": "/env.sock",
              "XDG_RUNTIME_DIR": "/run/user/1"}, "/x/explicit.sock"),
            ("environment variable", None,
             {"EXTRAINTERPRETERS_SOCKET": "/env.sock",
              "XDG_RUNTIME_DIR": "/run/user/1"}, "/env.sock"),
            ("runtime dir", None, {"XDG_RUNTIME_DIR": "/run/user/1"},
             "/run/user/1/extrainterpreters/ei.sock"),
            ("empty runtime dir is unset", None, {"XDG_RUNTIME_DIR": ""},
             "/run/extrainterpreters/ei.sock"),
            ("empty variable is unset", None,
             {"EXTRAINTERPRETERS_SOCKET": "", "XDG_RUNTIME_DIR": "/r"},
             "/r/extrainterpreters/ei.sock"),
            ("system default", None, {}, "/run/extrainterpreters/ei.sock"),
        ]
        for name, explicit, environ, expected in cases:
            with self.subTest(name):
                self.assertEqual(
                    _paths.resolve_socket_path(explicit, environ), expected)

    def test_path_like_is_accepted(self):
        self.assertEqual(
            _paths.resolve_socket_path(pathlib.Path("/a/b.sock"), {}),
            "/a/b.sock")

    def test_empty_explicit_path_is_an_error(self):
        with self.assertRaises(ValueError):
            _paths.resolve_socket_path("", {})

    def test_default_reads_os_environ(self):
        with unittest.mock.patch.dict(
                os.environ, {"EXTRAINTERPRETERS_SOCKET": "/from/env.sock"}):
            import extrainterpreters
            self.assertEqual(extrainterpreters.default_socket_path(),
                             "/from/env.sock")

if __name__ == "__main__":
    unittest.main()
