"""Queues that live in the daemon, with the ``queue.Queue`` API.

    client A                    extrainterpretersd (I/O thread)           client B
    q.put(x) --queue_put+pickle--> QueueStore: queue 3 --queue_get reply--> q.get()
                                   (items, waiting getters and putters)

An item is pickled here and copied into the daemon, so it outlives whoever
put it; one holding functions shipped by value carries their definitions
(``_queue_items``). A blocked ``get`` or ``put`` is a request the daemon
answers when an item or a slot arrives, or when its timeout passes; a wait
interrupted here is withdrawn before the exception goes on
(``_queue_requests``). ``get_async`` and ``put_async`` await the same
reply without blocking the event loop.

Inside a job the daemon provides this package, and ``put`` and ``get``
call it in-process (``_queue_local``): no socket, no frame.
"""

import math
import pickle

from . import _queue_items, _queue_local, _queue_requests
from ._errors import RemoteError
from ._queue_requests import (decode_created, decode_empty, decode_header,
                              decode_item, decode_opened)

# Inside a job (the daemon provides this package there), the client, the
# by-value pickler and asyncio are imported only when a call needs them.

__all__ = ["Queue"]

_dumps, _loads = pickle.dumps, pickle.loads  # protocol 5 given by position: no keyword parsing


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
    client of the default socket. Inside a job, with neither, it calls the
    daemon it runs in directly, without a socket: a blocking call there
    releases the interpreter's GIL while it waits, and ends when the job is
    cancelled or times out.

    A Queue pickles as a reference to the daemon's queue, not a copy: pass
    one to a job as an argument (or put it into another queue) and the job
    uses the same queue. Unpickled in a client, it uses the client whose
    reply held it (for an AsyncClient, the shared Client of its socket).
    """

    _local = False  # True inside a job, where calls skip the socket protocol

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
                                             decode_opened)
        self._name = name
        return self

    @classmethod
    def _attach(cls, queue_id, *, client):
        """A Queue for an id known some other way (tests, later: jobs)."""
        self = cls.__new__(cls)
        self._client, self._own_client = client, False
        self._generation = _generation_of(client)
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
        if self._local:  # in a job: straight to the daemon, the hot path
            if timeout is not None:
                timeout = _check_timeout(block, timeout)
            try:
                # None, bools, ints, floats, bytes, str and short tuples of
                # them: pickled by the daemon itself, without a Pickler.
                if _queue_local.queue_put_plain(self._id, item, block, timeout):
                    return
                try:
                    payload = _dumps(item, 5)
                except Exception:
                    payload = self._dump_item(item)  # by value, or a clear error
                _queue_local.queue_put(self._id, payload, block, timeout)
            except _queue_local.QueueError as error:
                _queue_local.raise_for(error)
            return
        header = {"type": "queue_put", "queue": self._id, "block": bool(block),
                  "timeout": _check_timeout(block, timeout)}
        self._call(header, self._dump_item(item), decode_empty)

    def get(self, block=True, timeout=None):
        """Remove and return the oldest item; ``queue.Empty`` as ``queue.Queue``."""
        if self._local:
            if timeout is not None:
                timeout = _check_timeout(block, timeout)
            try:
                got = _queue_local.queue_get_plain(self._id, block, timeout)
            except _queue_local.QueueError as error:
                _queue_local.raise_for(error)
            if type(got) is not bytearray:
                return got  # a plain value, unpickled by the daemon
            data = got  # the pickle of any other item
            try:
                return _loads(data)
            except Exception:
                return self._load_item(data)  # raises the clear error
        header = {"type": "queue_get", "queue": self._id, "block": bool(block),
                  "timeout": _check_timeout(block, timeout)}
        return self._load_item(self._call(header, b"", decode_item))

    async def put_async(self, item, timeout=None):
        """``put`` for asyncio: waits for room without blocking the loop.

        Cancelling the awaiting task withdraws the put; if the daemon had
        stored the item already, the ``CancelledError`` carries a note
        saying so.
        """
        header = {"type": "queue_put", "queue": self._id, "block": True,
                  "timeout": _check_timeout(True, timeout)}
        await self._call_async(header, self._dump_item(item),
                               decode_empty)

    async def get_async(self, timeout=None):
        """``get`` for asyncio: waits for an item without blocking the loop.

        Cancelling the awaiting task withdraws the get; an item the daemon
        handed over meanwhile goes back to the front of the queue. Inside a
        job there is no socket to await: the call waits in place, as
        ``get`` does, holding up that job's event loop meanwhile.
        """
        header = {"type": "queue_get", "queue": self._id, "block": True,
                  "timeout": _check_timeout(True, timeout)}
        return self._load_item(await self._call_async(header, b"",
                                                      decode_item))

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
        return self._call({"type": "queue_info", "queue": self._id}, b"", decode_header)

    def delete(self):
        """Delete the queue in the daemon (its waiters get ``queue_gone``);
        then ``close()``."""
        try:
            self._call({"type": "queue_delete", "queue": self._id}, b"", decode_empty)
        finally:
            self.close()

    def close(self):
        """Close the connection this Queue opened itself, if any. An
        anonymous queue on it goes away; a named one stays."""
        if self._own_client:
            self._client.close()

    def __reduce__(self):
        return _reopen, (self._id, self._name, self._maxsize)

    def __repr__(self):
        what = repr(self._name) if self._name is not None else "anonymous"
        return f"<extrainterpreters.Queue {self._id} {what} maxsize={self._maxsize}>"

    # -- plumbing ---------------------------------------------------------------

    def _setup(self, client, socket_path):
        if client is not None:
            self._client, self._own_client = client, False
        elif socket_path is not None:
            from ._client import Client
            self._client, self._own_client = Client(socket_path), True
        elif _queue_local.inside_daemon():
            self._client, self._own_client = _queue_local.TRANSPORT, False
            self._local = True
        else:
            from ._client import _default_client
            self._client, self._own_client = _default_client(), False
        self._generation = _generation_of(self._client)

    def _call(self, header, payload, decode):
        header = self._follow_restart(header)
        return _queue_requests.call(self._client, header, payload, decode,
                                    self)

    async def _call_async(self, header, payload, decode):
        header = self._follow_restart(header)
        return await _queue_requests.call_async(self._client, header,
                                                payload, decode, self)

    def _follow_restart(self, header):
        """After the client reconnected (the daemon restarted), this Queue's
        id means nothing (a new daemon numbers queues afresh): an anonymous
        queue is gone with the connection that owned it; a named one is
        looked up by its name again. Returns ``header`` with the id now
        right."""
        keeper = getattr(self._client, "_keeper", None)
        if keeper is None or self._generation is None:
            return header  # inside a job: the daemon itself
        keeper.current()  # reconnects now if the daemon went away
        if keeper.generation == self._generation:
            return header
        if self._name is None:
            raise RemoteError(
                f"queue {self._id} is gone: it was anonymous, and the "
                f"connection that owned it ended (the daemon stopped or "
                f"restarted)", code="queue_gone")
        generation = keeper.generation
        try:
            self._id, self._maxsize = _queue_requests.call(
                self._client, {"type": "queue_open", "name": self._name}, b"",
                decode_opened, self)
            self._generation = generation
        except RemoteError as exc:
            if exc.code != "unknown_queue":
                raise
            raise RemoteError(
                f"queue {self._name!r} is gone: the daemon restarted since it "
                f"was opened, and nobody has made it again (queues live in "
                f"the daemon's memory)", code="unknown_queue") from None
        return dict(header, queue=self._id) if "queue" in header else header

    def _dump_item(self, item):
        return _queue_items.dump(item, self._client, self)

    def _load_item(self, data):
        return _queue_items.load(data, self._client, self)

    def _make(self, header, decode=None):
        try:
            return self._call(header, b"", decode or decode_created)
        except BaseException:
            self.close()
            raise


def _reopen(queue_id, name, maxsize):
    """A Queue unpickled: the same daemon queue, through the client whose
    reply (or queue item) held it, else the default transport: the daemon
    itself inside a job, the shared default client elsewhere."""
    self = Queue.__new__(Queue)
    via = _queue_local.unpickling_client()
    if isinstance(via, str):  # an AsyncClient's reply: share one Client
        from ._client import _default_client
        self._client, self._own_client = _default_client(via), False
    else:
        self._setup(via, None)
    self._generation = _generation_of(self._client)
    self._id, self._name, self._maxsize = queue_id, name, maxsize
    return self


def _generation_of(client):
    """Which connection of ``client`` a Queue's id belongs to (None: the
    daemon's own transport, inside a job)."""
    keeper = getattr(client, "_keeper", None)
    return None if keeper is None else keeper.generation


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
