"""Replies: what a reply frame means, and the Future it completes.

Both clients keep their requests in a ``Pending`` table and hand it every
frame they read; ``Pending.dispatch`` is the one path from a frame to a
Future::

    reader (thread or task)        Pending.dispatch(frame)
    -----------------------        -----------------------
    FrameDecoder: a frame  ----->  output: written to sys.stdout/stderr
                                   take the id's (Future, decode); a job
                                     cancelled here: reply dropped
                                   error: error_from_header, then settle
                                   else decode(frame): a value, or Raised
                                     with the job's exception; settle

The clients differ only in their Futures: ``Client`` settles
``concurrent.futures`` Futures and ``JobFuture``s from whichever thread
reads, under its connection's lock; ``AsyncClient`` settles
``asyncio.Future``s on its event loop, with no lock. Each passes its own
``settle`` and ``stopped`` to the table.
"""

import concurrent.futures
import contextlib
import pickle
import sys

from . import _queue_local
from ._errors import (DaemonBusy, JobTimeout, ProtocolError, RemoteError,
                      WorkerCrashed, _RemoteTraceback)

__all__ = [
    "Pending", "Raised", "decode_lease", "decode_ping", "decode_result",
    "decode_status", "error_from_header", "expect_type", "write_output",
]

# Error codes that mean a request or frame broke the protocol, as opposed to
# a job that failed; these raise ProtocolError, every other code RemoteError.
_PROTOCOL_ERROR_CODES = frozenset({
    "bad_frame", "unsupported_version", "too_large", "bad_header",
    "hello_required", "unknown_type", "bad_request",
})


class Raised:
    """A decoded reply saying the job raised ``exception``."""

    __slots__ = ("exception",)

    def __init__(self, exception):
        self.exception = exception


class Pending:
    """The requests of one connection that wait for a reply.

    ``settle(future, value=..., exception=...)`` completes a Future unless
    it is done already; ``stopped(future, error)`` is for a request the
    daemon stopped because someone else cancelled it. ``unpickling`` is
    what a Queue in a reply talks through (``_queue_local``); ``explain``
    may turn an ``unknown_definition`` error into a better one.

    ``lock`` guards the table. ``dispatch`` takes it itself, for as short
    as it can: Futures are settled outside it, as their done callbacks may
    send requests. Every other method is called with it held.
    """

    def __init__(self, settle, stopped, *, lock=None, unpickling=None,
                 explain=None):
        self._settle = settle
        self._stopped = stopped
        self._lock = lock if lock is not None else contextlib.nullcontext()
        self._unpickling = unpickling
        self._explain = explain
        # request id -> (Future, decode). Never replaced, so a connection
        # may keep it to count requests in flight without a call.
        self.entries = self._entries = {}
        # Ids whose reply a caller reads for itself (Client.run), so the
        # reader thread need not.
        self._claimed = set()
        self._abandoned = set()  # Ids of jobs cancelled here.

    def __len__(self):
        return len(self._entries)

    def add(self, request_id, future, decode, claimed=False):
        """Wait for the reply to ``request_id``; ``decode(frame)`` turns it
        into the Future's value (or returns a ``Raised``)."""
        self._entries[request_id] = (future, decode)
        if claimed:
            self._claimed.add(request_id)

    def unclaimed(self):
        """True if some request waits that no caller reads for."""
        return len(self._entries) > len(self._claimed)

    def take(self, request_id):
        """The request's ``(Future, decode)``, out of the table; or None."""
        self._claimed.discard(request_id)
        return self._entries.pop(request_id, None)

    def abandon(self, request_id, future=None):
        """Stop waiting for a request: its reply and output are dropped.

        With ``future``, only while that Future is the one waiting. False
        if nothing (or another Future) waited.
        """
        entry = self._entries.get(request_id)
        if entry is None or (future is not None and entry[0] is not future):
            return False
        self.take(request_id)
        self._abandoned.add(request_id)
        return True

    def drain(self):
        """Empty the table (the connection ended); its Futures."""
        futures = [future for future, _ in self._entries.values()]
        self._entries.clear()
        self._claimed.clear()
        return futures

    def dispatch(self, frame):
        """Complete the Future the frame answers; raise on fatal errors.

        Raises ``ProtocolError`` for a frame that answers nothing and for
        the daemon's fatal errors: the connection is over then.
        """
        header = frame.header
        request_id = header["id"]
        if header["type"] == "output":
            self._write_output(header)
            return
        is_error = header["type"] == "error"
        fatal = is_error and (header.get("fatal") is True
                              or request_id is None)
        with self._lock:
            entry = self.take(request_id)
            if entry is None and request_id in self._abandoned:
                self._abandoned.discard(request_id)
                return  # The reply of a job cancelled here.
        if entry is None and not fatal:
            raise ProtocolError(
                f"daemon sent a {header['type']!r} reply for request id "
                f"{request_id}, which is not waiting for one")
        if is_error:
            self._fail(header, entry)
            if fatal:
                raise ProtocolError(
                    f"daemon closed the connection: {header.get('message')}",
                    code=header.get("code"))
            return
        future, decode = entry
        if future.done():
            return  # Cancelled; its stop is on the way.
        previous = _queue_local.unpickling_for(self._unpickling)
        try:
            value = decode(frame)
        except (ProtocolError, RemoteError) as exc:
            self._settle(future, exception=exc)
        else:
            if isinstance(value, Raised):
                self._settle(future, exception=value.exception)
            else:
                self._settle(future, value=value)
        finally:
            _queue_local.unpickling_for(previous)

    def _fail(self, header, entry):
        """Settle the Future of ``entry`` (if any) with an error reply."""
        error = error_from_header(header)
        if (self._explain is not None
                and header.get("code") == "unknown_definition"):
            error = self._explain(header, error)
        if entry is None:
            return
        if isinstance(error, concurrent.futures.CancelledError):
            self._stopped(entry[0], error)  # Stopped by someone else.
        else:
            self._settle(entry[0], exception=error)

    def _write_output(self, header):
        """Copy one ``output`` frame to ``sys.stdout`` or ``sys.stderr``."""
        job_id = header["id"]
        with self._lock:
            if job_id in self._abandoned:
                return  # Cancelled here: nobody is waiting for it.
            known = job_id in self._entries
        stream, data = header.get("stream"), header.get("data")
        if (not known or stream not in ("stdout", "stderr")
                or not isinstance(data, str)):
            raise ProtocolError(f"bad output frame (for a job this client "
                                f"is waiting for: {known}): "
                                f"{header!r:.300}")
        write_output(stream, data)


