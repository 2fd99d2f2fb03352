"""Frames of the wire protocol (proto/PROTOCOL.md), encoded and decoded.

A frame is a 16-byte prefix, a UTF-8 JSON header and an optional payload:

    offset  size  field
    0       4     magic            b"EIPC"
    4       1     frame version    1
    5       1     flags            0
    6       2     reserved         0
    8       4     header length    big-endian, 2 .. max_header_bytes
    12      4     payload length   big-endian, 0 .. max_frame_bytes - 16 - H
    16      H     header           JSON object with "type" and "id"
    16+H    P     payload          opaque bytes

``FrameDecoder`` is incremental: feed it chunks of any size and it returns
the frames completed so far. It checks the prefix against the limits before
it waits for (and so buffers) the header and payload, so a hostile length
costs nothing. Every malformation raises ``ProtocolError`` whose ``code`` is
the one the daemon would use for the same fault.
"""

import json
import math
import re
import struct
from typing import NamedTuple

from ._errors import ProtocolError

__all__ = [
    "MAGIC",
    "FRAME_VERSION",
    "PREFIX_SIZE",
    "MAX_ID",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_FRAME_BYTES",
    "Limits",
    "Frame",
    "encode_frame",
    "encode_frame_parts",
    "FrameDecoder",
]

MAGIC = b"EIPC"
FRAME_VERSION = 1
PREFIX_SIZE = 16
MIN_HEADER_BYTES = 2  # "{}" is the shortest JSON object.
MAX_ID = 2**53 - 1  # Ids must survive a round trip through a JSON double.
MAX_HEADER_DEPTH = 256  # arrays and objects nest at most so deep, the header counted
DEFAULT_MAX_HEADER_BYTES = 65536
DEFAULT_MAX_FRAME_BYTES = 268435456

_PREFIX = struct.Struct(">4sBBHII")


class Limits(NamedTuple):
    """Size limits a peer announced (the daemon, in its ``hello`` reply)."""

    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES


class Frame(NamedTuple):
    """One decoded frame: the JSON header as a dict, and the payload.

    ``fd`` is the descriptor that came with it (``"fd": true``), or -1;
    ``views``, when set, are read-only views of its out-of-band buffers.
    """

    header: dict
    payload: bytes = b""
    fd: int = -1
    views: list = None


def encode_frame(header, payload=b"", limits=Limits()):
    """Return ``header`` (a dict) and ``payload`` encoded as one frame."""
    head, payload = encode_frame_parts(header, payload, limits)
    return head + payload


def encode_frame_parts(header, payload=b"", limits=Limits()):
    """Return ``(prefix_and_header, payload)`` for one frame.

    Kept as two parts so a large payload can go to the socket without being
    copied behind the header. Raises ``ProtocolError`` (code ``too_large``)
    when the frame would exceed ``limits``, since the daemon would answer
    it with a fatal error and close the connection.
    """
    _check_header_fields(header)
    return _frame_parts(_encode_header(header).encode("utf-8"), payload,
                        limits)


# A client's runs mostly have the same options: the JSON of each set of
# them (the header without its id) is kept, keyed by its names, values and
# the values' types (True and 1 are equal, but not the same JSON). Only
# values whose equal ones are written alike (not floats: 0.0 and -0.0),
# and only runs (a cancel names a new job each time).
_REQUEST_STARTS = {}
_REQUEST_STARTS_MAX = 256
_KEPT_TYPES = frozenset({str, int, bool, type(None)})


def encode_request_parts(header, request_id, payload=b"", limits=Limits()):
    """``encode_frame_parts(dict(header, id=request_id), payload, limits)``
    (the id last), without encoding ``header`` again when a run with the
    same header was encoded before."""
    values = tuple(header.values())
    types = tuple(map(type, values))
    if (header.get("type") != "run" or not _KEPT_TYPES.issuperset(types)
            or type(request_id) is not int or not 0 <= request_id <= MAX_ID
            or "id" in header):
        return encode_frame_parts(dict(header, id=request_id), payload, limits)
    key = (tuple(header), values, types)
    start = _REQUEST_STARTS.get(key)
    if start is None:
        _check_header_fields(dict(header, id=request_id))
        start = _encode_header(header).encode("utf-8")[:-1] + b',"id":'
        if len(_REQUEST_STARTS) >= _REQUEST_STARTS_MAX:
            _REQUEST_STARTS.clear()
        _REQUEST_STARTS[key] = start
    return _frame_parts(start + b"%d}" % request_id, payload, limits)


def _frame_parts(header_bytes, payload, limits):
    payload_len = (len(payload) if type(payload) is bytes
                   else memoryview(payload).nbytes)
    header_len = len(header_bytes)
    if (header_len > limits.max_header_bytes or header_len < MIN_HEADER_BYTES
            or PREFIX_SIZE + header_len + payload_len
            > limits.max_frame_bytes):
        _check_lengths(header_len, payload_len, limits)  # raises
    prefix = _PREFIX.pack(MAGIC, FRAME_VERSION, 0, 0, len(header_bytes),
                          payload_len)
    return prefix + header_bytes, payload


