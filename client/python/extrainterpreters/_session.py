"""A session with the daemon as both clients see it: how it opens, how it ends.

Opening: the client connects to the Unix socket and sends ``hello`` with
the protocol version; the reply names the daemon's Python and its frame
limits (``check_hello``). Ending: whatever ends a connection becomes one
``DaemonConnectionError`` or ``ProtocolError`` that every waiting Future
fails with; these functions make the callables that build it, so each
Future gets an exception of its own.
"""

import platform
import select
import socket

from . import _codec
from ._errors import DaemonConnectionError, ProtocolError
from ._replies import check_reply_type
from ._version import __version__

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT", "PROTOCOL_VERSION", "RECV_SIZE", "check_hello",
    "closed_error", "connect_reason", "eof_error", "hello_request",
    "PeerWatch", "peer_gone", "process_modules", "same_protocol_error", "window",
]

PROTOCOL_VERSION = 1
DEFAULT_CONNECT_TIMEOUT = 30.0
RECV_SIZE = 256 * 1024  # Bytes one read of the socket asks for.


def hello_request(**capabilities):
    """The ``hello`` request header, with optional capabilities
    (``fds``, ``regions``: PROTOCOL.md, "Large data")."""
    return {"type": "hello", "protocol": PROTOCOL_VERSION,
            "client": (f"extrainterpreters-python/{__version__} "
                       f"python/{platform.python_version()}"),
            **capabilities}


def check_hello(header):
    """Check a ``hello`` reply header; return the daemon's ``Limits``."""
    check_reply_type(header, "hello")
    if header.get("protocol") != PROTOCOL_VERSION:
        raise ProtocolError(f"daemon speaks protocol "
                            f"{header.get('protocol')!r}, this client "
                            f"speaks {PROTOCOL_VERSION}")
    limits = header.get("limits")
    if not isinstance(limits, dict):
        raise ProtocolError(f"hello reply lacks 'limits': {header!r:.300}")
    return _codec.Limits(
        max_header_bytes=_limit(limits, "max_header_bytes"),
        max_frame_bytes=_limit(limits, "max_frame_bytes"))


_PEEK = int(socket.MSG_PEEK | socket.MSG_DONTWAIT)


def peer_gone(sock):
    """True if the daemon closed its end of ``sock`` and nobody has read
    that yet, so a request is not sent into a dead socket after the daemon
    went away. A peek: it takes nothing a reader is owed, and a reader
    taking the bytes meanwhile makes it "nothing yet", not "gone"."""
    try:
        return sock.recv(1, _PEEK) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


class PeerWatch:
    """``peer_gone`` of one socket, made cheap for the common case: a
    ``poll`` with no wait first (nothing to read: the daemon is there; no
    exception made), and the peek only when something can be read."""

    __slots__ = ("_sock", "_poll")

    def __init__(self, sock):
        self._sock = sock
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)

    def gone(self):
        try:
            if not self._poll.poll(0):
                return False
        except RuntimeError:
            pass  # another thread polls it right now: peek instead
        return peer_gone(self._sock)

    def close(self):
        """Close the watched socket (when the watch owns it: a duplicate)."""
        self._sock.close()


def window(header):
    """How many jobs a connection may have in flight (hello's
    ``max_jobs_per_connection``): past it the daemon holds the next run
    until one is answered."""
    value = header.get("limits", {}).get("max_jobs_per_connection")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        return 10000
    return value


def process_modules(header):
    """hello's ``process_modules``: the top-level modules whose jobs go to
    a worker process (``_shm.out_of_band_min``); none from an older
    daemon."""
    modules = header.get("process_modules")
    if not isinstance(modules, list):
        return frozenset()
    return frozenset(name for name in modules if isinstance(name, str))


def _limit(limits, key):
    value = limits.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 2:
        raise ProtocolError(f"hello reply has a bad limits.{key}: {value!r}")
    return value


def connect_reason(exc):
    """The short phrase ``DaemonConnectionError`` gives for ``exc``."""
    if isinstance(exc, FileNotFoundError):
        return "no such socket file"
    if isinstance(exc, ConnectionRefusedError):
        return "no daemon is listening"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)


def closed_error(socket_path, reason):
    """Makes the error of a connection that ended for ``reason``."""
    return lambda: DaemonConnectionError(socket_path, reason, connected=True)


def eof_error(socket_path, decoder):
    """Makes the error of a connection the daemon closed; ``decoder`` (a
    ``FrameDecoder``) tells whether it stopped in the middle of a frame."""
    if decoder.buffered:
        return closed_error(socket_path, "daemon closed the connection in "
                                         "the middle of a frame")
    return closed_error(socket_path, "daemon closed the connection")


def same_protocol_error(exc):
    """Makes a copy of ``exc``, a ``ProtocolError``, for each Future."""
    return lambda: ProtocolError(exc.message, code=exc.code)
