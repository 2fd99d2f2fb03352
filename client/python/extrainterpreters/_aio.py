"""``AsyncClient``: the client for asyncio, on one connection and one task.

Data flow::

    tasks                          event loop                      daemon
    -----                          ----------                      ------
    submit(fn, *args)
      pickle, new asyncio.Future
      writer.write(frame)  ------------------------------------->  run
    await future                   reader task: read, decode  <--  output
                                     output: write to sys.stdout
                                     reply: pop the id's Future <--  result
    <------------------------------- set its result
    task.cancel()
      future cancelled
      done callback: cancel  ----------------------------------->  cancel

Nothing here blocks the loop and no thread waits for a job: writes go to
the transport's buffer (``run`` also awaits ``drain()``), and the one
reader task completes every Future, through the same pending table and
reply decoding as ``Client`` (``_replies``). Cancelling a job's Future, or a task
awaiting it, sends ``cancel`` for the job: a queued job never runs, and a
running one has an exception raised inside it by the daemon.
"""

import asyncio

from . import _codec, _session
from ._byvalue_version import bytecode_check
from ._errors import DaemonConnectionError, ProtocolError
from ._paths import resolve_socket_path
from ._replies import (Pending, decode_ping, decode_result, decode_status,
                       expect_type)
from ._run_request import add_options, check_lane, dump_job

__all__ = ["AsyncClient"]


