"""``Client``: one connection to ``extrainterpretersd``, shared by threads.

Data flow (compare ``concurrent/futures/process.py``)::

    caller threads                      reader thread            daemon
    --------------                      -------------            ------
    submit(fn, *args)
      pickle (fn, args, kwargs)
      register Future under a new id
      send lock: write the frame  ------------------------------>  run
                                        recv, FrameDecoder  <----  result
                                        pop the id's Future
                                        unpickle, set result
    Future.result()  <------------------

Requests are pipelined: replies come back in any order and are matched by
id. One thread at a time reads (whoever holds the read lock: a caller of
``run()`` waiting for its own reply, or the reader thread, started with the
first request nobody waits for that way), and writers take the send lock
for one whole frame, so frames never interleave. A request made while
others are in flight is queued instead of sent (``_outbox``): a writer
thread sends everything queued so far in one system call. When the
connection ends for any reason, every Future still waiting fails with the
reason, so no caller is ever left hanging.

Futures' done callbacks run on the reader thread, as callbacks run on a
worker thread in ``concurrent.futures``; a callback that waits for another
reply from the same client would deadlock it.

Jobs get ``JobFuture``s, whose ``cancel()`` also stops a running job: it
moves the job's id from the pending table to the abandoned set and sends a
``cancel`` request; the job's later reply (and output) is dropped when it
arrives. ``output`` frames are not replies: the reader writes each one to
this process's ``sys.stdout`` or ``sys.stderr`` in one write, so a job's
lines come out in order, while it runs, and whole.
"""

import collections
import concurrent.futures
import copy
import functools
import os
import pickle
import platform
import re
import math
import select
import socket
import sys
import threading
import weakref

from . import _byvalue, _codec, _fdpass, _outbox, _queue_local, _shm
from ._errors import (DaemonConnectionError, ExtraInterpretersError,
                      JobTimeout, ProtocolError, RemoteError,
                      _RemoteTraceback)
from ._byvalue_version import bytecode_check
from ._future import JobFuture, settle
from ._paths import resolve_socket_path
from ._version import __version__

__all__ = ["Client", "run"]

PROTOCOL_VERSION = 1
_RECV_SIZE = 256 * 1024
# Below this a payload is copied behind the header to save a system call.
_COPY_PAYLOAD_BELOW = 64 * 1024
_DEFAULT_CONNECT_TIMEOUT = 30.0

# Error codes that mean a request or frame broke the protocol, as opposed to
# a job that failed; these raise ProtocolError, every other code RemoteError.
_PROTOCOL_ERROR_CODES = frozenset({
    "bad_frame", "unsupported_version", "too_large", "bad_header",
    "hello_required", "unknown_type", "bad_request",
})


