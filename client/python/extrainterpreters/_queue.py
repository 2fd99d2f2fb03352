"""Queues that live in the daemon, with the ``queue.Queue`` API.

    client A                    extrainterpretersd (I/O thread)           client B
    q.put(x) --queue_put+pickle--> QueueStore: queue 3 --queue_get reply--> q.get()
                                   (items, waiting getters and putters)

An item is pickled here (``pickle`` protocol 5) and copied into the daemon,
so it outlives whoever put it. Functions and classes the daemon cannot
import (``__main__``, lambdas, closures) are shipped by value as in jobs,
but an item is read by other connections, so it carries their definitions
itself (``_dump_item``) instead of naming ones sent on this connection.
A blocked ``get`` or ``put`` is a request the daemon answers the moment an
item or a slot arrives, or with ``queue_empty`` / ``queue_full`` when its
timeout passes; nothing polls. The wait holds none of the client's locks:
other threads keep using the same client meanwhile. ``get_async`` and
``put_async`` await the same reply without blocking the event loop (the
client's reader thread completes it).

A wait interrupted here (Ctrl-C, any exception raised into the waiting
thread, a cancelled asyncio task) is withdrawn (``queue_cancel``) before the
exception goes on::

    interrupted ---queue_cancel---> daemon: still waiting?  yes: "cancelled"
                                                            no: its answer
    get answered after all: the item goes back to the front of the queue
                            (queue_put with "front": true), so none is lost
    put answered after all: stored; a note on the exception says so
"""

import concurrent.futures
import math
import pickle
import queue as _queue
import sys