def write_output(stream, data):
    """Write a job's output to this process's stream of the same name.

    One write per frame, then a flush, so lines from different jobs stay
    whole. The stream is looked up each time, so ``redirect_stdout``
    works; a broken or missing stream must not stop the reader.
    """
    target = getattr(sys, stream, None)
    if target is None:
        return
    try:
        target.write(data)
        target.flush()
    except Exception:  # noqa: BLE001 - the caller's stream, not our bug.
        pass


def error_from_header(header):
    """The exception an ``error`` reply stands for."""
    code = header.get("code")
    message = header.get("message")
    if not isinstance(message, str):
        message = f"daemon sent error {code!r} without a message"
    if code in _PROTOCOL_ERROR_CODES:
        return ProtocolError(message, code=code)
    if code == "timeout":
        return JobTimeout(message)
    if code == "cancelled":
        return concurrent.futures.CancelledError(message)
    if code == "worker_crashed":
        return WorkerCrashed(message, code=code)
    if code == "busy":
        return DaemonBusy(message, code=code)
    return RemoteError.from_exception_info(header.get("exception"),
                                           message=message, code=code)


def check_reply_type(header, expected):
    """Raise ``ProtocolError`` unless ``header`` is a reply of ``expected``."""
    if header["type"] != expected:
        raise ProtocolError(f"expected a {expected!r} reply to request "
                            f"{header['id']}, got {header['type']!r}")


def expect_type(expected):
    """A ``decode`` for replies that carry nothing but their type."""
    def decode(frame):
        check_reply_type(frame.header, expected)
        return None
    return decode


def decode_ping(frame):
    check_reply_type(frame.header, "ping")


def decode_status(frame):
    check_reply_type(frame.header, "status")
    document = frame.header.get("status")
    if not isinstance(document, dict):
        raise ProtocolError(f"status reply lacks a 'status' object: "
                            f"{frame.header!r:.300}")
    return document


def decode_lease(frame):
    header = frame.header
    check_reply_type(header, "lease")
    lease, interpreter = header.get("lease"), header.get("interpreter")
    if not isinstance(lease, int) or not isinstance(interpreter, int):
        raise ProtocolError(f"lease reply lacks integer 'lease' and "
                            f"'interpreter': {header!r:.300}")
    if header.get("lane") == "process":
        # A worker process: it is known by its pid (interpreter is -1).
        pid = header.get("pid")
        if not isinstance(pid, int):
            raise ProtocolError(f"process lease reply lacks an integer "
                                f"'pid': {header!r:.300}")
        return lease, pid
    return lease, interpreter


def decode_result(frame):
    """A ``result`` reply's value, or ``Raised`` with the job's exception."""
    header = frame.header
    if header["type"] != "result":
        check_reply_type(header, "result")  # raises
    status = header.get("status")
    if status == "ok":
        if not frame.payload:
            raise ProtocolError(f"result of job {header['id']} has status "
                                f"'ok' but no payload")
        try:
            if isinstance(frame.views, Exception):
                raise frame.views  # mapping the buffers' file failed
            return pickle.loads(frame.payload, buffers=frame.views)
        except Exception as exc:
            raise RemoteError(
                f"the result of job {header['id']} does not unpickle in the "
                f"client: {exc!r}", type_name=type(exc).__qualname__) from exc
    if status == "raised":
        return Raised(_remote_exception(header, frame.payload))
    raise ProtocolError(f"result of job {header['id']} has unknown status "
                        f"{status!r}")


def _remote_exception(header, payload):
    """The exception a job raised, re-made here with its remote traceback."""
    info = header.get("exception")
    load_error = None
    if payload:
        try:
            exception = pickle.loads(payload)
        except Exception as exc:
            load_error = exc
        else:
            if isinstance(exception, BaseException):
                error = RemoteError.from_exception_info(info)
                if error.traceback_text:
                    exception.__cause__ = _RemoteTraceback(
                        error.traceback_text)
                return exception
    error = RemoteError.from_exception_info(info)
    error.__cause__ = load_error
    return error