class Client:
    """A thread-safe connection to the daemon.

    Connecting sends ``hello`` and waits up to ``connect_timeout`` seconds
    for the reply, so a constructed client is known to talk to a daemon.
    Functions from importable modules are pickled by reference (the daemon
    imports them: ``--python-path``, or installed); functions it cannot
    import (``__main__``, the REPL, lambdas, closures) are shipped by value
    (``_byvalue``): sent once per connection, rebuilt once per interpreter.

    With ``output=True`` (the default) what jobs print reaches this
    process's ``sys.stdout`` and ``sys.stderr`` as they print it;
    ``output=False`` has the daemon discard it.
    """

    def __init__(self, socket_path=None, *,
                 connect_timeout=_DEFAULT_CONNECT_TIMEOUT, output=True):
        self._socket_path = resolve_socket_path(socket_path)
        self._output = bool(output)
        self._abandoned = set()  # Cancelled job ids; guarded by _lock.
        # Definitions sent on this connection: digest -> the define's Future
        # (guarded by _lock); _define_lock keeps a job from overtaking a
        # define another thread is sending for it.
        self._defined = {}
        self._define_lock = threading.Lock()
        self._lock = threading.Lock()  # Guards _pending and _closed_error.
        self._send_lock = threading.Lock()  # Held for one whole frame.
        self._pending = {}  # request id -> (Future, decode function)
        # Reading: whoever holds _read_lock reads the socket and dispatches
        # every reply. A thread waiting in run() reads for itself (one thread
        # hand-off less per job); the reader thread reads only while some
        # request is pending that no such thread waits for. Both guarded by
        # _lock. _reader_work is notified when that count grows (and at
        # shutdown); _turn, which callers in _wait use, when the read lock is
        # let go and when a waited-for reply arrives. Two conditions, so that
        # a run() does not wake the reader thread for nothing.
        self._read_lock = threading.Lock()
        self._claimed = set()  # ids of pending requests a caller reads for
        self._turn = threading.Condition(self._lock)
        self._reader_work = threading.Condition(self._lock)
        self._next_id = 1  # Only touched under _send_lock.
        self._closed_error = None  # Makes the error for a closed connection.
        self._limits = _codec.Limits()
        self._decoder = _codec.FrameDecoder(self._limits)  # Reader's own.
        self._received_fds = collections.deque()  # Reader's own (SCM_RIGHTS).
        # Large arguments go in a reused memory file (_shm.Region) while no
        # other job has it: _region_job is the job that has it (or None).
        # The daemon's result region is freed with the next request once
        # this side is done with it (_free_region). All guarded by _lock.
        self._region = None
        self._region_job = None
        self._free_region = False
        self._refusals = {}  # digest -> (qualname, refusal); under _lock
        self._hello = None
        self._sock = _connect(self._socket_path)
        self._outbox = _outbox.Outbox(
            self._sock, lambda exc: self._shutdown(self._lost(f"send failed: {exc}")),
            f"extrainterpreters-writer {self._socket_path}")
        # Started by the first request that no caller reads for itself; a
        # client that only ever calls run() needs none. Under _lock.
        self._reader = None
        self._finished = False  # _finish ran; under _lock
        try:
            self._handshake(connect_timeout)
        except BaseException:
            self.close()
            raise

    # -- public API -------------------------------------------------------

    @property
    def socket_path(self):
        """The path of the daemon's socket."""
        return self._socket_path

    @property
    def hello(self):
        """The daemon's ``hello`` reply: ``python``, ``limits``, ``pid``...

        A copy of the reply header without ``type`` and ``id``.
        """
        return {key: copy.deepcopy(value) for key, value in self._hello.items()
                if key not in ("type", "id")}

    @property
    def closed(self):
        """True once the client was closed or its connection ended."""
        with self._lock:
            return self._closed_error is not None

    def submit(self, fn, /, *args, timeout=None, **kwargs):
        """Schedule ``fn(*args, **kwargs)`` on a pool interpreter.

        Returns a ``JobFuture``. Raises at once if the job cannot be
        pickled or the client is closed. ``cancel()`` on the Future stops
        the job even while it runs (see ``JobFuture``).

        ``timeout`` (seconds, counted by the daemon from when it reads the
        request) is not passed to ``fn``: past it the job is stopped and
        the Future raises ``JobTimeout``. A function that takes its own
        ``timeout`` keyword goes through ``submit_with``.
        """
        return self._submit(fn, args, kwargs, timeout=timeout)

    def submit_with(self, fn, /, args=(), kwargs=None, *, timeout=None,
                    output=None):
        """``submit`` with the job's arguments and the options kept apart.

        ``args`` and ``kwargs`` go to ``fn`` untouched (a ``timeout`` key
        included); ``timeout`` is the job's deadline as in ``submit``;
        ``output`` overrides the client's ``output`` setting for this job.
        """
        return self._submit(fn, tuple(args), dict(kwargs or {}),
                            timeout=timeout, output=output)

    def run(self, fn, /, *args, timeout=None, **kwargs):
        """Run ``fn(*args, **kwargs)`` in a pool interpreter; return its value.

        An exception raised by ``fn`` is re-raised here as the same type,
        with the remote traceback as its ``__cause__``. ``timeout`` is the
        job's deadline, as in ``submit``: past it, ``JobTimeout``. A wait
        interrupted here (Ctrl-C) cancels the job.
        """
        return self._wait_job(self._submit(fn, args, kwargs, timeout=timeout,
                                           claimed=True))

    def status(self, *, timeout=None):
        """Return the daemon's status document (see PROTOCOL.md) as a dict."""
        future = self._request({"type": "status"}, _decode_status)
        return future.result(timeout)

    def ping(self, *, timeout=None):
        """Round-trip a ``ping``; raises if the daemon does not answer."""
        self._request({"type": "ping"}, _decode_ping).result(timeout)

    def close(self):
        """Close the connection. Idempotent.

        Requests still waiting fail with ``DaemonConnectionError``; the
        daemon drops their queued jobs and ends this connection's leases.
        """
        self._shutdown(lambda: DaemonConnectionError(
            self._socket_path, "client closed", connected=True))
        # The reader closes the socket on its way out (or this thread does,
        # when there is none). A done callback may call close() on the
        # reader thread, which must not join itself.
        with self._lock:
            reader = self._reader
        if reader is None:
            self._finish()
        elif reader is not threading.current_thread():
            reader.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__} {self._socket_path!r} {state}>"

    # -- used by Interpreter -------------------------------------------------

    def _submit(self, fn, args, kwargs, *, lease=None, timeout=None,
                output=None, claimed=False):
        """Send one ``run`` request, optionally on a lease; return a Future."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        collector = None
        if _shm.may_be_large(args, kwargs):
            args, kwargs = _shm.wrap_large(args, kwargs)
            collector = _shm.Collector()
        job = _dump_job(fn, args, kwargs, bytecode_check(self._hello), collector)
        header = {"type": "run"}
        if lease is not None:
            header["lease"] = lease
        fd = -1
        region = None
        if collector is not None and collector.buffers:
            # Large buffers go in a memfd (PROTOCOL.md, "Large data"),
            # within the same limit as a frame.
            size = sum(b.raw().nbytes for b in collector.buffers)
            if size > self._limits.max_frame_bytes:
                raise ProtocolError(
                    f"the job's large buffers ({size} bytes) exceed the "
                    f"daemon's max_frame_bytes {self._limits.max_frame_bytes}",
                    code="too_large")
            region = self._take_region()
            if region is not None:
                fd = region.fd
                header["oob"] = region.fill(collector.buffers)
                header["region"] = True  # sent again: the daemon may keep it mapped
            else:
                fd, header["oob"] = _shm.share(collector.buffers)
            header["fd"] = True
        sent = False
        try:
            future = self._send_with_definitions(
                header, job, fn, timeout, output, fd, claimed,
                region=region is not None)
            sent = True
            return future
        finally:
            if region is not None:
                if not sent:
                    self._give_back_region(region, reuse=True)
            elif fd >= 0:
                os.close(fd)  # the daemon has its own copy once sent

    def _take_region(self):
        """The connection's argument region, if no job has it now."""
        with self._lock:
            if self._region_job is not None or self._closed_error is not None:
                return None
            if self._region is None:
                self._region = _shm.Region()
            self._region_job = -1  # taken; the request id comes in _request
            return self._region

    def _give_back_region(self, region, reuse):
        """The region's job is over: keep it for the next, or (when the
        daemon may still read it) drop it."""
        with self._lock:
            if self._region is region:
                self._region_job = None
                if not reuse:
                    self._region = None
        if not reuse:
            region.close()  # the daemon's mapping keeps what it still uses

    def _send_with_definitions(self, header, job, fn, timeout, output, fd,
                               claimed, region=False):
        """Send the job's definitions this connection lacks, then the job."""
        if not job.definitions:
            return self._send_job(header, job.payload, timeout, output, fd,
                                  claimed, region)
        defines = self._define(job.definitions)
        header["uses"] = [d.digest for d in job.definitions]
        what = _describe(fn)
        for definition, define_future in defines:
            # Mostly the refusal is back before the run is sent; a later
            # one fails the job in _check_defined.
            if define_future.done() and define_future.exception():
                raise _refused(what, definition.qualname, definition.digest,
                               define_future.exception())
        future = self._send_job(header, job.payload, timeout, output, fd,
                                claimed, region)
        # The define's Future keeps its callbacks for the connection, so
        # they hold neither the job's Future (nor its result) nor ``fn``.
        job_ref = weakref.ref(future)
        for definition, define_future in defines:
            define_future.add_done_callback(functools.partial(
                self._check_defined, job_ref, what, definition.qualname,
                definition.digest))
        return future

    def _define(self, definitions):
        """Send the definitions this connection lacks; return all Futures.

        Requests are handled in order, so the job after them need not wait
        for the replies; a refused definition fails the jobs using it
        (``_check_defined``) and is sent again for the next one.
        """
        futures = []
        with self._define_lock:
            for definition in definitions:
                digest = definition.digest
                with self._lock:
                    future = self._defined.get(digest)
                if future is None:
                    future = self._request(
                        {"type": "define", "digest": digest},
                        _expect_type("define"), definition.blob)
                    with self._lock:
                        self._defined[digest] = future
                    future.add_done_callback(functools.partial(
                        self._forget_definition, digest, definition.qualname))
                futures.append((definition, future))
        return futures

    def _forget_definition(self, digest, qualname, future):
        """A refused definition is sent again for the next job; its refusal
        is kept to explain the ``unknown_definition`` replies of jobs that
        were already sent with it (``_explain``)."""
        if future.exception() is not None:
            with self._lock:
                if self._defined.get(digest) is future:
                    del self._defined[digest]
                self._refusals[digest] = (qualname, future.exception())

    def _explain(self, header, error):
        """Turn a job's ``unknown_definition`` error into the refusal of that
        definition, which the daemon sent first (requests are answered in
        order, so it has been read already)."""
        match = re.search(r"[0-9a-f]{64}", header.get("message") or "")
        with self._lock:
            refused = self._refusals.get(match.group(0)) if match else None
        if refused is None:
            return error
        qualname, refusal = refused
        explained = RemoteError(
            f"job {header['id']} cannot run: the daemon refused the "
            f"definition of {qualname} ({match.group(0)}) it uses: {refusal}",
            code=getattr(refusal, "code", None))
        explained.__cause__ = refusal
        return explained

    def _check_defined(self, job_ref, what, qualname, digest, define_future):
        """Fail the job (``job_ref()``) at once if the daemon refused a
        definition it uses.

        Its own reply (``unknown_definition``) would say less; it is dropped
        like a cancelled job's. (If that reply was read before this callback
        was attached, the job keeps it: it still names the digest.)
        """
        refusal = define_future.exception()
        job = job_ref()
        if refusal is None or job is None:
            return  # A job nobody refers to any more has been answered.
        with self._lock:
            entry = self._pending.get(job.job_id)
            if entry is None or entry[0] is not job:
                return  # Answered already, or the connection ended.
            self._pop_pending(job.job_id)
            self._abandoned.add(job.job_id)
        settle(job, exception=_refused(what, qualname, digest, refusal))

    def _send_job(self, header, payload, timeout, output, fd=-1,
                  claimed=False, region=False):
        """Send a ``run`` request with its options; return its JobFuture."""
        header = dict(header)
        if timeout is not None:
            header["timeout"] = _check_timeout(timeout)
        if self._output if output is None else output:
            header["output"] = True
        future = self._request(header, _decode_result, payload,
                               future=JobFuture(), fd=fd, claimed=claimed,
                               region=region)
        # The stopper names the job by id, not by its Future: a Future that
        # refers to itself through its stopper is a reference cycle, which
        # would keep its result (and a shared-memory mapping the result
        # wraps, with its descriptor) alive until the garbage collector
        # runs, rather than until the caller lets go of it.
        future._set_stopper(functools.partial(self._stop_job, future.job_id))
        return future

    def _stop_job(self, job_id):
        """Stop waiting for a job and ask the daemon to stop it.

        Returns False if the job's reply came first. Runs on the thread
        that called ``cancel()``, which may be the reader (a done callback).
        Request ids are never reused, so a pending entry under ``job_id``
        is the job's own.
        """
        with self._lock:
            if self._pop_pending(job_id) is None:
                return False
            self._abandoned.add(job_id)
        try:
            self._request({"type": "cancel", "job": job_id},
                          _expect_type("cancel"))
        except ExtraInterpretersError:
            pass  # The connection is gone, and its jobs with it.
        return True

    def _lease(self):
        """Lease a dedicated interpreter; return ``(lease_id, interp_id)``."""
        return self._request({"type": "lease"}, _decode_lease).result()

    def _release(self, lease):
        """Ask for ``lease`` to end; return a Future for the reply."""
        return self._request({"type": "release", "lease": lease},
                             _expect_type("release"))

    # -- sending ------------------------------------------------------------

    def _request(self, header, decode, payload=b"", *, future=None, fd=-1,
                 claimed=False, region=False):
        """Send ``header`` with a fresh id; return the Future of its reply.

        ``decode(frame)`` turns the reply frame into the Future's value, or
        returns a ``_Raised`` to make the Future raise. A ``JobFuture``
        passed as ``future`` is used instead of a new one and gets the
        request id as ``job_id``. ``region``: ``fd`` is the argument
        region, which this request now has.
        """
        if future is None:
            future = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        with self._send_lock:
            request_id = self._next_id
            self._next_id += 1
            if isinstance(future, JobFuture):
                future.job_id = request_id
            future.request_id = request_id  # for queue_cancel (_queue)
            header = dict(header, id=request_id)
            with self._lock:
                if self._free_region:
                    header["free_region"] = True
            head, body = _codec.encode_frame_parts(header, payload,
                                                   self._limits)
            with self._lock:
                if self._closed_error is not None:
                    raise self._closed_error()
                self._free_region = False
                if region:
                    self._region_job = request_id
                self._pending[request_id] = (future, decode)
                in_flight = len(self._pending) > 1
                if claimed:
                    self._claimed.add(request_id)
                else:
                    self._reader_work.notify()  # the reader thread has work
                    if self._reader is None:
                        self._reader = threading.Thread(
                            target=self._read_loop, daemon=True,
                            name=f"extrainterpreters-reader {self._socket_path}")
                        self._reader.start()
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

    def _handshake(self, timeout):
        header = {"type": "hello", "protocol": PROTOCOL_VERSION,
                  "client": _client_string(), "fds": True, "regions": True}
        # Read by this thread (claimed): no hand-off between threads on the
        # way to a new client's first result.
        future = self._request(header, self._decode_hello, claimed=True)
        ready, _, _ = select.select([self._sock], [], [], timeout)
        if not ready:
            raise DaemonConnectionError(
                self._socket_path, f"no hello reply within {timeout} seconds")
        self._wait(future)

    def _decode_hello(self, frame):
        """Check the hello reply and adopt the daemon's limits.

        Runs on the reader thread, which owns the decoder.
        """
        self._limits = _check_hello(frame.header)
        self._decoder.limits = self._limits
        self._hello = frame.header

    # -- receiving (reader thread) -------------------------------------------

    def _read_loop(self):
        """The reader thread: reads while some pending request has no caller
        reading for it (``_wait``), then waits for such a request again."""
        while True:
            with self._reader_work:
                self._reader_work.wait_for(
                    lambda: self._closed_error is not None
                    or len(self._pending) > len(self._claimed))
            with self._read_lock:
                if self.closed or not self._read_once():
                    break
            self._notify_turn()
        self._finish()

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
            while self._received_fds:
                os.close(self._received_fds.popleft())
            with self._lock:
                region, self._region = self._region, None
            if region is not None:
                region.close()
        self._notify_turn()

    def _read_once(self):
        """One recv and the frames it completes; ``_read_lock`` held.

        Returns False once the connection has ended, every waiting Future
        having failed with the reason.
        """
        try:
            data = _fdpass.receive(self._sock, _RECV_SIZE, self._received_fds)
            if not data:
                self._shutdown(self._eof_error())
                return False
            for frame in self._decoder.feed(data):
                self._dispatch_with_fd(frame)
            return True
        except ProtocolError as exc:
            self._shutdown(_same_protocol_error(exc))
        except OSError as exc:
            self._shutdown(self._lost(f"connection lost: {exc}"))
        return False

    def _notify_turn(self, *_):
        with self._turn:
            self._turn.notify_all()

    def _wait_job(self, future):
        """The job's result, read on this thread when no other thread is
        reading; a wait interrupted here (Ctrl-C) cancels the job."""
        try:
            return self._wait(future)
        finally:
            future.cancel()  # A no-op once the job is done.

    def _wait(self, future):
        """``future.result()``, reading replies on the calling thread while
        the socket is free: a claimed request's reply then reaches its
        caller without a hand-off between threads."""
        future.add_done_callback(self._notify_turn)
        while not future.done():
            if self._read_lock.acquire(blocking=False):
                try:
                    while not future.done() and not self.closed:
                        if not self._read_once():
                            break
                finally:
                    self._read_lock.release()
                    self._notify_turn()
                break
            with self._turn:
                self._turn.wait_for(lambda: future.done()
                                    or not self._read_lock.locked())
        return future.result()

    def _abandon(self, request_id):
        """Forget a request the daemon never received: True if it was still
        pending (its Future is then left unanswered for good)."""
        with self._lock:
            return self._pop_pending(request_id) is not None

    def _pop_pending(self, request_id):
        """Takes a request's entry (or None) out of the table; ``_lock`` held."""
        self._claimed.discard(request_id)
        return self._pending.pop(request_id, None)

    def _dispatch_with_fd(self, frame):
        """Dispatch ``frame``, giving it the descriptor it came with, which
        is closed afterwards (mappings made from it keep their own)."""
        if frame.header.get("fd") is not True:
            self._dispatch(frame)
            return
        if not self._received_fds:
            raise ProtocolError(f"daemon sent a frame with \"fd\": true but no "
                                f"file descriptor: {frame.header!r:.300}")
        fd = self._received_fds.popleft()
        try:
            views = _shm.map_views(fd, frame.header.get("oob") or [])
        except (OSError, ValueError, TypeError) as exc:
            views = exc  # the job's result fails with it (_decode_result)
        finally:
            os.close(fd)
        self._dispatch(frame._replace(views=views))
        if isinstance(views, Exception):
            return
        # The daemon's result region is free again for its next result once
        # nothing made from it here still uses it.
        if _shm.release(views) and frame.header.get("region") is True:
            with self._lock:
                self._free_region = True

    def _dispatch(self, frame):
        """Complete the Future the frame answers; raise on fatal errors."""
        header = frame.header
        request_id = header["id"]
        if header["type"] == "output":
            self._write_output(header)
            return
        is_error = header["type"] == "error"
        fatal = is_error and (header.get("fatal") is True
                              or request_id is None)
        with self._lock:
            region = (self._region if request_id is not None
                      and request_id == self._region_job else None)
        if region is not None:
            # The daemon read the job's arguments, and may say it is done
            # with the region (PROTOCOL.md, "Large data").
            self._give_back_region(region, reuse=header.get("oob_done") is True)
        with self._lock:
            entry = self._pop_pending(request_id)
            if entry is None and request_id in self._abandoned:
                self._abandoned.discard(request_id)
                return  # The reply of a job cancelled here.
        if entry is None and not fatal:
            raise ProtocolError(
                f"daemon sent a {header['type']!r} reply for request id "
                f"{request_id}, which is not waiting for one")
        if is_error:
            error = _error_from_header(header)
            if header.get("code") == "unknown_definition":
                error = self._explain(header, error)
            if entry is None:
                pass
            elif (isinstance(error, concurrent.futures.CancelledError)
                  and isinstance(entry[0], JobFuture)):
                entry[0]._mark_cancelled()  # Stopped by someone else.
            else:
                settle(entry[0], exception=error)
            if fatal:
                raise ProtocolError(
                    f"daemon closed the connection: {header.get('message')}",
                    code=header.get("code"))
            return
        future, decode = entry
        previous = _queue_local.unpickling_for(self)  # Queues in the value
        try:
            value = decode(frame)
        except (ProtocolError, RemoteError) as exc:
            settle(future, exception=exc)
        else:
            if isinstance(value, _Raised):
                settle(future, exception=value.exception)
            else:
                settle(future, value=value)
        finally:
            _queue_local.unpickling_for(previous)

    def _write_output(self, header):
        """Copy one ``output`` frame to ``sys.stdout`` or ``sys.stderr``."""
        job_id = header["id"]
        with self._lock:
            if job_id in self._abandoned:
                return  # Cancelled here: nobody is waiting for it.
            known = job_id in self._pending
        stream, data = header.get("stream"), header.get("data")
        if (not known or stream not in ("stdout", "stderr")
                or not isinstance(data, str)):
            raise ProtocolError(f"bad output frame (for a job this client "
                                f"is waiting for: {known}): "
                                f"{header!r:.300}")
        write_output(stream, data)

    def _eof_error(self):
        if self._decoder.buffered:
            return self._lost("daemon closed the connection in the middle "
                              "of a frame")
        return self._lost("daemon closed the connection")

    def _lost(self, reason):
        return lambda: DaemonConnectionError(self._socket_path, reason,
                                             connected=True)

    def _shutdown(self, make_error):
        """Mark the connection ended and fail every waiting Future.

        The first reason wins; later calls only repeat the socket shutdown,
        which also wakes the reader and any writer blocked on the socket.
        """
        with self._lock:
            if self._closed_error is None:
                self._closed_error = make_error
            make_error = self._closed_error
            pending, self._pending = self._pending, {}
            self._claimed.clear()
            self._turn.notify_all()
            self._reader_work.notify_all()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # Already shut down, or the peer is gone: both are fine.
        for future, _ in pending.values():
            future.set_exception(make_error())


