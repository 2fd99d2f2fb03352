"""``Client``: one connection to ``extrainterpretersd``, shared by threads.

Data flow (compare ``concurrent/futures/process.py``)::

    caller threads                      reading thread           daemon
    --------------                      --------------           ------
    submit(fn, *args)
      pickle (fn, args, kwargs)
        (_run_request, _byvalue)
      'define' what goes by value,
        once (_definitions)
      register Future under a new id
      send lock: write the frame  ------------------------------>  run
        (_connection)                   recv, FrameDecoder  <----  result
                                        pop the id's Future
                                        unpickle, set result
                                          (_replies.Pending)
    Future.result()  <------------------

The reading thread is a caller of ``run()`` waiting for its own reply, or
the reader thread (``_connection``); when the connection ends for any
reason, every Future still waiting fails with the reason.

Jobs get ``JobFuture``s, whose ``cancel()`` also stops a running job: it
moves the job's id from the pending table to the abandoned set and sends a
``cancel`` request; the job's later reply (and output) is dropped when it
arrives. ``output`` frames are not replies: the reader writes each one to
this process's ``sys.stdout`` or ``sys.stderr`` in one write, so a job's
lines come out in order, while it runs, and whole.
"""

import concurrent.futures
import copy
import functools
import threading

from . import _batch, _shm
from ._byvalue_version import bytecode_check
from ._keeper import DEFAULT_RECONNECT_TIMEOUT, ConnectionKeeper
from ._errors import DaemonBusy, ExtraInterpretersError, RemoteError
from ._future import JobFuture
from ._paths import resolve_socket_path
from ._replies import (decode_lease, decode_ping, decode_result,
                       decode_status, expect_type)
from ._run_request import add_options, check_lane, describe, dump_job
from ._session import DEFAULT_CONNECT_TIMEOUT