class AsyncClient:
    """An asyncio connection to the daemon.

        async with AsyncClient() as client:
            print(await client.run(pow, 2, 10))

    ``run``, ``submit`` and ``status`` mirror ``Client``'s (``lane`` and
    ``rerun`` too); ``submit``
    returns an ``asyncio.Future``. ``timeout`` is the job's deadline
    (``JobTimeout`` past it), not an argument of ``fn``; ``submit_with``
    keeps the two apart. Use it from the loop it connected on.
    """

    def __init__(self, socket_path=None, *,
                 connect_timeout=_session.DEFAULT_CONNECT_TIMEOUT,
                 output=True, lane="auto", rerun=True):
        self._socket_path = resolve_socket_path(socket_path)
        self._connect_timeout = connect_timeout
        self._output = bool(output)
        self._lane = check_lane(lane)
        self._rerun = bool(rerun)
        # Only the loop touches it: no lock. A Queue in a reply uses the
        # shared Client of this socket (_queue._reopen).
        self._pending = Pending(_settle, _stopped,
                                unpickling=self._socket_path)
        self._defined = set()  # Digests of definitions sent (_define).
        self._next_id = 1
        self._limits = _codec.Limits()
        self._decoder = _codec.FrameDecoder(self._limits)
        self._writer = None
        self._reader_task = None
        self._closed_error = None
        self._hello = None

    @property
    def socket_path(self):
        """The path of the daemon's socket."""
        return self._socket_path

    @property
    def hello(self):
        """The daemon's ``hello`` reply, as ``Client.hello``."""
        return {key: value for key, value in (self._hello or {}).items()
                if key not in ("type", "id")}

    @property
    def closed(self):
        """True once closed, or once the connection ended."""
        return self._closed_error is not None

    async def connect(self):
        """Connect and exchange ``hello``; return self."""
        if self._writer is not None:
            raise RuntimeError("AsyncClient is already connected")
        try:
            reader, self._writer = await asyncio.open_unix_connection(
                self._socket_path)
        except OSError as exc:
            raise DaemonConnectionError(self._socket_path,
                                        _session.connect_reason(exc)) from None
        self._reader_task = asyncio.get_running_loop().create_task(
            self._read_loop(reader))
        header = _session.hello_request()
        try:
            try:
                reply = await asyncio.wait_for(
                    self._request(header, lambda frame: frame),
                    self._connect_timeout)
            except asyncio.TimeoutError:
                raise DaemonConnectionError(
                    self._socket_path,
                    f"no hello reply within {self._connect_timeout} "
                    f"seconds") from None
            self._limits = _session.check_hello(reply.header)
            self._decoder.limits = self._limits
            self._hello = reply.header
        except BaseException:
            self.close()
            await self.wait_closed()
            raise
        return self

    def submit(self, fn, /, *args, timeout=None, lane=None, **kwargs):
        """Send ``fn(*args, **kwargs)``; return an ``asyncio.Future``.

        Cancelling the Future cancels the job, queued or running.
        """
        return self.submit_with(fn, args, kwargs, timeout=timeout, lane=lane)

    def submit_with(self, fn, /, args=(), kwargs=None, *, timeout=None,
                    output=None, lane=None, rerun=None):
        """``submit`` with the job's arguments and the options kept apart
        (as ``Client.submit_with``)."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        job = dump_job(fn, tuple(args), dict(kwargs or {}),
                       bytecode_check(self._hello))
        header = {"type": "run"}
        add_options(header, timeout,
                    self._output if output is None else output,
                    check_lane(self._lane if lane is None else lane),
                    self._rerun if rerun is None else rerun)
        if job.definitions:
            self._define(job.definitions)
            header["uses"] = [d.digest for d in job.definitions]
        job_id, future = self._send(header, decode_result, job.payload)
        future.add_done_callback(lambda f: self._on_job_done(job_id, f))
        return future

    async def run(self, fn, /, *args, timeout=None, lane=None, **kwargs):
        """Run ``fn(*args, **kwargs)`` in a pool interpreter; its value.

        Cancelling the awaiting task cancels the job.
        """
        future = self.submit(fn, *args, timeout=timeout, lane=lane, **kwargs)
        try:
            await self._writer.drain()
            return await future
        finally:
            future.cancel()  # A no-op once done; else stop the job.

    async def status(self):
        """The daemon's status document (see PROTOCOL.md), as a dict."""
        return await self._request({"type": "status"}, decode_status)

    async def ping(self):
        """Round-trip a ``ping``."""
        await self._request({"type": "ping"}, decode_ping)

    def close(self):
        """Close the connection; waiting Futures fail. Idempotent."""
        self._fail_all(lambda: DaemonConnectionError(
            self._socket_path, "client closed", connected=True))

    async def wait_closed(self):
        """Wait until the connection and the reader task are gone."""
        if self._reader_task is not None:
            await asyncio.gather(self._reader_task, return_exceptions=True)
        if self._writer is not None:
            try:
                await self._writer.wait_closed()
            except OSError:
                pass  # Closed with an error: closed all the same.

    async def __aenter__(self):
        return await self.connect()

    async def __aexit__(self, *exc_info):
        self.close()
        await self.wait_closed()

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__} {self._socket_path!r} {state}>"

    # -- internals ------------------------------------------------------------

    def _request(self, header, decode, payload=b""):
        """Write one request; return the Future of its reply."""
        return self._send(header, decode, payload)[1]

    def _send(self, header, decode, payload=b""):
        """Write one request; return its id and the Future of its reply."""
        if self._writer is None:
            raise RuntimeError("AsyncClient is not connected; await "
                               "connect() first")
        if self._closed_error is not None:
            raise self._closed_error()
        request_id = self._next_id
        self._next_id += 1
        head, body = _codec.encode_frame_parts(dict(header, id=request_id),
                                               payload, self._limits)
        future = asyncio.get_running_loop().create_future()
        self._pending.add(request_id, future, decode)
        self._writer.write(head)
        if body:
            self._writer.write(body)
        return request_id, future

    def _define(self, definitions):
        """Send the functions shipped by value this connection lacks.

        The daemon reads requests in order, so the job need not wait for
        the replies. A refused definition is sent again for the next job;
        the job itself fails with ``unknown_definition``.
        """
        for definition in definitions:
            digest = definition.digest
            if digest not in self._defined:
                self._defined.add(digest)
                define = self._request({"type": "define", "digest": digest},
                                       expect_type("define"),
                                       definition.blob)
                define.add_done_callback(
                    lambda f, digest=digest: self._forget_definition(digest, f))

    def _forget_definition(self, digest, future):
        if future.cancelled() or future.exception() is not None:
            self._defined.discard(digest)

    def _on_job_done(self, job_id, future):
        """A job's Future is done; if by cancellation, stop the job too."""
        if not future.cancelled():
            return
        if not self._pending.abandon(job_id, future):
            return  # Its reply came first, or the connection is gone.
        if self._closed_error is None:
            cancel = self._request({"type": "cancel", "job": job_id},
                                   expect_type("cancel"))
            cancel.add_done_callback(_consume)

    async def _read_loop(self, reader):
        make_error = None
        try:
            while True:
                data = await reader.read(_session.RECV_SIZE)
                if not data:
                    make_error = _session.eof_error(self._socket_path,
                                                    self._decoder)
                    break
                for frame in self._decoder.feed(data):
                    self._pending.dispatch(frame)
        except ProtocolError as exc:
            make_error = _session.same_protocol_error(exc)
        except OSError as exc:
            make_error = self._lost(f"connection lost: {exc}")
        finally:
            self._fail_all(make_error or self._lost("reader stopped"))

    def _lost(self, reason):
        return _session.closed_error(self._socket_path, reason)

    def _fail_all(self, make_error):
        """Mark the connection ended, close it, fail every waiting Future."""
        if self._closed_error is None:
            self._closed_error = make_error
        make_error = self._closed_error
        futures = self._pending.drain()
        if self._writer is not None:
            self._writer.close()
        task = self._reader_task
        if task is not None and task is not _current_task():
            task.cancel()
        for future in futures:
            if not future.done():
                future.set_exception(make_error())


def _settle(future, *, value=None, exception=None):
    """Complete an asyncio Future unless it is done (cancelled) already."""
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(value)


def _stopped(future, error):
    """The daemon stopped the job for someone else: the Future is cancelled."""
    if not future.done():
        future.cancel()


def _current_task():
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def _consume(future):
    """Retrieve a fire-and-forget Future's outcome so asyncio does not log
    'exception was never retrieved'."""
    if not future.cancelled():
        future.exception()