class _Raised:
    """A decoded reply saying the job raised ``exception``."""

    __slots__ = ("exception",)

    def __init__(self, exception):
        self.exception = exception


def _connect(socket_path):
    """Return a socket connected to ``socket_path``, or raise with the why."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
    except OSError as exc:
        reason = _connect_reason(exc)
    else:
        return sock
    sock.close()
    raise DaemonConnectionError(socket_path, reason)


def _connect_reason(exc):
    """The short phrase ``DaemonConnectionError`` gives for ``exc``."""
    if isinstance(exc, FileNotFoundError):
        return "no such socket file"
    if isinstance(exc, ConnectionRefusedError):
        return "no daemon is listening"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)


def _client_string():
    return (f"extrainterpreters-python/{__version__} "
            f"python/{platform.python_version()}")


def _check_hello(header):
    """Check a ``hello`` reply header; return the daemon's ``Limits``."""
    _check_reply_type(header, "hello")
    if header.get("protocol") != PROTOCOL_VERSION:
        raise ProtocolError(f"daemon speaks protocol "
                            f"{header.get('protocol')!r}, this client "
                            f"speaks {PROTOCOL_VERSION}")
    limits = header.get("limits")
    if not isinstance(limits, dict):
        raise ProtocolError(f"hello reply lacks 'limits': {header!r:.300}")
    return _codec.Limits(
        max_header_bytes=_limit(limits, "max_header_bytes"),
        max_frame_bytes=_limit(limits, "max_frame_bytes"))


