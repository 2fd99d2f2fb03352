"""The golden frames of proto/testdata through the Python client's codec.

proto/testdata/frames.json says what each file holds and what a decoder
must make of it; the C++ codec passes the same files
(proto/frame_codec_golden_test.cc). No daemon needed:
``python -m unittest tests/client_codec_golden_test.py``.
"""

import hashlib
import json
import os
import random
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402,F401  (makes the client importable outside Bazel)

from extrainterpreters import ProtocolError  # noqa: E402
from extrainterpreters import _codec  # noqa: E402


def source_path(relative):
    """A file of the source tree, from Bazel's runfiles or this checkout."""
    if "TEST_SRCDIR" in os.environ and "TEST_WORKSPACE" in os.environ:
        root = os.path.join(os.environ["TEST_SRCDIR"],
                            os.environ["TEST_WORKSPACE"])
    else:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(root, relative)


def load_vectors():
    with open(source_path("proto/testdata/frames.json"), "rb") as f:
        vectors = json.load(f)["vectors"]
    for vector in vectors:
        with open(source_path("proto/testdata/" + vector["file"]), "rb") as f:
            vector["bytes"] = f.read()
    return vectors


VECTORS = load_vectors()


def chunkings(size):
    """Whole, byte by byte, and three random splits with fixed seeds."""
    yield [size]
    yield [1] * size
    for seed in (1, 2, 3):
        rnd, sizes, left = random.Random(seed), [], size
        while left:
            n = min(left, rnd.randint(1, 70000) if rnd.random() < 0.25
                    else rnd.randint(1, 40))
            sizes.append(n)
            left -= n
        yield sizes


def decoder_for(vector):
    limits = _codec.Limits(**vector["limits"])
    return _codec.FrameDecoder(limits,
                               allow_null_id=vector["sender"] == "daemon")


def decode(vector, data, chunks):
    """(frames, error code or None, bytes left buffered)."""
    decoder, frames, at = decoder_for(vector), [], 0
    for n in chunks:
        try:
            frames += decoder.feed(data[at:at + n])
        except ProtocolError as exc:
            return frames, exc.code, None
        at += n
    return frames, None, decoder.buffered


def canonical(header):
    # Types count: 1, 1.0 and True are == in Python, not in JSON.
    return json.dumps(header, sort_keys=True)


class GoldenFramesTest(unittest.TestCase):

    def assert_frame(self, frame, expected):
        self.assertEqual(canonical(frame.header),
                         canonical(expected["header"]))
        self.assertEqual(len(frame.payload), expected["payload_size"])
        self.assertEqual(hashlib.sha256(frame.payload).hexdigest(),
                         expected["payload_sha256"])

    def test_decode_as_the_manifest_says_in_every_chunking(self):
        self.assertGreater(len(VECTORS), 100)
        for vector in VECTORS:
            data = vector["bytes"]
            for chunks in chunkings(len(data)):
                with self.subTest(vector["file"], chunks=len(chunks)):
                    frames, error, left = decode(vector, data, chunks)
                    expected_frames = vector["frames"]
                    if error and len(chunks) != len(data):
                        # feed() raises for the chunk that holds the fault,
                        # dropping the frames that chunk completed before
                        # it: fewer frames, never others. Byte by byte,
                        # every one comes back, as from the C++ decoder.
                        expected_frames = expected_frames[:len(frames)]
                    self.assertEqual(len(frames), len(expected_frames))
                    for frame, expected in zip(frames, expected_frames):
                        self.assert_frame(frame, expected)
                    if vector["end"] == "error":
                        self.assertEqual(error, vector["error"])
                    else:
                        self.assertIsNone(error)
                        self.assertEqual(left == 0, vector["end"] == "clean")

    def test_encode_again_what_it_decoded(self):
        for vector in VECTORS:
            with self.subTest(vector["file"]):
                frames, _, _ = decode(vector, vector["bytes"],
                                      [len(vector["bytes"])])
                limits = _codec.Limits(**vector["limits"])
                encoded = b""
                for frame in frames:
                    if frame.header["id"] is None:
                        # A client's encoder: only the daemon sends null.
                        with self.assertRaises(ProtocolError) as cm:
                            _codec.encode_frame(frame.header, frame.payload,
                                                limits)
                        self.assertEqual(cm.exception.code, "bad_header")
                        encoded = None
                        break
                    again = _codec.encode_frame(frame.header, frame.payload,
                                                limits)
                    encoded += again
                    self.assertEqual(decode(vector, again, [len(again)]),
                                     ([frame], None, 0))
                if encoded is not None and vector["reencode"] == "exact":
                    self.assertEqual(encoded,
                                     vector["bytes"][:len(encoded)])
                    if vector["end"] == "clean":
                        self.assertEqual(len(encoded), len(vector["bytes"]))

    def test_vectors_cover_every_type_and_decoder_error_of_the_spec(self):
        with open(source_path("proto/PROTOCOL.md"), encoding="utf-8") as f:
            spec = f.read()
        # "### `lease` / `release`" headings, and the rows of the table of
        # queue requests in "### Queues".
        types = {t for heading in re.findall(r"^### (.*)$", spec, re.M)
                 for t in re.findall(r"`(\w+)`", heading)}
        queues = spec.split("\n### Queues\n")[1].split("\n### ")[0]
        types |= set(re.findall(r"^\| `(queue_\w+)` \|", queues, re.M))
        self.assertIn("queue_cancel", types)
        # A run is answered with a result or an error; output is the
        # daemon's own.
        wanted = {"client": types - {"output"},
                  "daemon": types - {"run"} | {"result", "error"}}
        for sender in wanted:
            with self.subTest(sender):
                sent = {f["header"]["type"] for v in VECTORS
                        if v["sender"] == sender for f in v["frames"]}
                self.assertLessEqual(wanted[sender], sent)
        decoded = [f["header"] for v in VECTORS for f in v["frames"]]
        self.assertTrue(any(h.get("front") is True for h in decoded))
        # The codes of the Errors table a frame decoder can give.
        self.assertEqual({v["error"] for v in VECTORS if v["end"] == "error"},
                         {"bad_frame", "unsupported_version", "too_large",
                          "bad_header"})


if __name__ == "__main__":
    unittest.main()
