"""``Receiver``: the reading side of one ``Connection``.

One thread at a time reads the socket and dispatches every reply it
completes: whoever holds the read lock. A caller of ``wait()`` reads for
itself while the socket is free (its reply then reaches it without a
hand-off between threads); the reader thread, started by the first request
that nobody waits for that way, reads only while such a request is
pending::

    caller in wait()           Receiver                    reader thread
    ----------------           --------                    -------------
    read lock free?  -------> read_once: recv, decode,
      yes: read for itself      dispatch each frame
      no: wait on `turn`  <--- notify `turn` after each      waits on `work`
                               read and when the lock       until a request
                               is let go                    nobody claims,
                                                            then reads

Two conditions on the connection's lock, so that a caller does not wake
the reader thread for nothing. Frames that come with a descriptor (large
results, ``_fdpass``) get their mapped views here; which file may be
written again is ``_regions``' business.
"""

import collections
import os
import threading

from . import _codec, _fdpass, _session, _shm
from ._errors import ProtocolError

__all__ = ["Receiver"]


class Receiver:
    """Reads replies for ``connection`` and hands them to its pending table.

    Uses the connection's lock (``_lock``), table (``_pending``), regions,
    socket and ``_shutdown``; the connection creates it after those.
    """

    def __init__(self, connection):
        self._connection = connection
        lock = connection._lock
        self.read_lock = threading.Lock()
        # Callers in wait() and take_room() wait on turn: notified when the
        # read lock is let go and after each read.
        self.turn = threading.Condition(lock)
        # The reader thread waits on work: notified when a request nobody
        # reads for arrives, and at shutdown.
        self.work = threading.Condition(lock)
        self._reader_waits = False  # in work.wait_for; under the lock
        self.thread = None  # the reader thread, once started; under the lock
        self.decoder = _codec.FrameDecoder(connection.limits)  # the reading thread's
        self._received_fds = collections.deque()  # SCM_RIGHTS, not yet used
        # Every read lands here (_fdpass.receive_into).
        self._recv_view = memoryview(bytearray(_session.RECV_SIZE))

    def unclaimed(self):
        """A request nobody reads for was registered (the lock held): the
        reader thread is woken, or started."""
        if self._reader_waits:
            self.work.notify()
        if self.thread is None:
            self.thread = threading.Thread(
                target=self._read_loop, daemon=True,
                name=f"extrainterpreters-reader {self._connection.socket_path}")
            self.thread.start()

    def wake_all(self):
        """The connection ended (the lock held): every waiter looks again."""
        self.turn.notify_all()
        self.work.notify_all()

    def wait(self, future):
        """``future.result()``, reading replies on the calling thread while
        the socket is free."""
        connection = self._connection
        watched = False
        while not future.done():
            if self.read_lock.acquire(blocking=False):
                try:
                    while not future.done() and not connection.closed:
                        if not self.read_once():
                            break
                finally:
                    self.read_lock.release()
                    self.notify_turn()
                break
            if not watched:  # another thread reads: it may answer this one
                future.add_done_callback(self.notify_turn)
                watched = True
            with self.turn:
                self.turn.wait_for(lambda: future.done()
                                   or not self.read_lock.locked())
        return future.result()

    def _read_loop(self):
        """The reader thread: reads while some pending request has no caller
        reading for it, then waits for such a request again."""
        connection = self._connection
        while True:
            with self.work:
                self._reader_waits = True
                self.work.wait_for(lambda: connection._closed_error is not None
                                   or connection._pending.unclaimed())
                self._reader_waits = False
            with self.read_lock:
                if connection.closed or not self.read_once():
                    break
            self.notify_turn()
        connection._finish()

    def read_once(self):
        """One recv and the frames it completes; the read lock held.

        Returns False once the connection has ended, every waiting Future
        having failed with the reason.
        """
        connection = self._connection
        try:
            size = _fdpass.receive_into(connection._sock, self._recv_view,
                                        self._received_fds)
            if not size:
                connection._shutdown(_session.eof_error(
                    connection.socket_path, self.decoder))
                return False
            # The decoder copies what it keeps out of the reused buffer.
            for frame in self.decoder.feed(self._recv_view[:size]):
                self._dispatch_with_fd(frame)
            return True
        except ProtocolError as exc:
            connection._shutdown(_session.same_protocol_error(exc))
        except OSError as exc:
            connection._shutdown(connection._lost(f"connection lost: {exc}"))
        return False

    def notify_turn(self, *_):
        with self.turn:
            self.turn.notify_all()

    def close_fds(self):
        """Closes the descriptors that came without their frame (the
        connection is closing, the read lock held)."""
        while self._received_fds:
            os.close(self._received_fds.popleft())

    def _dispatch_with_fd(self, frame):
        """Dispatch ``frame``, giving it the descriptor it came with, which
        is closed afterwards (mappings made from it keep their own)."""
        header = frame.header
        if header.get("fd") is not True:
            self._dispatch(frame)
            return
        if not self._received_fds:
            raise ProtocolError(f"daemon sent a frame with \"fd\": true but no "
                                f"file descriptor: {frame.header!r:.300}")
        regions = self._connection._regions
        fd = self._received_fds.popleft()
        region = header.get("region") is True  # the daemon's result region
        try:
            lengths = header.get("oob") or []
            views = (regions.result_views(fd, lengths) if region
                     else _shm.map_views(fd, lengths))
        except (OSError, ValueError, TypeError) as exc:
            views = exc  # the job's result fails with it (decode_result)
        finally:
            os.close(fd)
        self._dispatch(frame._replace(views=views))
        if isinstance(views, Exception):
            return
        # The daemon's result region is free again for its next result once
        # nothing made from it here still uses it.
        if region:
            regions.release_result(views)
        else:
            _shm.release(views)

    def _dispatch(self, frame):
        """Hand a reply to the pending table; a reply to the job that has
        the argument region gives it back first."""
        connection = self._connection
        if frame.header["type"] != "output":
            connection._regions.on_reply(frame.header)
        connection._pending.dispatch(frame)