def _dump_job(fn, args, kwargs, check=None, buffer_callback=None):
    """Pickle a job, shipping by value what the daemon cannot import."""
    try:
        return _byvalue.dump_job(fn, args, kwargs, check, buffer_callback)
    except _byvalue.VersionMismatch:
        raise
    except Exception as exc:
        raise pickle.PicklingError(
            f"cannot send a call of {_describe(fn)} to the daemon: the "
            f"function or its arguments do not pickle: {exc}") from exc


def _refused(what, qualname, digest, refusal):
    """The error of a job (running ``what``, from ``_describe``) whose
    definition the daemon refused."""
    error = RemoteError(
        f"cannot run {what}: the daemon refused the definition of "
        f"{qualname} ({digest}) it uses: {refusal}",
        code=getattr(refusal, "code", None))
    error.__cause__ = refusal
    return error


def _describe(fn):
    """``module.qualname`` of a function, as pickle refers to it."""
    qualname = getattr(fn, "__qualname__", None)
    if qualname is None:
        return repr(fn)
    module = getattr(fn, "__module__", None)
    return f"{module}.{qualname}" if module else qualname


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


def _check_timeout(timeout):
    """A job ``timeout`` as the protocol wants it: a positive finite number."""
    if (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout) or timeout <= 0):
        raise ValueError(f"timeout must be a positive number of seconds, "
                         f"not {timeout!r}")
    return timeout


