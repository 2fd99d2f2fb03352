"""Queues that live in the daemon, with the ``queue.Queue`` API.

    client A                    extrainterpretersd (I/O thread)           client B
    q.put(x) --queue_put+pickle--> QueueStore: queue 3 --queue_get reply--> q.get()
                                   (items, waiting getters and putters)

An item is pickled here (``pickle`` protocol 5, plainly: no by-value
functions yet) and copied into the daemon, so it outlives whoever put it.
A blocked ``get`` or ``put`` is a request the daemon answers the moment an
item or a slot arrives, or with ``queue_empty`` / ``queue_full`` when its
timeout passes; nothing polls. The wait holds none of the client's locks:
other threads keep using the same client meanwhile.

Known gap (phase 1): a wait interrupted here (Ctrl-C) leaves the request
waiting in the daemon, and an item handed to it later is lost.
"""

import math
import pickle
import queue as _queue

from ._client import Client, _default_client
from ._errors import ProtocolError, RemoteError

__all__ = ["Queue"]


class Queue:
    """A FIFO queue in the daemon, shared by every client that opens it.

    ``Queue(maxsize=0)`` makes an anonymous queue owned by the client's
    connection: it goes away when that connection closes, and anyone still
    waiting on it gets a ``RemoteError`` with code ``queue_gone``.
    ``Queue.create(name)`` / ``Queue.open(name)`` give a named queue that
    lives until ``delete()`` or the daemon stops.

    ``maxsize`` 0 means as many items as the daemon's ``max_queue_items``;
    a queue also holds at most ``max_queue_bytes`` of pickled items. Past
    either, ``put`` waits or raises ``queue.Full``, as the caller chose.

    Without ``client``, a Queue uses a new connection to ``socket_path``
    (closed by ``close()`` or ``delete()``) or, with neither, the shared
    client of the default socket.
    """

    def __init__(self, maxsize=0, *, client=None, socket_path=None):
        self._setup(client, socket_path)
        self._id = self._make({"type": "queue_create", "name": None,
                               "maxsize": _check_maxsize(maxsize)})
        self._name = None
        self._maxsize = maxsize

    @classmethod
    def create(cls, name, maxsize=0, *, client=None, socket_path=None):
        """Create the queue ``name``; ``RemoteError`` (``queue_exists``) if
        a queue of that name exists."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a queue name must be a non-empty str, not {name!r}")
        self = cls.__new__(cls)
        self._setup(client, socket_path)
        self._id = self._make({"type": "queue_create", "name": name,
                               "maxsize": _check_maxsize(maxsize)})
        self._name, self._maxsize = name, maxsize
        return self

    @classmethod
    def open(cls, name, *, client=None, socket_path=None):
        """Open the existing queue ``name``; ``RemoteError``
        (``unknown_queue``) if there is none."""
        self = cls.__new__(cls)
        self._setup(client, socket_path)
        self._id, self._maxsize = self._make({"type": "queue_open", "name": name},
                                             _decode_opened)
        self._name = name
        return self

    @classmethod
    def _attach(cls, queue_id, *, client):
        """A Queue for an id known some other way (tests, later: jobs)."""
        self = cls.__new__(cls)
        self._client, self._own_client = client, False
        self._id, self._name, self._maxsize = queue_id, None, 0
        return self

    # -- the queue.Queue API --------------------------------------------------

    @property
    def maxsize(self):
        return self._maxsize

    @property
    def name(self):
        """The queue's name, or None for an anonymous queue."""
        return self._name

    def put(self, item, block=True, timeout=None):
        """Put ``item`` into the queue; ``queue.Full`` as ``queue.Queue``."""
        header = {"type": "queue_put", "queue": self._id, "block": bool(block),
                  "timeout": _check_timeout(block, timeout)}
        self._call(header, pickle.dumps(item, protocol=5), _decode_empty)

    def get(self, block=True, timeout=None):
        """Remove and return the oldest item; ``queue.Empty`` as ``queue.Queue``."""
        header = {"type": "queue_get", "queue": self._id, "block": bool(block),
                  "timeout": _check_timeout(block, timeout)}
        return pickle.loads(self._call(header, b"", _decode_item))

    def put_nowait(self, item):
        return self.put(item, block=False)

    def get_nowait(self):
        return self.get(block=False)

    def qsize(self):
        return self.info()["size"]

    def empty(self):
        return self.qsize() == 0

    def full(self):
        return 0 < self._maxsize <= self.qsize()

    def info(self):
        """The daemon's ``queue_info`` reply: size, maxsize, bytes, waiters..."""
        return self._call({"type": "queue_info", "queue": self._id}, b"", _decode_header)

    def delete(self):
        """Delete the queue in the daemon (its waiters get ``queue_gone``);
        then ``close()``."""
        try:
            self._call({"type": "queue_delete", "queue": self._id}, b"", _decode_empty)
        finally:
            self.close()

    def close(self):
        """Close the connection this Queue opened itself, if any. An
        anonymous queue on it goes away; a named one stays."""
        if self._own_client:
            self._client.close()

    def __reduce__(self):
        raise TypeError("an extrainterpreters.Queue cannot be pickled yet: "
                        "passing queues to jobs is not supported in this version")

    def __repr__(self):
        what = repr(self._name) if self._name is not None else "anonymous"
        return f"<extrainterpreters.Queue {self._id} {what} maxsize={self._maxsize}>"

    # -- plumbing ---------------------------------------------------------------

    def _setup(self, client, socket_path):
        if client is not None:
            self._client, self._own_client = client, False
        elif socket_path is not None:
            self._client, self._own_client = Client(socket_path), True
        else:
            self._client, self._own_client = _default_client(), False

    def _make(self, header, decode=None):
        try:
            return self._call(header, b"", decode or _decode_created)
        except BaseException:
            self.close()
            raise

    def _call(self, header, payload, decode):
        """Send one request and wait for its reply on the client's reader
        thread, mapping ``queue_empty`` / ``queue_full`` to the standard
        exceptions."""
        future = self._client._request(header, decode, payload)
        try:
            return future.result()
        except RemoteError as exc:
            if exc.code == "queue_empty":
                raise _queue.Empty(exc.message) from None
            if exc.code == "queue_full":
                raise _queue.Full(exc.message) from None
            raise