_HEADER_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                                   allow_nan=False)
if json.encoder.c_make_encoder is not None:
    # What JSONEncoder.encode builds on every call, built once: a header is
    # encoded per request. Without the markers (the check for a structure
    # that contains itself), which would be shared between threads: a
    # header is made of fresh dicts, lists, strings and numbers.
    _ITERENCODE = json.encoder.c_make_encoder(
        None, _HEADER_ENCODER.default, json.encoder.encode_basestring, None,
        ":", ",", False, False, False)

    def _encode_header(header):
        return "".join(_ITERENCODE(header, 0))
else:
    _encode_header = _HEADER_ENCODER.encode


class FrameDecoder:
    """Incremental frame decoder: ``feed(chunk)`` returns completed frames.

    After it raises, the decoder is broken (the stream has lost its framing)
    and every later ``feed`` raises the same error again.
    """

    def __init__(self, limits=Limits(), *, allow_null_id=True):
        """``allow_null_id`` accepts ``"id": null``, which the daemon uses in
        ``error`` frames about the connection itself."""
        self._limits = limits
        self._allow_null_id = allow_null_id
        self._buffer = bytearray()
        # (header_len, payload_len) once the prefix has arrived.
        self._lengths = None
        self._error = None

    @property
    def limits(self):
        """The limits frames are checked against."""
        return self._limits

    @limits.setter
    def limits(self, limits):
        self._limits = limits

    @property
    def buffered(self):
        """Bytes held that do not yet make up a whole frame."""
        return len(self._buffer)

    def feed(self, data):
        """Add ``data`` (bytes-like, any length) and return finished frames."""
        if self._error is not None:
            raise self._error
        if self._buffer:
            self._buffer += data
            data = self._buffer
        # Frames are read where they lie (a chunk holds many replies when
        # the client is busy); what is left is kept once, at the end.
        frames = []
        offset = 0
        try:
            while True:
                end = self._next_frame(data, offset, frames)
                if end is None:
                    break
                offset = end
        except ProtocolError as exc:
            self._error = exc
            self._buffer = bytearray()
            raise
        if data is self._buffer:
            del self._buffer[:offset]  # cheap at the front, in CPython
        elif offset < len(data):
            self._buffer = bytearray(memoryview(data)[offset:])
        return frames

    def _next_frame(self, data, offset, frames):
        """Appends the frame at ``offset`` of ``data`` to ``frames`` and
        returns where it ends; None if it is not all there yet."""
        if self._lengths is None:
            if len(data) - offset < PREFIX_SIZE:
                return None
            self._lengths = _parse_prefix(data, self._limits, offset)
        header_len, payload_len = self._lengths
        header_end = offset + PREFIX_SIZE + header_len
        end = header_end + payload_len
        if len(data) < end:
            return None
        with memoryview(data) as view:
            header = _parse_header(view[offset + PREFIX_SIZE:header_end],
                                   self._allow_null_id)
            payload = bytes(view[header_end:end])
        self._lengths = None
        frames.append(Frame(header, payload))
        return end


def _parse_prefix(buffer, limits, offset=0):
    magic, version, flags, reserved, header_len, payload_len = (
        _PREFIX.unpack_from(buffer, offset))
    if magic != MAGIC:
        raise ProtocolError(f"bad magic {bytes(magic)!r}, expected {MAGIC!r}",
                            code="bad_frame")
    if version != FRAME_VERSION:
        raise ProtocolError(
            f"unsupported frame version {version}, expected {FRAME_VERSION}",
            code="unsupported_version")
    if flags != 0:
        raise ProtocolError(f"flags are {flags:#04x}, expected 0",
                            code="bad_frame")
    if reserved != 0:
        raise ProtocolError(f"reserved bytes are {reserved:#06x}, expected 0",
                            code="bad_frame")
    _check_lengths(header_len, payload_len, limits)
    return header_len, payload_len


def _check_lengths(header_len, payload_len, limits):
    if header_len < MIN_HEADER_BYTES:
        raise ProtocolError(
            f"header length {header_len} is under the minimum of "
            f"{MIN_HEADER_BYTES}", code="too_large")
    if header_len > limits.max_header_bytes:
        raise ProtocolError(
            f"header length {header_len} exceeds max_header_bytes "
            f"{limits.max_header_bytes}", code="too_large")
    frame_len = PREFIX_SIZE + header_len + payload_len
    if frame_len > limits.max_frame_bytes:
        raise ProtocolError(
            f"frame length {frame_len} (payload {payload_len}) exceeds "
            f"max_frame_bytes {limits.max_frame_bytes}", code="too_large")


