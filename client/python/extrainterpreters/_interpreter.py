"""``Interpreter``: a dedicated sub-interpreter in the daemon, by lease.

Unlike ``Client.run``, whose jobs go to any pool interpreter, every job of
an ``Interpreter`` runs in the same one, in order, so module globals and
``__main__`` state left by one job are there for the next. The daemon
destroys the interpreter when the lease ends: on ``close()``, or when the
connection carrying the lease closes.

A job stopped by ``cancel()`` or its ``timeout`` that does not unwind
within the daemon's grace period costs the interpreter: the daemon retires
it and the lease ends, so later jobs fail with ``RemoteError`` code
``lease_lost``.
"""

import asyncio
import threading

from ._client import Client
from ._errors import DaemonConnectionError, ExtraInterpretersError, RemoteError

__all__ = ["Interpreter"]


class Interpreter:
    """A leased interpreter; the shape of ``concurrent.interpreters``.

    ``Interpreter()`` opens its own connection to the daemon (closed again
    by ``close()``); ``Interpreter(client=c)`` leases over an existing
    ``Client`` and leaves it open. At most one job is pending at a time.
    ``output`` is passed to the ``Client`` it opens (see ``Client``).

    ``timeout`` on the run methods is the job's deadline (``JobTimeout``
    past it), not an argument of ``fn``; to pass ``fn`` a ``timeout``
    keyword, bind it with ``functools.partial``.

    ``lane="process"`` leases a worker process instead of a
    sub-interpreter: its state persists between calls the same way, every
    extension module loads in it, and ``id`` is its pid.
    """

    def __init__(self, socket_path=None, *, client=None, output=True,
                 lane="interpreter"):
        if lane not in ("interpreter", "process"):
            raise ValueError(f"an Interpreter's lane must be 'interpreter' or "
                             f"'process', not {lane!r}")
        if client is not None and socket_path is not None:
            raise TypeError("pass socket_path or client, not both")
        self._owns_client = client is None
        self._client = (Client(socket_path, output=output) if client is None
                        else client)
        self._lock = threading.Lock()  # Guards _future and _closed.
        self._future = None  # The job run_in_thread() started last.
        self._closed = False
        try:
            self._lease, self._id = self._client._lease(lane)
            self._lane = lane
        except BaseException:
            if self._owns_client:
                self._client.close()
            raise

    @property
    def id(self):
        """The daemon-side CPython interpreter id (for display)."""
        return self._id

    @property
    def lane(self):
        """``"interpreter"`` or ``"process"``: what the lease holds."""
        return self._lane

    @property
    def client(self):
        """The ``Client`` whose connection holds the lease."""
        return self._client

    def run(self, fn, /, *args, timeout=None, **kwargs):
        """Run ``fn(*args, **kwargs)`` here and return its value."""
        return self._client._wait_job(
            self._start(fn, args, kwargs, timeout, claimed=True))

    def run_in_thread(self, fn, /, *args, timeout=None, **kwargs):
        """Start ``fn(*args, **kwargs)`` here and return at once.

        Then ``done()`` tells whether it finished, ``result()`` returns
        its value or raises its exception, and ``cancel()`` stops it.
        """
        self._start(fn, args, kwargs, timeout)

    async def run_async(self, fn, /, *args, timeout=None, **kwargs):
        """Run ``fn(*args, **kwargs)`` here without blocking the event loop.

        The reply comes through the client's reader thread, so no thread
        waits for the job. Cancelling the awaiting task cancels the job:
        the daemon stops it even if it is running.
        """
        future = self._start(fn, args, kwargs, timeout)
        return await asyncio.wrap_future(future)

    def cancel(self):
        """Stop the pending job, queued or running (``JobFuture.cancel``).

        Returns False if there is none or it already finished.
        """
        with self._lock:
            future = self._future
        return future is not None and future.cancel()

    def done(self):
        """True if the job started by ``run_in_thread()`` has finished."""
        return self._last_future().done()

    def result(self, timeout=None):
        """Wait for the job started by ``run_in_thread()``; return its value.

        Raises ``TimeoutError`` if it is not done within ``timeout`` seconds.
        """
        return self._last_future().result(timeout)

    def close(self):
        """End the lease; the daemon destroys the interpreter. Idempotent.

        Waits for jobs already sent to finish (the daemon answers them
        before the release).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._client._release(self._lease).result()
        except DaemonConnectionError:
            pass  # The connection is gone, and the lease ended with it.
        except RemoteError as exc:
            if exc.code not in ("lease_lost", "unknown_lease"):
                raise  # Else the daemon had retired it already.
        finally:
            if self._owns_client:
                self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        state = "closed" if self._closed else "open"
        return (f"<{type(self).__name__} id={self._id} lease={self._lease} "
                f"{state}>")

    def _start(self, fn, args, kwargs, timeout=None, claimed=False):
        with self._lock:
            if self._closed:
                raise ExtraInterpretersError(
                    f"interpreter {self._id} is closed")
            if self._future is not None and not self._future.done():
                raise ExtraInterpretersError(
                    f"interpreter {self._id} is still running a job started "
                    f"by run_in_thread(); wait for result() first")
            future = self._client._submit(fn, args, kwargs, lease=self._lease,
                                          timeout=timeout, claimed=claimed)
            self._future = future
            return future

    def _last_future(self):
        with self._lock:
            future = self._future
        if future is None:
            raise ExtraInterpretersError(
                f"no job was started in interpreter {self._id}; call "
                f"run_in_thread() first")
        return future
