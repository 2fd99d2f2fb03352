"""The executor's ``map`` with a ``chunksize``: its chunks go on the workers'
leases, and each reply sends the next chunk on its lease.

Data flow::

    caller                 worker thread (per lease)  reading thread   daemon
    ------                 -------------------------  --------------   ------
    map(fn, items, n)
      MapRun: the chunks
      and their Futures
      a MapShare per worker  --> take a share
                                 Lane: WINDOW chunks  ------------->  run L
                                 on its lease L
                                 wait                  reply  <-----  result
                                                       settle the
                                                       chunk's Future
                                                       send the next  ->  run L
    result()  <------------------------------------------------------
                                 woken when L has nothing in flight
                                 and nothing is left to send, or when
                                 a reply needs a step that may block
                                 (lease lost: lease again, send again)

A chunk's reply, not a worker thread, sends the next one: no thread wakes
between a chunk's reply and the caller but the one that reads replies, as
in ``Client.map``. The worker keeps its lease (and its place in the pool)
for as long as its lane has chunks in flight, so ``shutdown(wait=True)``
waits for them and a lost lease is leased again by the thread that owns it.
"""

import collections
import concurrent.futures
import functools
import threading

from . import _batch
from ._errors import DaemonBusy, RemoteError
from ._future import JobFuture, failed, settle

__all__ = ["LEASE_ATTEMPTS", "WINDOW", "Chunk", "Lane", "MapRun", "MapShare"]

# Chunks in flight on one lease: enough that its interpreter has the next
# one when it ends one, whatever the round trip of a reply and a send
# (measured: 16 costs the client more CPU per chunk than 64; 128 gains
# nothing more).
WINDOW = 64
# Replies send chunks in batches of this many, so that the connection's
# writer thread wakes once per batch, not once per chunk.
REFILL = 32
# With a job ``timeout``: the daemon counts it from when it reads the
# request, so a chunk waiting behind WINDOW others on its lease could time
# out before it starts. As many as the executor sent ahead before.
TIMED_WINDOW, TIMED_REFILL = 9, 4

# How often one job is sent again after finding its lease lost (it did not
# run then, so sending it again is safe).
LEASE_ATTEMPTS = 3


class Chunk:
    """One chunk's ``run_chunk`` arguments and the Future map waits on."""

    __slots__ = ("future", "args", "started", "attempts")

    def __init__(self, args):
        self.future = JobFuture()
        self.args = args
        self.started = False  # taken once: its Future is running
        self.attempts = 0  # sends that found their lease lost


class MapRun:
    """One ``map`` call's chunks not sent yet, which its lanes share.

    A ``deque``'s ``popleft`` and ``appendleft`` are atomic: lanes, a
    shutdown and a broken pool take chunks from it without a lock, and
    each chunk goes to one of them.
    """

    def __init__(self, chunks, lanes):
        # Not the Futures: the caller lets go of each one it has read.
        self._unsent = collections.deque(chunks)
        self.lanes = lanes  # how many lanes may serve it

    def left(self):
        """How many chunks are not sent yet."""
        return len(self._unsent)

    def take(self):
        """The next chunk to send, its Future running; None when none is
        left (a chunk whose Future was cancelled is dropped)."""
        while True:
            try:
                chunk = self._unsent.popleft()
            except IndexError:
                return None
            if chunk.started:  # put back: running already
                if not chunk.future.done():
                    return chunk
            elif chunk.future.set_running_or_notify_cancel():
                chunk.started = True
                return chunk

    def put_back(self, chunk):
        """A chunk taken but not run (its lease was lost, or there was no
        room to send it) goes out first."""
        self._unsent.appendleft(chunk)

    def empty(self):
        return not self._unsent

    def cancel_unsent(self):
        """``shutdown(cancel_futures=True)``: the chunks not sent yet."""
        for chunk in self._drain():
            chunk.future._mark_cancelled()  # also wakes wait()

    def fail_unsent(self, error):
        """A broken pool: the chunks not sent yet fail with ``error``."""
        for chunk in self._drain():
            settle(chunk.future, exception=error)

    def _drain(self):
        while True:
            try:
                yield self._unsent.popleft()
            except IndexError:
                return


class MapShare:
    """A work item: "serve this map on your lease". A map queues one per
    worker, so every worker that is free joins it."""

    __slots__ = ("run",)

    def __init__(self, run):
        self.run = run

    def cancel(self):
        """``shutdown(cancel_futures=True)`` found it queued."""
        self.run.cancel_unsent()

    def fail(self, error):
        """The pool broke (or no worker could lease) before it was served."""
        self.run.fail_unsent(error)


