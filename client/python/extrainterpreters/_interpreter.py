"""``Interpreter``: a dedicated sub-interpreter in the daemon, by lease.

Unlike ``Client.run``, whose jobs go to any pool interpreter, every job of
an ``Interpreter`` runs in the same one, in order, so module globals and
``__main__`` state left by one job are there for the next. The daemon
destroys the interpreter when the lease ends: on ``close()``, or when the
connection carrying the lease closes.
"""

import threading

from ._client import Client
from ._errors import DaemonConnectionError, ExtraInterpretersError

__all__ = ["Interpreter"]


class Interpreter:
    """A leased interpreter; the shape of ``concurrent.interpreters``.

    ``Interpreter()`` opens its own connection to the daemon (closed again
    by ``close()``); ``Interpreter(client=c)`` leases over an existing
    ``Client`` and leaves it open. At most one job is pending at a time.
    """

    def __init__(self, socket_path=None, *, client=None):
        if client is not None and socket_path is not None:
            raise TypeError("pass socket_path or client, not both")
        self._owns_client = client is None
        self._client = Client(socket_path) if client is None else client
        self._lock = threading.Lock()  # Guards _future and _closed.
        self._future = None  # The job run_in_thread() started last.
        self._closed = False
        try:
            self._lease, self._id = self._client._lease()
        except BaseException:
            if self._owns_client:
                self._client.close()
            raise

    @property
    def id(self):
        """The daemon-side CPython interpreter id (for display)."""
        return self._id

    @property
    def client(self):
        """The ``Client`` whose connection holds the lease."""
        return self._client

    def run(self, fn, /, *args, **kwargs):
        """Run ``fn(*args, **kwargs)`` here and return its value."""
        return self._start(fn, args, kwargs).result()

    def run_in_thread(self, fn, /, *args, **kwargs):
        """Start ``fn(*args, **kwargs)`` here and return at once.

        Then ``done()`` tells whether it finished and ``result()`` returns
        its value or raises its exception.
        """
        self._start(fn, args, kwargs)

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

    def _start(self, fn, args, kwargs):
        with self._lock:
            if self._closed:
                raise ExtraInterpretersError(
                    f"interpreter {self._id} is closed")
            if self._future is not None and not self._future.done():
                raise ExtraInterpretersError(
                    f"interpreter {self._id} is still running a job started "
                    f"by run_in_thread(); wait for result() first")
            future = self._client._submit(fn, args, kwargs, lease=self._lease)
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
