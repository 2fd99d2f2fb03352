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

The client connects on first use (or ``connect()``, or ``async with``); the
connection itself is ``_aio_connection``. If the daemon goes away, jobs in
flight fail with ``JobLost`` and the next call connects again, trying for
up to ``reconnect_timeout`` seconds, as ``Client`` does (``_keeper``).
"""

import asyncio

from . import _session
from ._aio_connection import AioConnection
from ._byvalue_version import bytecode_check
from ._errors import DaemonConnectionError
from ._keeper import DEFAULT_RECONNECT_TIMEOUT, Backoff
from ._paths import resolve_socket_path
from ._replies import decode_ping, decode_result, decode_status, expect_type
from ._run_request import add_options, check_lane, dump_job

__all__ = ["AsyncClient"]


class AsyncClient:
    """An asyncio connection to the daemon.

        async with AsyncClient() as client:
            print(await client.run(pow, 2, 10))

    ``run``, ``submit`` and ``status`` mirror ``Client``'s (``lane``,
    ``rerun``, ``submit_timeout`` and ``wait`` too); ``submit`` returns an
    ``asyncio.Future``. ``timeout`` is the job's deadline (``JobTimeout``
    past it), not an argument of ``fn``; ``submit_with`` keeps the two
    apart. It connects on first use; use it from that loop.
    """

    def __init__(self, socket_path=None, *,
                 connect_timeout=_session.DEFAULT_CONNECT_TIMEOUT,
                 output=True, lane="auto", rerun=True, submit_timeout=None,
                 reconnect_timeout=DEFAULT_RECONNECT_TIMEOUT):
        self._socket_path = resolve_socket_path(socket_path)
        self._connect_timeout = connect_timeout
        self._reconnect_timeout = reconnect_timeout
        self._output = bool(output)
        self._lane = check_lane(lane)
        self._rerun = bool(rerun)
        self._submit_timeout = submit_timeout
        self._conn = None  # the current AioConnection, once connected
        self._connecting = None  # asyncio.Lock, made on the loop
        self._closed = False  # close() was called

    @property
    def socket_path(self):
        """The path of the daemon's socket."""
        return self._socket_path

    @property
    def hello(self):
        """The daemon's ``hello`` reply, as ``Client.hello`` (empty before
        the first connection)."""
        hello = self._conn.hello if self._conn is not None else None
        return {key: value for key, value in (hello or {}).items()
                if key not in ("type", "id")}

    @property
    def closed(self):
        """True once closed, or while its connection has ended (the next
        call connects again)."""
        return self._closed or (self._conn is not None and self._conn.closed)

    async def connect(self):
        """Connect and exchange ``hello`` now; return self."""
        if self._conn is not None and not self._conn.closed:
            raise RuntimeError("AsyncClient is already connected")
        await self._connection()
        return self

    def submit(self, fn, /, *args, timeout=None, lane=None, **kwargs):
        """Send ``fn(*args, **kwargs)``; return an ``asyncio.Future``.

        Cancelling the Future cancels the job, queued or running.
        """
        return self.submit_with(fn, args, kwargs, timeout=timeout, lane=lane)

    def submit_with(self, fn, /, args=(), kwargs=None, *, timeout=None,
                    output=None, lane=None, rerun=None, wait=True):
        """``submit`` with the job's arguments and the options kept apart
        (as ``Client.submit_with``)."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        options = {"timeout": timeout,
                   "output": self._output if output is None else output,
                   "lane": check_lane(self._lane if lane is None else lane),
                   "rerun": self._rerun if rerun is None else rerun,
                   "wait": wait}
        args, kwargs = tuple(args), dict(kwargs or {})
        conn = self._conn
        if conn is not None and not conn.peer_gone() and conn.has_room():
            return self._send_job(conn, fn, args, kwargs, options)
        # Not connected yet, or the window is full: a task sends it later.
        return asyncio.ensure_future(self._submit_later(fn, args, kwargs, options))

    async def run(self, fn, /, *args, timeout=None, lane=None, **kwargs):
        """Run ``fn(*args, **kwargs)`` in a pool worker; its value.

        Cancelling the awaiting task cancels the job.
        """
        future = self.submit(fn, *args, timeout=timeout, lane=lane, **kwargs)
        try:
            conn = self._conn
            if conn is not None and not conn.closed:
                await conn.drain()
            return await future
        finally:
            future.cancel()  # A no-op once done; else stop the job.

    async def status(self):
        """The daemon's status document (see PROTOCOL.md), as a dict."""
        await self._connection()
        return await self._request({"type": "status"}, decode_status)

    async def ping(self):
        """Round-trip a ``ping``."""
        await self._connection()
        await self._request({"type": "ping"}, decode_ping)

    def close(self):
        """Close the connection, for good; waiting Futures fail. Idempotent."""
        self._closed = True
        if self._conn is not None:
            self._conn.close(_session.closed_error(self._socket_path,
                                                   "client closed"),
                             jobs_lost=False)

    async def wait_closed(self):
        """Wait until the connection and the reader task are gone."""
        if self._conn is not None:
            await self._conn.wait_closed()

    async def __aenter__(self):
        return await self.connect()

    async def __aexit__(self, *exc_info):
        self.close()
        await self.wait_closed()

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__} {self._socket_path!r} {state}>"

    # -- internals ------------------------------------------------------------

    async def _submit_later(self, fn, args, kwargs, options):
        conn = await self._connection()
        await conn.wait_for_room(options["wait"], self._submit_timeout)
        return await self._send_job(conn, fn, args, kwargs, options)

    def _send_job(self, conn, fn, args, kwargs, options):
        """Send a job on ``conn``, which has a place of its window for it."""
        try:
            job = dump_job(fn, args, kwargs, bytecode_check(conn.hello))
            header = {"type": "run"}
            add_options(header, **options)
            if job.definitions:
                # The daemon reads requests in order: the job need not
                # wait for the define replies.
                for definition in conn.lacks(job.definitions):
                    conn.defined(definition.digest, self._request(
                        {"type": "define", "digest": definition.digest},
                        expect_type("define"), definition.blob))
                header["uses"] = [d.digest for d in job.definitions]
        except BaseException:
            conn.give_room()
            raise
        return conn.send_job(header, decode_result, job.payload)

    def _request(self, header, decode, payload=b""):
        """Write one request on the current connection (which the caller
        made sure of); return the Future of its reply."""
        return self._conn.send(header, decode, payload)[1]

    async def _connection(self):
        """The current connection: made on first use, and again (retrying
        up to reconnect_timeout) once the daemon went away."""
        if self._closed:
            raise DaemonConnectionError(self._socket_path, "client closed",
                                        connected=True)
        if self._conn is not None and not self._conn.peer_gone():
            return self._conn
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._conn is None:
                self._conn = await AioConnection.open(
                    self._socket_path, self._connect_timeout)
            elif self._conn.closed:
                failure = self._conn.failure()
                if not isinstance(failure, DaemonConnectionError):
                    raise failure  # a broken protocol: no second try
                self._conn = await self._reopen(self._conn.next_id)
            return self._conn

    async def _reopen(self, first_id):
        backoff = Backoff(self._socket_path, self._reconnect_timeout,
                          asyncio.get_running_loop().time)
        while True:
            try:
                return await AioConnection.open(
                    self._socket_path, self._connect_timeout, first_id)
            except DaemonConnectionError as exc:
                pause = backoff.after(exc)
            await asyncio.sleep(pause)