def _same_protocol_error(exc):
    return lambda: ProtocolError(exc.message, code=exc.code)


def _error_from_header(header):
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
    return RemoteError.from_exception_info(header.get("exception"),
                                           message=message, code=code)


def _check_reply_type(header, expected):
    if header["type"] != expected:
        raise ProtocolError(f"expected a {expected!r} reply to request "
                            f"{header['id']}, got {header['type']!r}")


def _expect_type(expected):
    def decode(frame):
        _check_reply_type(frame.header, expected)
        return None
    return decode


def _limit(limits, key):
    value = limits.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 2:
        raise ProtocolError(f"hello reply has a bad limits.{key}: {value!r}")
    return value


def _decode_ping(frame):
    _check_reply_type(frame.header, "ping")


def _decode_status(frame):
    _check_reply_type(frame.header, "status")
    document = frame.header.get("status")
    if not isinstance(document, dict):
        raise ProtocolError(f"status reply lacks a 'status' object: "
                            f"{frame.header!r:.300}")
    return document


def _decode_lease(frame):
    header = frame.header
    _check_reply_type(header, "lease")
    lease, interpreter = header.get("lease"), header.get("interpreter")
    if not isinstance(lease, int) or not isinstance(interpreter, int):
        raise ProtocolError(f"lease reply lacks integer 'lease' and "
                            f"'interpreter': {header!r:.300}")
    return lease, interpreter


def _decode_result(frame):
    """A ``result`` reply's value, or ``_Raised`` with the job's exception."""
    header = frame.header
    _check_reply_type(header, "result")
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
        return _Raised(_remote_exception(header, frame.payload))
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


# -- the module-level run() ---------------------------------------------------

_default_clients_lock = threading.Lock()
_default_clients = {}  # socket path -> Client


def _default_client(socket_path=None):
    """The shared Client for ``socket_path`` (default: the default socket
    path), (re)connected lazily."""
    path = resolve_socket_path(socket_path)
    with _default_clients_lock:
        client = _default_clients.get(path)
        if client is None or client.closed:
            client = Client(path)
            _default_clients[path] = client
        return client


def run(fn, /, *args, timeout=None, **kwargs):
    """Call ``fn(*args, **kwargs)`` in the daemon at the default socket.

    Uses one shared ``Client`` per socket path, connected on first use and
    again after its connection ended. ``timeout`` is the job's deadline,
    as in ``Client.run``.
    """
    return _default_client().run(fn, *args, timeout=timeout, **kwargs)
