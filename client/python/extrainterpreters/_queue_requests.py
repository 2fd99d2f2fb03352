"""A queue request's round trip, and the withdrawal of one the caller
stopped waiting for.

A blocked ``get`` or ``put`` is a request the daemon answers the moment an
item or a slot arrives, or with ``queue_empty`` / ``queue_full`` when its
timeout passes; nothing polls. The wait holds none of the client's locks:
other threads keep using the same client meanwhile; the asyncio variant
awaits the same reply (the client's reader thread completes it).

A wait interrupted here (Ctrl-C, any exception raised into the waiting
thread, a cancelled asyncio task) is withdrawn (``queue_cancel``) before the
exception goes on::

    interrupted ---queue_cancel---> daemon: still waiting?  yes: "cancelled"
                                                            no: its answer
    get answered after all: the item goes back to the front of the queue
                            (queue_put with "front": true), so none is lost
    put answered after all: stored; a note on the exception says so

``client`` is a ``Client``, or ``_queue_local.TRANSPORT`` inside a job.
"""

import concurrent.futures
import queue as _queue

from ._errors import ExtraInterpretersError, ProtocolError, RemoteError

__all__ = [
    "call", "call_async", "decode_created", "decode_empty", "decode_header",
    "decode_item", "decode_opened",
]

# The requests that may wait in the daemon, and so may need withdrawing.
_WAITS = ("queue_get", "queue_put")


def call(client, header, payload, decode, queue):
    """Send one request and wait for its reply on the client's reader
    thread, mapping ``queue_empty`` / ``queue_full`` to the standard
    exceptions. An interrupted wait is withdrawn first (``_withdraw``);
    ``queue`` names the queue in notes."""
    # The Future exists before the request does, so an interruption
    # that lands while the request is being sent is withdrawn too.
    future = concurrent.futures.Future()
    try:
        client._request(header, decode, payload, future=future)
        return future.result()
    except RemoteError as exc:
        _raise_standard(exc)
    except BaseException as exc:
        if header["type"] in _WAITS and not _answered(future, exc):
            _add_note(exc, _withdraw(client, future, header, queue).result())
        raise


async def call_async(client, header, payload, decode, queue):
    """``call`` for asyncio: the reply is awaited, not waited for."""
    import asyncio
    future = concurrent.futures.Future()
    try:
        client._request(header, decode, payload, future=future)
        return await asyncio.wrap_future(future)
    except RemoteError as exc:
        _raise_standard(exc)
    except BaseException as exc:
        if header["type"] in _WAITS and not _answered(future, exc):
            settled = _withdraw(client, future, header, queue)
            _add_note(exc, await asyncio.wrap_future(settled))
        raise


def _withdraw(client, future, header, queue):
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
    request = f"{header['type']} {request_id} on {queue!r}"

    def on_answer(answer):
        if answer.exception() is not None:
            _settle(settled, None)  # withdrawn, or failed anyway
        elif header["type"] != "queue_get":
            _settle(settled, f"{request}: the item was stored before "
                             f"the wait could be withdrawn")
        else:
            _give_back(client, header["queue"], answer.result(), request,
                       settled)

    def on_cancel_reply(reply):
        # "unknown" while the request is still unanswered: the daemon
        # never got it (the interruption came before it was sent), as
        # an answer would have come first. Nothing will answer it now.
        if (reply.exception() is None and reply.result() == "unknown"
                and client._abandon(request_id)):
            _settle(settled, None)

    future.add_done_callback(on_answer)
    if not future.done():
        try:
            client._request(
                {"type": "queue_cancel", "request": request_id},
                _decode_cancel).add_done_callback(on_cancel_reply)
        except ExtraInterpretersError:
            # The connection is gone, and its waits with it: its pending
            # requests are failed (on_answer runs), and one it refused
            # before sending is never answered.
            client._abandon(request_id)
            _settle(settled, None)
    return settled


def _give_back(client, queue_id, item, request, settled):
    """Return an item nobody received to the front of the queue."""
    def on_returned(returned):
        error = returned.exception()
        _settle(settled, None if error is None else (
            f"{request}: the item it received after the wait was "
            f"withdrawn could not be returned to the queue and is "
            f"lost: {error}"))
    try:
        client._request(
            {"type": "queue_put", "queue": queue_id, "front": True},
            decode_empty, item).add_done_callback(on_returned)
    except ExtraInterpretersError as error:
        _settle(settled, f"{request}: the item it received after the "
                         f"wait was withdrawn is lost: {error}")


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


def _expect(frame, expected):
    if frame.header.get("type") != expected:
        raise ProtocolError(f"expected a {expected!r} reply, got "
                            f"{frame.header!r:.300}")


def decode_created(frame):
    _expect(frame, "queue_create")
    queue_id = frame.header.get("queue")
    if not isinstance(queue_id, int):
        raise ProtocolError(f"queue_create reply lacks an integer 'queue': "
                            f"{frame.header!r:.300}")
    return queue_id


def decode_opened(frame):
    _expect(frame, "queue_open")
    queue_id, maxsize = frame.header.get("queue"), frame.header.get("maxsize")
    if not isinstance(queue_id, int) or not isinstance(maxsize, int):
        raise ProtocolError(f"queue_open reply lacks integer 'queue' and "
                            f"'maxsize': {frame.header!r:.300}")
    return queue_id, maxsize


def decode_empty(frame):
    if frame.header.get("type") not in ("queue_put", "queue_delete"):
        raise ProtocolError(f"unexpected reply {frame.header!r:.300}")


def decode_item(frame):
    _expect(frame, "queue_get")
    if not frame.payload:
        raise ProtocolError("queue_get reply has no payload (the pickled item)")
    return bytes(frame.payload)  # unpickled by the caller, not the reader


def _decode_cancel(frame):
    _expect(frame, "queue_cancel")
    return frame.header.get("state")


def decode_header(frame):
    _expect(frame, "queue_info")
    return {k: v for k, v in frame.header.items() if k not in ("type", "id")}
