"""A ``Client``'s connection across daemon restarts.

The first connection is made at once (no daemon: ``DaemonConnectionError``
from the constructor). When a connection ends for any reason but
``close()``, the jobs in flight fail with ``JobLost`` (``_connection``),
and the next call opens a new one, trying again with a growing pause until
``reconnect_timeout`` has passed::

    call ----> current(): open? ----yes----> that connection
                 | no (the daemon went away)
                 v
               connect, hello ----fails----> wait 0.05, 0.1 ... 1 s; again,
                 |                           up to reconnect_timeout:
                 v                           DaemonConnectionError
               a new generation: what belonged to the old connection
               (its leases, by-value definitions, anonymous queues, memory
               files) is gone, and is reported so, never used by mistake

Nothing is sent twice: a job is sent on one connection only.
"""

import threading
import time

from ._connection import Connection
from ._definitions import Definitions
from ._errors import DaemonConnectionError

__all__ = ["Backoff", "ConnectionKeeper", "DEFAULT_RECONNECT_TIMEOUT",
           "LeaseId"]

DEFAULT_RECONNECT_TIMEOUT = 30.0
_FIRST_PAUSE, _LONGEST_PAUSE = 0.05, 1.0


class Backoff:
    """The pauses between tries to reconnect, for Client and AsyncClient:
    doubling from 50 ms to 1 s, until ``timeout`` seconds of ``clock``."""

    def __init__(self, socket_path, timeout, clock):
        self._socket_path = socket_path
        self._timeout = timeout
        self._clock = clock
        self._deadline = clock() + timeout
        self._pause = _FIRST_PAUSE

    def after(self, failure):
        """The pause before the next try, after the ``DaemonConnectionError``
        ``failure``; past the timeout, raises the error that gives up."""
        if self._clock() + self._pause > self._deadline:
            raise DaemonConnectionError(
                self._socket_path,
                f"{failure.reason}; still so after trying to reconnect "
                f"for {self._timeout:g} s") from None
        pause, self._pause = self._pause, min(self._pause * 2, _LONGEST_PAUSE)
        return pause


class LeaseId(int):
    """A lease id (it goes on the wire as the number), and which of the
    client's connections granted it: a new daemon numbers leases afresh,
    so a lease of an older connection must never be sent on a newer one."""

    generation = 0


class ConnectionKeeper:
    """The current ``Connection`` of a client, and its ``Definitions``.

    ``request`` and ``unpickling`` are the Client's (``Definitions`` sends
    through ``request``; Queues in replies use ``unpickling``).
    """

    def __init__(self, socket_path, connect_timeout, reconnect_timeout, *,
                 request, unpickling):
        self._socket_path = socket_path
        self._connect_timeout = connect_timeout
        self._reconnect_timeout = reconnect_timeout
        self._request = request
        self._unpickling = unpickling
        self._lock = threading.Lock()  # Guards everything below.
        self._closed = False
        self.generation = 0  # Counts the connections made so far, less one.
        self.connection, self.definitions = self._open()

    def current(self):
        """The connection to use now, made anew if the last one ended."""
        connection = self.connection
        if not connection.peer_gone():  # the common case: no lock
            return connection
        with self._lock:
            if not self.connection.peer_gone():
                return self.connection
            if self._closed:
                raise DaemonConnectionError(self._socket_path, "client closed",
                                            connected=True)
            failure = self.connection.failure()
            if not isinstance(failure, DaemonConnectionError):
                raise failure  # a broken protocol: no second try
            self.connection, self.definitions = self._reopen()
            self.generation += 1
            return self.connection

    def close(self):
        with self._lock:
            self._closed = True
            connection = self.connection
        connection.close()

    def lease(self, lease_id):
        """A lease granted on the current connection, as a ``LeaseId``."""
        lease = LeaseId(lease_id)
        lease.generation = self.generation
        return lease

    def lease_ended(self, lease):
        """Whether ``lease`` (a ``LeaseId``) was granted on a connection
        that has ended: it ended with it."""
        if not isinstance(lease, LeaseId):
            return False  # a plain number: the daemon says what it is
        with self._lock:
            return lease.generation != self.generation or self.connection.closed

    def _open(self, first_id=1):
        definitions = Definitions(
            self._request, lambda job_id, job: job.connection.abandon(job_id, job))
        connection = Connection(self._socket_path, self._connect_timeout,
                                unpickling=self._unpickling,
                                explain=definitions.explain, first_id=first_id)
        return connection, definitions

    def _reopen(self):
        """Connect again, pausing longer between tries, until the
        reconnect timeout; the last failure says why."""
        backoff = Backoff(self._socket_path, self._reconnect_timeout,
                          time.monotonic)
        while True:
            try:
                return self._open(self.connection.next_id)
            except DaemonConnectionError as exc:
                pause = backoff.after(exc)
            time.sleep(pause)
