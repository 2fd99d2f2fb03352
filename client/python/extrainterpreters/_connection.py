"""``Connection``: the socket of a ``Client``, shared by threads.

Requests are pipelined: replies come back in any order and are matched by
id (``_replies.Pending``). One thread at a time reads (``_receiver``: a
caller of ``wait()`` waiting for its own reply, or the reader thread,
started with the first request nobody waits for that way), and writers
take the send lock for one whole frame, so frames never interleave. A
request made while others are in flight is queued instead of sent
(``_outbox``): a writer thread sends everything queued so far in one
system call. When the connection ends for any reason, every Future still
waiting fails with the reason, so no caller is ever left hanging.

Futures' done callbacks run on the thread that read the reply, as
callbacks run on a worker thread in ``concurrent.futures``; a callback
that waits for another reply from the same client would deadlock it.

Large data (PROTOCOL.md): the memory files of large arguments and
results travel as descriptors beside their frames (``_fdpass``); which
file may be written again is ``_regions``' business.
"""

import concurrent.futures
from concurrent.futures import _base
import select
import socket
import threading

from . import _codec, _fdpass, _outbox, _regions, _session
from ._errors import DaemonBusy, DaemonConnectionError, JobLost
from ._future import JobFuture, settle
from ._receiver import Receiver
from ._replies import Pending

__all__ = ["Connection"]

# Below this a payload is copied behind the header to save a system call.
_COPY_PAYLOAD_BELOW = 64 * 1024