def _reject_constant(name):
    # NaN and Infinity are Python extensions to JSON; the daemon rejects them.
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text):
    # Python reads 1e400 as inf; the daemon refuses it (PROTOCOL.md, Frames:
    # a header's "numbers fit a double").
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text:.40} does not fit a double")
    return value


def _parse_int(text):
    # Integers are exact here; past a double's range the daemon refuses them.
    if len(text) > 308:
        _parse_float(text)
    return int(text)


_HEADER_DECODER = json.JSONDecoder(parse_constant=_reject_constant,
                                   parse_float=_parse_float,
                                   parse_int=_parse_int)
# Headers too short to hold an integer past a double's range (309 digits)
# skip the Python call per integer.
_SHORT_HEADER = 308
_SHORT_HEADER_SCAN = json.JSONDecoder(parse_constant=_reject_constant,
                                      parse_float=_parse_float).scan_once


def _decode_short(text):
    """A short header that is one JSON object with nothing around it, as
    every peer writes them; else None (``_HEADER_DECODER`` then reads it,
    or says what is wrong with it)."""
    if not text.startswith("{"):
        return None
    try:
        header, end = _SHORT_HEADER_SCAN(text, 0)
    except StopIteration:
        return None
    return header if end == len(text) else None


# An escaped surrogate: the only way into a header for an unpaired one,
# since UTF-8 cannot carry it raw. Seen rarely, so checked only then.
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _depth(value):
    """How deep arrays and objects nest in a decoded header (the header
    object is 1)."""
    deepest, level = 0, [(value, 1)]
    while level:
        item, depth = level.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        level.extend((child, depth + 1) for child in item)
    return deepest


# The header of most replies, a job's value ({"id":7,"status":"ok",
# "type":"result"}, as the daemon writes it: keys sorted, no spaces), is
# read without json when it is exactly that: ~0.4 µs instead of ~2.8.
_RESULT_OK_HEAD = b'{"id":'
_RESULT_OK_TAIL = b',"status":"ok","type":"result"}'
_RESULT_OK_DIGITS = slice(len(_RESULT_OK_HEAD), -len(_RESULT_OK_TAIL))


def _parse_header(raw, allow_null_id):
    raw = bytes(raw)
    if raw.endswith(_RESULT_OK_TAIL) and raw.startswith(_RESULT_OK_HEAD):
        digits = raw[_RESULT_OK_DIGITS]
        # JSON's own integers only: no sign, no leading zero.
        if (digits.isdigit() and len(digits) <= 16
                and (digits[0] != 0x30 or len(digits) == 1)):
            frame_id = int(digits)
            if frame_id <= MAX_ID:
                return {"id": frame_id, "status": "ok", "type": "result"}
    try:
        text = raw.decode("utf-8")
        header = _decode_short(text) if len(raw) <= _SHORT_HEADER else None
        if header is None:
            header = _HEADER_DECODER.decode(text)
        if _ESCAPED_SURROGATE.search(raw):
            # json reads "\ud800" as a lone surrogate, which no Unicode text
            # holds; the daemon refuses it (PROTOCOL.md, Frames), and so
            # does this UTF-8 encoding (UnicodeEncodeError, a ValueError).
            json.dumps(header, ensure_ascii=False).encode("utf-8")
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"header is not valid UTF-8 JSON: {exc}",
                            code="bad_header") from exc
    except RecursionError as exc:
        # Nested past what json can read: refused below in any case.
        raise ProtocolError(f"header nests deeper than {MAX_HEADER_DEPTH} "
                            "levels", code="bad_header") from exc
    if raw.count(b"[") + raw.count(b"{") > MAX_HEADER_DEPTH and \
            _depth(header) > MAX_HEADER_DEPTH:
        raise ProtocolError(f"header nests deeper than {MAX_HEADER_DEPTH} "
                            "levels", code="bad_header")
    if not isinstance(header, dict):
        raise ProtocolError(
            f"header is a JSON {type(header).__name__}, not an object",
            code="bad_header")
    _check_header_fields(header, allow_null_id)
    return header


def _check_header_fields(header, allow_null_id=False):
    if not isinstance(header, dict):
        raise ProtocolError(
            f"header must be a dict, not {type(header).__name__}",
            code="bad_header")
    if not isinstance(header.get("type"), str):
        raise ProtocolError(f"header lacks a string 'type': {header!r:.200}",
                            code="bad_header")
    if "id" not in header:
        raise ProtocolError(f"header lacks an 'id': {header!r:.200}",
                            code="bad_header")
    frame_id = header["id"]
    if frame_id is None and allow_null_id:
        return
    if (not isinstance(frame_id, int) or isinstance(frame_id, bool)
            or not 0 <= frame_id <= MAX_ID):
        raise ProtocolError(
            f"header 'id' must be an integer in 0..{MAX_ID}, got {frame_id!r}",
            code="bad_header")