class Lane:
    """One lease's part in one map: up to ``WINDOW`` chunks in flight, the
    replies sending the next ones (``_on_reply``, on the thread that read
    them).

    The worker that holds the lease waits in ``serve``; a reply wakes it
    only when the lane is done or needs it (``_stalled``).
    """

    def __init__(self, run, client, timeout):
        self._run = run
        self._client = client
        self._timeout = timeout
        self._window, self._refill = ((WINDOW, REFILL) if timeout is None
                                      else (TIMED_WINDOW, TIMED_REFILL))
        self._lease = None
        self._lock = threading.Lock()  # Guards everything below.
        self._changed = threading.Condition(self._lock)
        self._in_flight = 0
        # A reply or a send needed the worker (an error, a cancel, no room
        # in the connection's window): replies send no more chunks until
        # the worker sends again.
        self._stalled = False
        self._lost = []  # Chunks sent on a lease that was lost.

    def serve(self, lease):
        """Send the map's chunks on ``lease`` until none is left and none
        is in flight; return the chunks that found the lease lost (to be
        sent again on a new lease), or an empty list."""
        with self._lock:
            self._lease = lease
            self._stalled = False
        while True:
            self._fill()
            with self._changed:
                self._changed.wait_for(
                    lambda: self._in_flight == 0 or self._stalled)
                if self._lost:
                    # The other chunks on the lost lease come back lost
                    # too (or answered, or stopped): all of them first.
                    self._changed.wait_for(lambda: self._in_flight == 0)
                    lost, self._lost = self._lost, []
                    return lost
                if self._in_flight == 0 and self._run.empty():
                    return []
                self._stalled = False

    def _fill(self):
        """Send chunks up to the window from the worker's thread, where a
        send may wait for room."""
        with self._lock:
            if self._stalled:
                return
            chunks = self._take(self._window - self._in_flight)
        self._send_all(chunks, room=True)

    def _send(self, chunk, room):
        """Send ``chunk`` on the lease (``_in_flight`` counts it already);
        False if that stalled the lane."""
        try:
            job = self._client._submit(_batch.run_chunk, chunk.args, {},
                                       lease=self._lease,
                                       timeout=self._timeout, room=room)
        except DaemonBusy:  # the window is full: the worker sends it
            self._run.put_back(chunk)
            self._ended(lost=None, stall=True)
            return False
        except RemoteError as exc:  # the lease ended with its connection
            job = failed(exc)
        except BaseException as exc:  # It does not pickle, say.
            settle(chunk.future, exception=exc)
            self._ended(lost=None, stall=True)
            return False
        chunk.future._set_stopper(job.cancel)
        job.add_done_callback(functools.partial(self._on_reply, chunk))
        return True

    def _on_reply(self, chunk, job):
        """Settle the chunk's Future; send the next chunk if all is well.
        Runs on the thread that read the reply (or cancelled the job)."""
        future = chunk.future
        lost = None
        try:
            value = job.result()
        except concurrent.futures.CancelledError:
            future._mark_cancelled()  # By the caller, or by the daemon.
        except RemoteError as exc:
            chunk.attempts += 1
            if (exc.code == "lease_lost"
                    and chunk.attempts < LEASE_ATTEMPTS):
                lost = chunk
            else:
                settle(future, exception=exc)
        except BaseException as exc:
            settle(future, exception=exc)
        else:
            settle(future, value=value)
            # The job (and its result) goes once nobody refers to it: the
            # chunk's Future, done, no longer does.
            future._stopper = None
            self._next()
            return
        with future._condition:  # it may still be cancelled
            future._stopper = None
        self._ended(lost, stall=True)

    def _next(self):
        """A chunk answered: once ``REFILL`` have, send as many."""
        with self._lock:
            self._in_flight -= 1
            if self._stalled or self._in_flight > self._window - self._refill:
                if self._in_flight == 0:
                    self._changed.notify()
                return
            chunks = self._take(self._window - self._in_flight)
            if not chunks:
                if self._in_flight == 0:
                    self._changed.notify()
                return
        self._send_all(chunks, room=False)

    def _take(self, count):
        """Up to ``count`` chunks to send, counted in flight; lock held.

        No more than this lane's share of what is left, so that the lane
        that leased first does not take a short map from the others.
        """
        count = min(count, -(-self._run.left() // self._run.lanes))
        chunks = []
        while len(chunks) < count:
            chunk = self._run.take()
            if chunk is None:
                break
            chunks.append(chunk)
        self._in_flight += len(chunks)
        return chunks

    def _send_all(self, chunks, room):
        """Send ``chunks``; after one that stalled the lane, the rest go
        back to the map for the worker to send."""
        for index, chunk in enumerate(chunks):
            if not self._send(chunk, room):
                rest = chunks[index + 1:]
                for other in reversed(rest):
                    self._run.put_back(other)
                with self._lock:
                    self._in_flight -= len(rest)
                    self._changed.notify()
                return

    def _ended(self, lost, stall):
        """A chunk is out of flight; ``stall``: wake the worker to go on."""
        with self._lock:
            self._in_flight -= 1
            if lost is not None:
                self._lost.append(lost)
            if stall:
                self._stalled = True
            self._changed.notify()