class Connection:
    """A socket to the daemon that has answered ``hello``.

    ``unpickling`` and ``explain`` are given to the ``Pending`` table: the
    Client that Queues in replies use, and how it explains the failure of
    a job whose definition was refused.
    """

    def __init__(self, socket_path, connect_timeout, *, unpickling, explain,
                 first_id=1):
        self.socket_path = socket_path
        # Guards the pending table, _closed_error, the reader thread and
        # _finished.
        self._lock = threading.Lock()
        self._pending = Pending(settle, _stopped, lock=self._lock,
                                unpickling=unpickling, explain=explain)
        self._in_flight = self._pending.entries  # len() of it: no call
        self._send_lock = threading.Lock()  # Held for one whole frame.
        # Only touched under _send_lock. A client's later connections go on
        # counting (first_id), so a stale id never names another request.
        self._next_id = first_id
        self._closed_error = None  # Makes the error for a closed connection.
        self.limits = _codec.Limits()
        self._regions = _regions.Regions()
        self.hello = None  # The daemon's hello reply header.
        self.process_modules = frozenset()  # hello's, once it came
        # Requests in flight, at most the daemon's window (set by hello).
        self._window = 10000
        self._sock = _connect(socket_path)
        self._receiver = Receiver(self)
        self._read_lock = self._receiver.read_lock  # held by whoever reads
        self._peer = _session.PeerWatch(self._sock)
        self._outbox = _outbox.Outbox(
            self._sock,
            lambda exc: self._shutdown(self._lost(f"send failed: {exc}")),
            f"extrainterpreters-writer {socket_path}")
        self._finished = False  # _finish ran
        try:
            self._handshake(connect_timeout)
        except BaseException:
            self.close()
            raise

    def peer_gone(self):
        """The daemon closed its end and nobody noticed yet: if so, the
        connection is ended now, as a reader would have ended it. Only
        looked at when nothing is in flight: otherwise a reader is at work
        and sees the end itself. (Reads without the lock: the fast path of
        every request.)"""
        if self._closed_error is not None:
            return True
        if self._in_flight:
            return False
        gone = self._peer.gone()
        if gone:
            self._shutdown(self._lost("daemon closed the connection"))
        return gone

    def failure(self):
        """Why the connection ended (an exception), or None while open."""
        with self._lock:
            make_error = self._closed_error
        return None if make_error is None else make_error()

    @property
    def next_id(self):
        """The id the next request would get."""
        with self._send_lock:
            return self._next_id

    @property
    def closed(self):
        """True once closed, or once the connection ended."""
        with self._lock:
            return self._closed_error is not None

    def close(self):
        """Close the connection; waiting Futures fail. Idempotent."""
        self._shutdown(self._lost("client closed"), jobs_lost=False)
        # The reader closes the socket on its way out (or this thread does,
        # when there is none). A done callback may call close() on the
        # reader thread, which must not join itself.
        with self._lock:
            reader = self._receiver.thread
        if reader is None:
            self._finish()
        elif reader is not threading.current_thread():
            reader.join()

    def abandon(self, request_id, future=None):
        """Stop waiting for a request: its reply, when it comes, is dropped.

        With ``future``, only while that Future waits for it. Returns
        False if the reply came first (or the connection ended).
        """
        with self._lock:
            return self._pending.abandon(request_id, future)

    def forget(self, request_id):
        """Forget a request the daemon never received: True if it was still
        pending (its Future is then left unanswered for good)."""
        with self._lock:
            return self._pending.take(request_id) is not None

    # -- sending ------------------------------------------------------------

    def take_room(self, wait, timeout):
        """Waits until fewer requests than the daemon's window (hello's
        ``max_jobs_per_connection``) are in flight on this connection, up
        to ``timeout`` seconds (None: as long as it takes) when ``wait``;
        else, or past the timeout, ``DaemonBusy``. Replies make room: the
        reading thread notifies its ``turn`` after each read.
        """
        if len(self._in_flight) < self._window:  # the common case: no lock
            return
        turn = self._receiver.turn
        with turn:
            if wait and turn.wait_for(
                    lambda: len(self._in_flight) < self._window
                    or self._closed_error is not None, timeout):
                return
        raise DaemonBusy(
            f"job not sent: {self._window} requests of this connection are "
            f"in flight (its window, max_jobs_per_connection)"
            + (f" and none ended within {timeout} s" if wait else
               " and the job was not to wait"), code="busy")

    def request(self, header, decode, payload=b"", *, future=None, fd=-1,
                claimed=False, region=False):
        """Send ``header`` with a fresh id; return the Future of its reply.

        ``decode(frame)`` turns the reply frame into the Future's value, or
        returns a ``_replies.Raised`` to make the Future raise. A
        ``JobFuture`` passed as ``future`` is used instead of a new one and
        gets the request id as ``job_id``. ``fd`` travels with the frame;
        ``region``: the argument region (from ``large_data``) this request
        now has, if any.
        ``claimed``: the caller reads the reply itself (``wait``).
        """
        if future is None:
            future = concurrent.futures.Future()
        if not (isinstance(future, JobFuture)
                and future._state == _base.RUNNING):  # born running
            future.set_running_or_notify_cancel()
        with self._send_lock:
            head, body, in_flight = self._register(
                header, payload, decode, future, claimed, region)
            small = len(body) < _COPY_PAYLOAD_BELOW
            if fd < 0 and small and (in_flight or self._outbox.busy()):
                # Others are in flight: this frame goes with the next batch.
                self._outbox.add(head + body)
                return future
            self._outbox.wait_empty()  # frames stay in order
            try:
                if fd >= 0:
                    _fdpass.send_with_fd(self._sock, (head, body), fd)
                elif small:
                    self._sock.sendall(head + body)
                else:
                    self._sock.sendall(head)
                    self._sock.sendall(body)
            except OSError as exc:
                self._shutdown(self._lost(f"send failed: {exc}"))
        return future

    def _register(self, header, payload, decode, future, claimed, region):
        """Give the request its id and make it pending: (head, body,
        whether others are in flight). ``_send_lock`` held."""
        request_id = self._next_id
        self._next_id += 1
        if isinstance(future, JobFuture):
            future.job_id = request_id
        future.request_id = request_id  # for queue_cancel (_queue)
        future.connection = self  # where its reply comes (Client.wait, cancel)
        free_region = self._regions.take_result_free()
        if free_region:
            header = dict(header, free_region=True)
        try:
            head, body = _codec.encode_request_parts(header, request_id,
                                                     payload, self.limits)
        except BaseException:
            if free_region:  # not said: the next request says it
                self._regions.result_released()
            raise
        with self._lock:
            if self._closed_error is not None:
                raise self._closed_error()
            if region:
                self._regions.sent(request_id, region)
            self._pending.add(request_id, future, decode, claimed)
            in_flight = len(self._in_flight) > 1
            if not claimed:
                self._receiver.unclaimed()  # the reader has work now
        return head, body, in_flight

    @staticmethod
    def sends_at_once(payload, fd=-1):
        """Whether ``request`` sends such a frame itself, waiting for the
        socket, rather than queueing it behind others for the writer: one
        with a descriptor, or a payload too large to copy behind its
        header."""
        return fd >= 0 or len(payload) >= _COPY_PAYLOAD_BELOW

    def large_data(self, header, buffers):
        """A context for sending a job with large ``buffers``: see
        ``Regions.attach``; yields ``(fd, region)`` for ``request``."""
        return self._regions.attach(header, buffers,
                                    self.limits.max_frame_bytes,
                                    lend=not self.closed)

    def _handshake(self, timeout):
        header = _session.hello_request(fds=True, regions=True)
        # Read by this thread (claimed): no hand-off between threads on the
        # way to a new client's first result.
        future = self.request(header, self._decode_hello, claimed=True)
        ready, _, _ = select.select([self._sock], [], [], timeout)
        if not ready:
            raise DaemonConnectionError(
                self.socket_path, f"no hello reply within {timeout} seconds")
        self.wait(future)

    def _decode_hello(self, frame):
        """Check the hello reply and adopt the daemon's limits.

        Runs on the reading thread, which owns the decoder.
        """
        self.limits = _session.check_hello(frame.header)
        self._receiver.decoder.limits = self.limits
        self.hello = frame.header
        self._window = _session.window(frame.header)
        self.process_modules = _session.process_modules(frame.header)

    # -- receiving ------------------------------------------------------------

    def wait(self, future):
        """``future.result()``, reading replies on the calling thread while
        the socket is free: a claimed request's reply then reaches its
        caller without a hand-off between threads (``_receiver``)."""
        return self._receiver.wait(future)

    def _finish(self):
        """Closes the socket and what belongs to the connection, once: on
        the reader thread's way out, or in close() when it never started."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self._outbox.close()
        with self._read_lock, self._send_lock:
            self._sock.close()
            self._receiver.close_fds()
            self._regions.close()
        self._receiver.notify_turn()

    def _lost(self, reason):
        return _session.closed_error(self.socket_path, reason)

    def _shutdown(self, make_error, jobs_lost=True):
        """Mark the connection ended and fail every waiting Future: jobs
        with ``JobLost`` (unless the client closed it), other requests
        with the reason.

        The first reason wins; later calls only repeat the socket shutdown,
        which also wakes the reader and any writer blocked on the socket.
        """
        with self._lock:
            if self._closed_error is None:
                self._closed_error = make_error
            make_error = self._closed_error
            futures = self._pending.drain()
            self._receiver.wake_all()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # Already shut down, or the peer is gone: both are fine.
        for future in futures:
            error = make_error()
            if (jobs_lost and isinstance(future, JobFuture)
                    and isinstance(error, DaemonConnectionError)):
                error = JobLost(self.socket_path, error.reason, future.job_id)
            future.set_exception(error)


def _stopped(future, error):
    """A request the daemon stopped because someone else cancelled it."""
    if isinstance(future, JobFuture):
        future._mark_cancelled()
    else:
        settle(future, exception=error)


def _connect(socket_path):
    """Return a socket connected to ``socket_path``, or raise with the why."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
    except OSError as exc:
        reason = _session.connect_reason(exc)
    else:
        return sock
    sock.close()
    raise DaemonConnectionError(socket_path, reason)