from . import _queue_local
from ._errors import ExtraInterpretersError, ProtocolError, RemoteError
from ._loader_refs import LOADER_MODULE, LoaderFunction

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
        if self._local:  # in a job: straight to the daemon, the hot path
            if timeout is not None:
                timeout = _check_timeout(block, timeout)
            try:
                payload = _dumps(item, 5)
            except Exception:
                payload = self._dump_item(item)  # by value, or a clear error
            try:
                _queue_local.queue_put(self._id, payload, block, timeout)
            except _queue_local.QueueError as error:
                _queue_local.raise_for(error)
            return
        header = {"type": "queue_put", "queue": self._id, "block": bool(block),
                  "timeout": _check_timeout(block, timeout)}
        self._call(header, self._dump_item(item), _decode_empty)

    def get(self, block=True, timeout=None):
        """Remove and return the oldest item; ``queue.Empty`` as ``queue.Queue``."""
        if self._local:
            if timeout is not None:
                timeout = _check_timeout(block, timeout)
            try:
                data = _queue_local.queue_get(self._id, block, timeout)
            except _queue_local.QueueError as error:
                _queue_local.raise_for(error)
            try:
                return _loads(data)
            except Exception:
                return self._load_item(data)  # raises the clear error
        header = {"type": "queue_get", "queue": self._id, "block": bool(block),
                  "timeout": _check_timeout(block, timeout)}
        return self._load_item(self._call(header, b"", _decode_item))

    async def put_async(self, item, timeout=None):
        """``put`` for asyncio: waits for room without blocking the loop.

        Cancelling the awaiting task withdraws the put; if the daemon had
        stored the item already, the ``CancelledError`` carries a note
        saying so.
        """
        header = {"type": "queue_put", "queue": self._id, "block": True,
                  "timeout": _check_timeout(True, timeout)}
        await self._call_async(header, self._dump_item(item),
                               _decode_empty)

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
                                                      _decode_item))

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

    def _make(self, header, decode=None):
        try:
            return self._call(header, b"", decode or _decode_created)
        except BaseException:
            self.close()
            raise

    def _call(self, header, payload, decode):
        """Send one request and wait for its reply on the client's reader
        thread, mapping ``queue_empty`` / ``queue_full`` to the standard
        exceptions. An interrupted wait is withdrawn first (``_withdraw``)."""
        # The Future exists before the request does, so an interruption
        # that lands while the request is being sent is withdrawn too.
        future = concurrent.futures.Future()
        try:
            self._client._request(header, decode, payload, future=future)
            return future.result()
        except RemoteError as exc:
            _raise_standard(exc)
        except BaseException as exc:
            if header["type"] in _WAITS and not _answered(future, exc):
                _add_note(exc, self._withdraw(future, header).result())
            raise

    async def _call_async(self, header, payload, decode):
        """``_call`` for asyncio: the reply is awaited, not waited for."""
        import asyncio
        future = concurrent.futures.Future()
        try:
            self._client._request(header, decode, payload, future=future)
            return await asyncio.wrap_future(future)
        except RemoteError as exc:
            _raise_standard(exc)
        except BaseException as exc:
            if header["type"] in _WAITS and not _answered(future, exc):
                settled = self._withdraw(future, header)
                _add_note(exc, await asyncio.wrap_future(settled))
            raise

    def _dump_item(self, item):
        """The payload of a put: the item's pickle, self-contained.

        Functions and classes shipped by value travel inside it, their
        definition blobs next to the pickle that names them: the pickle
        is ``_extrainterpreters_loader.loads(pickle, {digest: blob})``,
        which a job's interpreter and a client (``_load_item``) both run.
        Their bytecode must suit the daemon's Python (a job may get it).
        """
        if self._client is _queue_local.TRANSPORT:
            try:  # the common case, without loading the by-value pickler
                return pickle.dumps(item, protocol=5)
            except Exception:
                pass
        from . import _byvalue
        from ._byvalue_version import bytecode_check
        hello = getattr(self._client, "_hello", None)
        try:
            dumped = _byvalue.dump(item, bytecode_check(hello) if hello else None)
        except _byvalue.VersionMismatch:
            raise
        except Exception as exc:
            raise pickle.PicklingError(
                f"cannot put a {type(item).__qualname__} into {self!r}: it "
                f"does not pickle: {exc}") from exc
        if not dumped.definitions:
            return dumped.payload
        blobs = {d.digest: d.blob for d in dumped.definitions}
        return pickle.dumps(_SelfContained(dumped.payload, blobs), protocol=5)

    def _load_item(self, data):
        """Unpickle an item got from the queue. One holding by-value
        definitions needs the loader module, which a daemon interpreter has
        and a client imports here under the same name."""
        local = self._client is _queue_local.TRANSPORT  # loader there already
        if not local and LOADER_MODULE not in sys.modules:
            from . import _function_loader
            sys.modules.setdefault(LOADER_MODULE, _function_loader)
        previous = None if local else _queue_local.unpickling_for(self._client)
        try:
            return pickle.loads(data)
        except Exception as exc:
            raise pickle.UnpicklingError(
                f"an item got from {self!r} does not unpickle here ({len(data)} "
                f"bytes, taken from the queue): {exc!r}") from exc
        finally:
            if not local:
                _queue_local.unpickling_for(previous)

    def _withdraw(self, future, header):
        """Withdraw the request of ``future``, whose caller stopped waiting.

        Returns a Future that completes once nothing of the request is left
        in flight, with a note for the caller or None. The daemon answers
        the request itself first (``cancelled``) if it was still waiting;
        otherwise its answer stands: an item a get received is given back
        to the front of the queue, and a stored put is noted. This runs in
        the Future's done callback, on the reader thread, so it happens
        even if the caller is interrupted again while waiting for it.
        """
        settled = concurrent.futures.Future()
        request_id = getattr(future, "request_id", None)
        if request_id is None:  # interrupted before it had an id: never sent
            _settle(settled, None)
            return settled
        request = f"{header['type']} {request_id} on {self!r}"

        def on_answer(answer):
            if answer.exception() is not None:
                _settle(settled, None)  # withdrawn, or failed anyway
            elif header["type"] != "queue_get":
                _settle(settled, f"{request}: the item was stored before "
                                 f"the wait could be withdrawn")
            else:
                self._give_back(answer.result(), request, settled)

        def on_cancel_reply(reply):
            # "unknown" while the request is still unanswered: the daemon
            # never got it (the interruption came before it was sent), as
            # an answer would have come first. Nothing will answer it now.
            if (reply.exception() is None and reply.result() == "unknown"
                    and self._client._abandon(request_id)):
                _settle(settled, None)

        future.add_done_callback(on_answer)
        if not future.done():
            try:
                self._client._request(
                    {"type": "queue_cancel", "request": request_id},
                    _decode_cancel).add_done_callback(on_cancel_reply)
            except ExtraInterpretersError:
                # The connection is gone, and its waits with it: its pending
                # requests are failed (on_answer runs), and one it refused
                # before sending is never answered.
                self._client._abandon(request_id)
                _settle(settled, None)
        return settled

    def _give_back(self, item, request, settled):
        """Return an item nobody received to the front of the queue."""
        def on_returned(returned):
            error = returned.exception()
            _settle(settled, None if error is None else (
                f"{request}: the item it received after the wait was "
                f"withdrawn could not be returned to the queue and is "
                f"lost: {error}"))
        try:
            self._client._request(
                {"type": "queue_put", "queue": self._id, "front": True},
                _decode_empty, item).add_done_callback(on_returned)
        except ExtraInterpretersError as error:
            _settle(settled, f"{request}: the item it received after the "
                             f"wait was withdrawn is lost: {error}")


class _SelfContained:
    """Pickles as the loader's ``loads(payload, blobs)``: an item that needs
    definitions, with them."""

    __slots__ = ("payload", "blobs")

    def __init__(self, payload, blobs):
        self.payload, self.blobs = payload, blobs

    def __reduce__(self):
        return LoaderFunction("loads"), (self.payload, self.blobs)


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
    self._id, self._name, self._maxsize = queue_id, name, maxsize
    return self


# The requests that may wait in the daemon, and so may need withdrawing.
_WAITS = ("queue_get", "queue_put")


def _raise_standard(error):
    """Raise the ``queue`` module's exception for a daemon error, if it has
    one; else the error itself. Called in its ``except`` clause."""
    if error.code == "queue_empty":
        raise _queue.Empty(error.message) from None
    if error.code == "queue_full":
        raise _queue.Full(error.message) from None
    raise error


def _settle(settled, note):
    """Complete ``settled`` unless another path did first."""
    try:
        settled.set_result(note)
    except concurrent.futures.InvalidStateError:
        pass


def _answered(future, exc):
    """True if ``exc`` is the request's own outcome, not an interruption."""
    return (future.done() and not future.cancelled()
            and future.exception() is exc)


def _add_note(exc, note):
    if note:
        exc.add_note(note)


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


def _decode_cancel(frame):
    _expect(frame, "queue_cancel")
    return frame.header.get("state")


def _decode_header(frame):
    _expect(frame, "queue_info")
    return {k: v for k, v in frame.header.items() if k not in ("type", "id")}
