"""Queue requests made inside a job, answered in-process.

    job: q.get() --> queue_get ---------------> _extrainterpreters.queue_get
         q.info() --> TRANSPORT._request(header) --^  (GIL released; waits
                                                   on a condition variable)

Inside the daemon's interpreters the built-in module ``_extrainterpreters``
reaches the daemon's queues directly. ``TRANSPORT`` stands in for a
``Client`` there: it takes the same request headers as the socket protocol
and returns finished futures holding frame-like replies, so ``Queue`` has
one code path for both; ``put`` and ``get``, the hot ones, skip it and
call ``queue_put`` / ``queue_get`` themselves. A call blocks (with the GIL
released), and a job's cancellation or timeout ends it with the job's
stop exception.
Outside the daemon, the module is absent and ``inside_daemon()`` is False.
"""

import concurrent.futures
import queue as _stdlib_queue
import threading

from ._errors import ProtocolError, RemoteError

try:
    import _extrainterpreters as _daemon
except ImportError:
    _daemon = None

__all__ = ["TRANSPORT", "QueueError", "inside_daemon", "queue_get", "queue_get_plain",
           "queue_put", "queue_put_plain",
           "raise_for", "unpickling_for", "unpickling_client"]

# What a Queue unpickled on this thread should talk through: the Client (or
# the socket path of the AsyncClient) whose reply is being unpickled.
_unpickling = threading.local()


def unpickling_for(client):
    """Sets what Queues unpickled on this thread use; returns what to pass
    back to restore the previous setting."""
    previous = getattr(_unpickling, "client", None)
    _unpickling.client = client
    return previous


def unpickling_client():
    """A Client, a socket path, or None (the default transport)."""
    return getattr(_unpickling, "client", None)


def inside_daemon():
    """True when this code runs in one of the daemon's interpreters."""
    return _daemon is not None and hasattr(_daemon, "queue_get")


def raise_for(error):
    """Raise what a ``QueueError(code, message)`` of the module means:
    ``queue.Empty``, ``queue.Full``, or ``RemoteError`` with its code."""
    code, message = error.args
    if code == "queue_empty":
        raise _stdlib_queue.Empty(message) from None
    if code == "queue_full":
        raise _stdlib_queue.Full(message) from None
    raise RemoteError(message, code=code) from None


class _Reply:
    """What ``_codec`` would decode from the daemon's reply frame."""

    __slots__ = ("header", "payload")

    def __init__(self, header, payload=b""):
        self.header, self.payload = header, payload


class _Transport:
    """The subset of ``Client`` that ``Queue`` uses, answered in-process."""

    _hello = None  # by-value items: the job's Python is the daemon's

    def _request(self, header, decode, payload=b"", *, future=None):
        if future is None:
            future = concurrent.futures.Future()
        try:
            reply = self._answer(header, payload)
        except _daemon.QueueError as error:
            code, message = error.args
            future.set_exception(RemoteError(message, code=code))
        else:
            future.set_result(decode(reply))
        future.request_id = None
        return future

    @staticmethod
    def _answer(header, payload):
        kind = header["type"]
        queue = header.get("queue")
        if kind == "queue_get":
            item = _daemon.queue_get(queue, header["block"], header.get("timeout"))
            return _Reply({"type": kind}, item)
        if kind == "queue_put":
            _daemon.queue_put(queue, payload, header.get("block", True), header.get("timeout"))
            return _Reply({"type": kind})
        if kind == "queue_create":
            return _Reply({"type": kind,
                           "queue": _daemon.queue_create(header["name"], header["maxsize"])})
        if kind == "queue_open":
            queue, maxsize = _daemon.queue_open(header["name"])
            return _Reply({"type": kind, "queue": queue, "maxsize": maxsize})
        if kind == "queue_info":
            return _Reply({"type": kind, **_daemon.queue_info(queue)})
        if kind == "queue_delete":
            _daemon.queue_delete(queue)
            return _Reply({"type": kind})
        raise ProtocolError(f"{kind!r} is not a request a job can make in-process")


# Queue.put and Queue.get call these straight from a job: no frame between.
if inside_daemon():
    TRANSPORT = _Transport()
    queue_put, queue_get, QueueError = _daemon.queue_put, _daemon.queue_get, _daemon.QueueError
    queue_put_plain, queue_get_plain = _daemon.queue_put_plain, _daemon.queue_get_plain
else:
    TRANSPORT = queue_put = queue_get = queue_put_plain = queue_get_plain = None
    QueueError = ()  # catches nothing
