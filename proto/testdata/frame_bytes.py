"""Building blocks of the golden frames (make_frames.py): a frame's bytes,
made with struct and json from proto/PROTOCOL.md rather than by either
codec, and the list that vectors.py fills.
"""

import hashlib
import json
import operator
import pickle
import struct

DEFAULT_LIMITS = {"max_header_bytes": 65536, "max_frame_bytes": 268435456}
SMALL_LIMITS = {"max_header_bytes": 128, "max_frame_bytes": 512}

DIGEST = hashlib.sha256(b"golden define").hexdigest()
RUN_PAYLOAD = pickle.dumps((operator.add, (1, 2), {}), protocol=5)
RESULT_PAYLOAD = pickle.dumps(3, protocol=5)
RAISED_PAYLOAD = pickle.dumps(ZeroDivisionError("division by zero"),
                              protocol=5)
ITEM_PAYLOAD = pickle.dumps({"n": 1, "data": b"\x00\xff" * 8}, protocol=5)
DEFINE_PAYLOAD = bytes(range(256)) + b"golden define"
# Every byte value, and a whole frame inside the payload.
BINARY_PAYLOAD = (bytes(range(256)) * 4
                  + b"EIPC\x01\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00{}"
                  + bytes(range(255, -1, -1)))


def large_payload(size):
    """Deterministic bytes that do not repeat with a short period."""
    out = bytearray()
    block = b"golden"
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def prefix(header_len, payload_len, magic=b"EIPC", version=1, flags=0,
           reserved=0):
    return struct.pack(">4sBBHII", magic, version, flags, reserved,
                       header_len, payload_len)


def canonical(header):
    """The header's text as both encoders write it."""
    return json.dumps(header, separators=(",", ":"), ensure_ascii=False,
                      sort_keys=True, allow_nan=False).encode("utf-8")


def frame(header, payload=b"", raw=None):
    """One frame: `raw` is the header's text when it is not canonical."""
    text = canonical(header) if raw is None else raw
    return {"bytes": prefix(len(text), len(payload)) + text + payload,
            "header": header, "payload": payload}


VECTORS = []


def vector(name, what, frames=(), tail=b"", end="clean", error=None,
           sender="client", limits=DEFAULT_LIMITS, reencode="exact"):
    VECTORS.append({"name": name, "what": what, "frames": list(frames),
                    "tail": tail, "end": end, "error": error,
                    "sender": sender, "limits": limits,
                    "reencode": reencode})


def good(name, what, header, payload=b"", raw=None, **kwargs):
    vector(name, what, [frame(header, payload, raw)], **kwargs)


def bad(name, what, data, error, before=(), **kwargs):
    vector(name, what, before, data, end="error", error=error, **kwargs)


def bad_header(name, what, text, **kwargs):
    bad(name, what, prefix(len(text), 0) + text, "bad_header", **kwargs)


def need_more(name, what, data, before=(), **kwargs):
    vector(name, what, before, data, end="need_more", **kwargs)


def header_padded_to(size, header):
    """`header` with a "pad" string making its text exactly `size` bytes."""
    header = dict(header, pad="")
    header["pad"] = "x" * (size - len(canonical(header)))
    assert len(canonical(header)) == size
    return header