def _check_maxsize(maxsize):
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
        raise ValueError(f"maxsize must be an int >= 0, not {maxsize!r}")
    return maxsize


def _check_timeout(block, timeout):
    """``timeout`` as the protocol wants it; like ``queue.Queue``, ignored
    without ``block`` and refused when negative."""
    if not block or timeout is None:
        return None
    if (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
            or math.isnan(timeout)):
        raise TypeError(f"timeout must be a number of seconds, not {timeout!r}")
    if timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
    return min(float(timeout), 1e9)


def _expect(frame, expected):
    if frame.header.get("type") != expected:
        raise ProtocolError(f"expected a {expected!r} reply, got "
                            f"{frame.header!r:.300}")


def _decode_created(frame):
    _expect(frame, "queue_create")
    queue_id = frame.header.get("queue")
    if not isinstance(queue_id, int):
        raise ProtocolError(f"queue_create reply lacks an integer 'queue': "
                            f"{frame.header!r:.300}")
    return queue_id


def _decode_opened(frame):
    _expect(frame, "queue_open")
    queue_id, maxsize = frame.header.get("queue"), frame.header.get("maxsize")
    if not isinstance(queue_id, int) or not isinstance(maxsize, int):
        raise ProtocolError(f"queue_open reply lacks integer 'queue' and "
                            f"'maxsize': {frame.header!r:.300}")
    return queue_id, maxsize


def _decode_empty(frame):
    if frame.header.get("type") not in ("queue_put", "queue_delete"):
        raise ProtocolError(f"unexpected reply {frame.header!r:.300}")


def _decode_item(frame):
    _expect(frame, "queue_get")
    if not frame.payload:
        raise ProtocolError("queue_get reply has no payload (the pickled item)")
    return bytes(frame.payload)  # unpickled by the caller, not the reader


def _decode_header(frame):
    _expect(frame, "queue_info")
    return {k: v for k, v in frame.header.items() if k not in ("type", "id")}