__all__ = ["Client", "run"]


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

    ``lane`` is where jobs run unless a call says otherwise: ``"auto"``
    (the default: the daemon sends jobs that use numpy, pandas and other
    libraries that refuse sub-interpreters to its worker processes, and
    the rest to sub-interpreters), ``"interpreter"`` or ``"process"``.
    ``rerun=False`` stops the daemon from running a job again in a worker
    process after it raised the sub-interpreter ImportError itself (code
    before the failing import would run twice).

    A connection may have the daemon's window of jobs in flight (hello's
    ``max_jobs_per_connection``); ``submit`` then waits for one to be
    answered, up to ``submit_timeout`` seconds (None: as long as it takes;
    past it, ``DaemonBusy``). If the daemon goes away (a restart, a crash),
    jobs in flight fail with ``JobLost`` and the next call reconnects,
    trying for up to ``reconnect_timeout`` seconds (``_keeper``).
    """

    def __init__(self, socket_path=None, *,
                 connect_timeout=DEFAULT_CONNECT_TIMEOUT, output=True,
                 lane="auto", rerun=True, submit_timeout=None,
                 reconnect_timeout=DEFAULT_RECONNECT_TIMEOUT):
        self._socket_path = resolve_socket_path(socket_path)
        self._output = bool(output)
        self._lane = check_lane(lane)
        self._rerun = bool(rerun)
        self._submit_timeout = submit_timeout
        # A run header with this client's options, copied for each job
        # that sets none of its own.
        self._run_header = {"type": "run"}
        add_options(self._run_header, None, self._output, self._lane,
                    self._rerun)
        # It reaches the Client late: _request may be replaced after
        # construction (tests spy on it).
        self._keeper = ConnectionKeeper(
            self._socket_path, connect_timeout, reconnect_timeout,
            request=lambda *args, **kwargs: self._request(*args, **kwargs),
            unpickling=self)

    @property
    def _connection(self):
        """The current connection (a new one after a restart)."""
        return self._keeper.connection

    @property
    def _hello(self):
        return self._keeper.connection.hello

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
        return self._connection.closed

    def submit(self, fn, /, *args, timeout=None, lane=None, **kwargs):
        """Schedule ``fn(*args, **kwargs)`` on a pool worker.

        Returns a ``JobFuture``. Raises at once if the job cannot be
        pickled or the client is closed. ``cancel()`` on the Future stops
        the job even while it runs (see ``JobFuture``).

        ``timeout`` (seconds, counted by the daemon from when it reads the
        request) is not passed to ``fn``: past it the job is stopped and
        the Future raises ``JobTimeout``. ``lane`` overrides the client's
        (see ``Client``). A function that takes its own ``timeout`` or
        ``lane`` keyword goes through ``submit_with``.
        """
        return self._submit(fn, args, kwargs, timeout=timeout, lane=lane)

    def submit_with(self, fn, /, args=(), kwargs=None, *, timeout=None,
                    output=None, lane=None, rerun=None, wait=True):
        """``submit`` with the job's arguments and the options kept apart.

        ``args`` and ``kwargs`` go to ``fn`` untouched (a ``timeout`` key
        included); ``timeout`` is the job's deadline as in ``submit``;
        ``output``, ``lane`` and ``rerun`` override the client's settings
        for this job. ``wait=False``: if there is no room for the job (the
        connection's window is full, or the daemon's queue), raise
        ``DaemonBusy`` at once instead of waiting for room.
        """
        return self._submit(fn, tuple(args), dict(kwargs or {}),
                            timeout=timeout, output=output, lane=lane,
                            rerun=rerun, wait=wait)

    def run(self, fn, /, *args, timeout=None, lane=None, **kwargs):
        """Run ``fn(*args, **kwargs)`` in a pool worker; return its value.

        An exception raised by ``fn`` is re-raised here as the same type,
        with the remote traceback as its ``__cause__``. ``timeout`` is the
        job's deadline, as in ``submit``: past it, ``JobTimeout``. A wait
        interrupted here (Ctrl-C) cancels the job. ``lane`` overrides the
        client's (see ``Client``).
        """
        return self._wait_job(self._submit(fn, args, kwargs, timeout=timeout,
                                           lane=lane, claimed=True))

    def map(self, fn, *iterables, timeout=None, chunksize=1, lane=None):
        """``fn`` over the iterables' items, like ``Executor.map``: every
        call is sent at once, the values come back in order, lazily, and a
        call's exception is raised when its value is reached. ``timeout``
        limits the wait for all of them, counted from this call.

        ``chunksize`` calls go as one job: one frame each way, run back to
        back in one worker, each failing on its own (``_batch``). Many small
        calls go much faster so.
        """
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1")
        if chunksize == 1:
            futures = [self._submit(fn, args, {}, lane=lane)
                       for args in zip(*iterables)]
            return _batch.in_order(futures, timeout)
        futures = [self._submit(_batch.run_chunk, args, {}, lane=lane)
                   for args in _batch.chunk_args(fn, iterables, chunksize)]
        return _batch.outcomes(_batch.in_order(futures, timeout))

    def status(self, *, timeout=None):
        """Return the daemon's status document (see PROTOCOL.md) as a dict."""
        future = self._request({"type": "status"}, decode_status)
        return future.result(timeout)

    def ping(self, *, timeout=None):
        """Round-trip a ``ping``; raises if the daemon does not answer."""
        self._request({"type": "ping"}, decode_ping).result(timeout)

    def close(self):
        """Close the connection, for good. Idempotent.

        Requests still waiting fail with ``DaemonConnectionError``; the
        daemon drops their queued jobs and ends this connection's leases.
        """
        self._keeper.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__} {self._socket_path!r} {state}>"

    # -- used by Interpreter, the executor and Queue -------------------------

    def _submit(self, fn, args, kwargs, *, lease=None, timeout=None,
                output=None, lane=None, rerun=None, wait=True, claimed=False,
                room=True):
        """Send one ``run`` request, optionally on a lease; return a Future.

        A lease's jobs run where the lease is: ``lane`` does not apply.
        ``room=False``: when the connection's window is full, ``DaemonBusy``
        at once rather than a wait for a reply (which a thread that reads
        replies, sending from a done callback, would wait for forever); the
        same for a job that would wait for the socket itself (large data,
        a large payload, definitions to send first), which such a thread
        must not either: the caller sends it from a thread that may wait.
        """
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        connection = self._keeper.current()  # reconnects if the daemon left
        room_wait = wait and room
        if (lease is None and timeout is None and output is None
                and lane is None and rerun is None and wait):
            header = dict(self._run_header)  # the client's own options
        else:
            header = {"type": "run"}
            if lease is not None:
                if self._keeper.lease_ended(lease):
                    raise RemoteError(
                        f"lease {lease} has ended: the connection it was "
                        f"granted on ended (the daemon stopped or restarted)",
                        code="lease_lost")
                header["lease"] = lease
            add_options(header, timeout,
                        self._output if output is None else output,
                        "auto" if lease is not None
                        else check_lane(self._lane if lane is None else lane),
                        self._rerun if rerun is None else rerun, wait)
        collector = None
        minimum = _shm.out_of_band_min(
            args, kwargs,
            lease is None and (self._lane if lane is None else lane) == "process",
            connection.process_modules)
        if minimum:
            args, kwargs = _shm.wrap_large(args, kwargs, minimum)
            collector = _shm.Collector(minimum)
        job = dump_job(fn, args, kwargs, bytecode_check(connection.hello),
                       collector)
        if not room and ((collector is not None and collector.buffers)
                         or connection.sends_at_once(job.payload)
                         or (job.definitions and self._keeper.definitions
                             .lacks(job.definitions))):
            raise DaemonBusy("job not sent from this thread: sending it "
                             "would wait for the socket", code="busy")
        if not job.definitions and (collector is None
                                    or not collector.buffers):
            return self._send_run(connection, header, job.payload, room_wait,
                                  -1, claimed, False)  # the common case
        if collector is None or not collector.buffers:
            return self._send_job(connection, header, job, fn, room_wait,
                                  claimed=claimed)
        # Large buffers go in a memory file (PROTOCOL.md, "Large data").
        with connection.large_data(header, collector.buffers) as (fd, region):
            return self._send_job(connection, header, job, fn, room_wait,
                                  fd=fd, claimed=claimed, region=region)

    def _send_job(self, connection, header, job, fn, wait, *, fd=-1,
                  claimed=False, region=False):
        """Send a ``run`` request (``header``, with its options) on
        ``connection``, after the definitions it uses; return its
        JobFuture."""
        if not job.definitions:
            return self._send_run(connection, header, job.payload, wait, fd,
                                  claimed, region)
        header["uses"] = [d.digest for d in job.definitions]
        return self._keeper.definitions.run_with(
            job.definitions, describe(fn),
            functools.partial(self._send_run, connection, header, job.payload,
                              wait, fd, claimed, region))

    def _send_run(self, connection, header, payload, wait, fd, claimed,
                  region):
        # The connection's window: wait for room (or refuse at once).
        connection.take_room(wait, self._submit_timeout)
        # On the connection _submit looked at (not current() again: one
        # peek at the socket per job is enough).
        future = connection.request(header, decode_result, payload,
                                    future=JobFuture(running=True), fd=fd,
                                    claimed=claimed, region=region)
        # The stopper names the job by id, not by its Future: a Future
        # that refers to itself through its stopper is a reference cycle,
        # which would keep its result (and a shared-memory mapping the
        # result wraps, with its descriptor) alive until the garbage
        # collector runs, rather than until the caller lets go of it.
        future._set_first_stopper(self._stop_job, future.job_id)
        return future

    def _stop_job(self, job_id):
        """Stop waiting for a job and ask the daemon to stop it.

        Returns False if the job's reply came first. Runs on the thread
        that called ``cancel()``, which may be the reader (a done callback).
        Request ids are never reused, so a pending entry under ``job_id``
        is the job's own.
        """
        if not self._connection.abandon(job_id):
            return False
        try:
            self._request({"type": "cancel", "job": job_id},
                          expect_type("cancel"))
        except ExtraInterpretersError:
            pass  # The connection is gone, and its jobs with it.
        return True

    def _lease(self, lane="interpreter"):
        """Lease a dedicated interpreter (or, with ``lane="process"``, a
        worker process); return ``(lease_id, interpreter id or pid)``."""
        header = {"type": "lease"}
        if lane == "process":
            header["lane"] = "process"
        lease_id, where = self._request(header, decode_lease).result()
        return self._keeper.lease(lease_id), where

    def _release(self, lease):
        """Ask for ``lease`` to end; return a Future for the reply. A lease
        of a connection that ended has ended with it: nothing to send."""
        if self._keeper.lease_ended(lease):
            ended = concurrent.futures.Future()
            ended.set_result(None)
            return ended
        return self._request({"type": "release", "lease": lease},
                             expect_type("release"))

    def _request(self, header, decode, payload=b"", *, future=None, fd=-1,
                 claimed=False, region=False):
        """Send a request; return the Future of its reply (see
        ``Connection.request``)."""
        return self._keeper.current().request(header, decode, payload,
                                              future=future, fd=fd,
                                              claimed=claimed, region=region)

    def _wait_job(self, future):
        """The job's result, read on this thread when no other thread is
        reading; a wait interrupted here (Ctrl-C) cancels the job."""
        try:
            # On the connection it was sent on, even if another one has
            # been made since (then its answer, JobLost, is there already).
            return getattr(future, "connection", self._connection).wait(future)
        finally:
            future.cancel()  # A no-op once the job is done.

    def _abandon(self, request_id):
        """Forget a request the daemon never received: True if it was still
        pending (its Future is then left unanswered for good)."""
        return self._connection.forget(request_id)


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


def run(fn, /, *args, timeout=None, lane=None, **kwargs):
    """Call ``fn(*args, **kwargs)`` in the daemon at the default socket.

    Uses one shared ``Client`` per socket path, connected on first use and
    again after its connection ended. ``timeout`` is the job's deadline
    and ``lane`` where it runs, as in ``Client.run``.
    """
    return _default_client().run(fn, *args, timeout=timeout, lane=lane,
                                 **kwargs)
