"""One asyncio connection of an ``AsyncClient``: its socket, reader task,
pending table, definitions sent and window of jobs in flight.

Only the event loop touches it: no locks. When it ends for any reason,
every Future still waiting fails (jobs with ``JobLost``, unless the
client closed it), and ``AsyncClient`` makes a new one on its next call.
"""

import asyncio
import os
import socket

from . import _codec, _session
from ._errors import DaemonBusy, DaemonConnectionError, JobLost, ProtocolError
from ._replies import Pending, expect_type

__all__ = ["AioConnection"]


class AioConnection:
    """Made by ``open``; ``first_id`` continues a client's request ids
    from its last connection, so a stale id never names another request."""

    def __init__(self, socket_path, first_id=1):
        self.socket_path = socket_path
        # A Queue in a reply uses the shared Client of this socket.
        self._pending = Pending(_settle, _stopped, unpickling=socket_path)
        self._jobs = {}  # request id of each job in flight -> its Future
        self._defined = set()  # digests of definitions sent (define)
        self.next_id = first_id
        self.limits = _codec.Limits()
        self._decoder = _codec.FrameDecoder(self.limits)
        self._writer = None
        self._probe = None  # a duplicate of the socket, for peer_gone
        self._reader_task = None
        self._closed_error = None
        self.hello = None
        self._window = 10000  # jobs in flight at most: hello's limit
        self._in_flight = 0
        self._room_waiters = []

    @classmethod
    async def open(cls, socket_path, connect_timeout, first_id=1):
        """Connect and exchange ``hello``; ``DaemonConnectionError`` if no
        daemon answers."""
        self = cls(socket_path, first_id)
        try:
            reader, self._writer = await asyncio.open_unix_connection(socket_path)
        except OSError as exc:
            raise DaemonConnectionError(socket_path,
                                        _session.connect_reason(exc)) from None
        self._reader_task = asyncio.get_running_loop().create_task(
            self._read_loop(reader))
        # A duplicate of the socket's descriptor, to peek at (peer_gone):
        # asyncio's own socket object does not receive.
        self._probe = _session.PeerWatch(socket.socket(fileno=os.dup(
            self._writer.get_extra_info("socket").fileno())))
        try:
            try:
                reply = await asyncio.wait_for(
                    self.send(_session.hello_request(), lambda frame: frame)[1],
                    connect_timeout)
            except asyncio.TimeoutError:
                raise DaemonConnectionError(
                    socket_path, f"no hello reply within {connect_timeout} "
                                 f"seconds") from None
            self.limits = _session.check_hello(reply.header)
            self._decoder.limits = self.limits
            self.hello = reply.header
            self._window = _session.window(reply.header)
        except BaseException:
            self.close(_session.closed_error(socket_path, "hello failed"),
                       jobs_lost=False)
            await self.wait_closed()
            raise
        return self

    @property
    def closed(self):
        return self._closed_error is not None

    def peer_gone(self):
        """The daemon closed its end and the reader task did not see it
        yet (it runs only when the loop does): if so, end it now."""
        if self.closed:
            return True
        if self._probe is None or not self._probe.gone():
            return False
        self.close(_session.closed_error(self.socket_path,
                                         "daemon closed the connection"))
        return True

    def failure(self):
        """Why the connection ended (an exception), or None while open."""
        return None if self._closed_error is None else self._closed_error()

    def send(self, header, decode, payload=b""):
        """Write one request; return its id and the Future of its reply."""
        if self._closed_error is not None:
            raise self._closed_error()
        request_id = self.next_id
        self.next_id += 1
        head, body = _codec.encode_frame_parts(dict(header, id=request_id),
                                               payload, self.limits)
        future = asyncio.get_running_loop().create_future()
        self._pending.add(request_id, future, decode)
        self._writer.write(head)
        if body:
            self._writer.write(body)
        return request_id, future

    def send_job(self, header, decode, payload):
        """``send`` for a job, which holds a place of the window until its
        Future is done (take one first: ``has_room``, ``wait_for_room``)."""
        job_id, future = self.send(header, decode, payload)
        self._jobs[job_id] = future
        future.add_done_callback(lambda f: self._on_job_done(job_id, f))
        return future

    def has_room(self):
        """Takes a place of the window if one is free now."""
        if self._in_flight >= self._window:
            return False
        self._in_flight += 1
        return True

    def give_room(self):
        """Gives back a place taken for a job that was not sent."""
        self._in_flight -= 1
        self._wake_one()

    async def wait_for_room(self, wait, timeout):
        """Takes a place of the window, waiting up to ``timeout`` seconds
        for one (None: as long as it takes); else ``DaemonBusy``."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self.has_room():
            left = None if deadline is None else deadline - loop.time()
            if not wait or (left is not None and left <= 0):
                raise DaemonBusy(
                    f"job not sent: {self._window} jobs of this connection "
                    f"are in flight (its window, max_jobs_per_connection)",
                    code="busy")
            waiter = loop.create_future()
            self._room_waiters.append(waiter)
            try:
                await asyncio.wait_for(asyncio.shield(waiter), left)
            except asyncio.TimeoutError:
                pass
            finally:
                if waiter in self._room_waiters:
                    self._room_waiters.remove(waiter)
            if self._closed_error is not None:
                raise self._closed_error()

    def _wake_one(self):
        for waiter in self._room_waiters:
            if not waiter.done():
                waiter.set_result(None)
                return

    def lacks(self, definitions):
        """The definitions not sent on this connection yet, now marked as
        sent: the caller sends them (``define``). A refused one is sent
        again for the next job; the job itself fails with
        ``unknown_definition``."""
        missing = [d for d in definitions if d.digest not in self._defined]
        self._defined.update(d.digest for d in missing)
        return missing

    def defined(self, digest, future):
        """The reply to the ``define`` of ``digest`` is ``future``."""
        future.add_done_callback(
            lambda f: self._defined.discard(digest)
            if f.cancelled() or f.exception() is not None else None)

    def _on_job_done(self, job_id, future):
        """A job's Future is done: its place in the window frees; if it
        was cancelled, the job is stopped too."""
        self._jobs.pop(job_id, None)
        self.give_room()
        if not future.cancelled():
            return
        if not self._pending.abandon(job_id, future):
            return  # Its reply came first, or the connection is gone.
        if self._closed_error is None:
            cancel = self.send({"type": "cancel", "job": job_id},
                               expect_type("cancel"))[1]
            cancel.add_done_callback(_consume)

    async def drain(self):
        await self._writer.drain()

    async def _read_loop(self, reader):
        make_error = None
        try:
            while True:
                data = await reader.read(_session.RECV_SIZE)
                if not data:
                    make_error = _session.eof_error(self.socket_path,
                                                    self._decoder)
                    break
                for frame in self._decoder.feed(data):
                    self._pending.dispatch(frame)
        except ProtocolError as exc:
            make_error = _session.same_protocol_error(exc)
        except OSError as exc:
            make_error = _session.closed_error(self.socket_path,
                                               f"connection lost: {exc}")
        finally:
            self.close(make_error or _session.closed_error(
                self.socket_path, "reader stopped"))

    def close(self, make_error, jobs_lost=True):
        """End the connection; every waiting Future fails with an error
        from ``make_error()``, jobs with ``JobLost`` unless ``jobs_lost`` is
        False."""
        if self._closed_error is None:
            self._closed_error = make_error
        jobs = dict(self._jobs)
        futures = self._pending.drain()
        if self._writer is not None:
            self._writer.close()
        if self._probe is not None:
            self._probe.close()
        task = self._reader_task
        if task is not None and task is not _current_task():
            task.cancel()
        for waiter in self._room_waiters:
            if not waiter.done():
                waiter.set_result(None)
        lost = {id(f): job_id for job_id, f in jobs.items()} if jobs_lost else {}
        for future in futures:
            if future.done():
                continue
            failure = self._closed_error()
            if id(future) in lost and isinstance(failure, DaemonConnectionError):
                reason = getattr(failure, "reason", None) or str(failure)
                failure = JobLost(self.socket_path, reason, lost[id(future)])
            future.set_exception(failure)

    async def wait_closed(self):
        """Wait until the connection and the reader task are gone."""
        if self._reader_task is not None:
            await asyncio.gather(self._reader_task, return_exceptions=True)
        if self._writer is not None:
            try:
                await self._writer.wait_closed()
            except OSError:
                pass  # Closed with an error: closed all the same.


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
