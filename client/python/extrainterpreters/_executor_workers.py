"""The worker threads of ``InterpreterPoolExecutor`` and what they share.

Each worker thread (``Worker``) leases its own interpreter (or worker
process), runs the initializer there, then takes work items from the
executor's queue until shutdown (a map's share: serves the map on its
lease, ``_executor_map``); ``PoolState`` is what the workers share
with the executor without keeping it alive. ``_executor`` has the data-flow
diagram.
"""

import concurrent.futures
import queue
import threading
import weakref

from ._errors import BrokenInterpreterPool, RemoteError
from ._executor_map import LEASE_ATTEMPTS, Lane, MapShare
from ._future import failed, settle

__all__ = ["DAEMON_THREADS", "PoolState", "WorkItem", "Worker", "drain",
           "interpreter_exiting", "live_pools", "wake_on_drop"]

_global_shutdown = False
live_pools = weakref.WeakSet()  # PoolState of executors not shut down.


def _python_exit():
    """At interpreter exit: let workers finish queued work, then join them.

    Registered with ``threading._register_atexit`` like ThreadPoolExecutor,
    so it runs before non-daemon threads are joined.
    """
    global _global_shutdown
    _global_shutdown = True
    pools = list(live_pools)
    for pool in pools:
        pool.work_queue.put(None)
    for pool in pools:
        for thread in list(pool.threads):
            thread.join()


try:
    threading._register_atexit(_python_exit)
except AttributeError:  # Not CPython 3.9+: fall back to daemon workers.
    DAEMON_THREADS = True
else:
    DAEMON_THREADS = False


class WorkItem:
    __slots__ = ("future", "fn", "args", "kwargs", "claimed")

    def __init__(self, future, fn, args, kwargs):
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.claimed = False  # a worker took it: its Future is running

    def cancel(self):
        """``shutdown(cancel_futures=True)`` found it queued."""
        if self.claimed:
            # Taken by a worker that got no lease and put back (its Future
            # running): it never ran, and no worker will take it now.
            self.future._mark_cancelled()
        elif self.future.cancel():
            self.future.set_running_or_notify_cancel()  # wakes wait() on it

    def fail(self, error):
        """The pool broke before it ran."""
        settle(self.future, exception=error)


class PoolState:
    """What the workers share with the executor, without keeping it alive
    (so a dropped executor shuts down, as ThreadPoolExecutor does)."""

    def __init__(self, client, timeout, initializer, initargs, lane,
                 max_workers):
        self.client = client
        self.max_workers = max_workers
        self.lane = lane
        self.timeout = timeout
        self.initializer = initializer
        self.initargs = initargs
        self.work_queue = queue.SimpleQueue()
        self.idle = threading.Semaphore(0)
        self.lock = threading.Lock()  # Guards everything below.
        self.threads = set()
        self.live_workers = 0  # Started and not yet gone.
        self.leased_workers = 0  # Holding a lease right now.
        self.shutdown = False
        self.broken = None  # The BrokenInterpreterPool, once broken.
        self.client_closed = False
        # The map runs with chunks not sent yet, for shutdown and
        # break_pool (_executor_map).
        self.maps = weakref.WeakSet()

    def shutting_down(self):
        return _global_shutdown or self.shutdown

    def break_pool(self, message, cause):
        """Fail every queued job and refuse new ones (first caller wins)."""
        error = BrokenInterpreterPool(message)
        error.__cause__ = cause
        with self.lock:  # map() adds to maps under it
            if self.broken is None:
                self.broken = error
            error = self.broken
            runs = list(self.maps)
        for item in drain(self.work_queue):
            item.fail(error)
        for run in runs:
            run.fail_unsent(error)
        self.work_queue.put(None)  # Wake the others, which then exit.

    def worker_exited(self):
        with self.lock:
            self.live_workers -= 1
            close = self.shutdown and self.live_workers == 0
        if close:
            self.close_client()

    def close_client(self):
        with self.lock:
            if self.client_closed:
                return
            self.client_closed = True
        self.client.close()


class Worker:
    """One worker thread and the lease it holds."""

    def __init__(self, state):
        self._state = state
        self._client = state.client
        self._lease = None

    # A worker takes a work item before it has a lease, as a thread pool's
    # worker takes one at once: from then on the job has started, so
    # shutdown(cancel_futures=True) lets it finish, as the standard says,
    # however long the lease takes.
    def run(self):
        state = self._state
        try:
            while True:
                item = state.work_queue.get()
                if item is None:
                    state.work_queue.put(None)  # Wake the next worker too.
                    if state.shutting_down() or state.broken is not None:
                        return
                    continue
                if type(item) is MapShare:
                    if not self._serve(item):
                        return
                    del item
                    state.idle.release()
                    continue
                if not item.claimed:
                    if not item.future.set_running_or_notify_cancel():
                        continue  # cancelled while queued
                    item.claimed = True
                if self._lease is None and not self._start_interpreter():
                    self._hand_over(item)
                    return
                if not self._finish(item, self._send(item)):
                    return
                del item
                state.idle.release()
        finally:
            self._end_lease()
            state.worker_exited()

    def _hand_over(self, item):
        """This worker got no lease: a broken pool fails the item; a full
        daemon leaves it to the workers that have one."""
        state = self._state
        if state.broken is not None:
            item.fail(state.broken)
        else:
            state.work_queue.put(item)

    def _serve(self, share):
        """Send a map's chunks on this worker's lease until none is left
        (``_executor_map.Lane``); a lost lease is leased again and its
        chunks sent again. False if the pool broke or no lease was had."""
        run = share.run
        if self._lease is None and not self._start_interpreter():
            self._hand_over(share)
            return False
        lane = Lane(run, self._client, self._state.timeout)
        while True:
            lost = lane.serve(self._lease)
            if not lost:
                return True
            # Sent again first, by whichever lane is free first.
            for chunk in reversed(lost):
                run.put_back(chunk)
            self._end_lease()
            if not self._start_interpreter():
                self._hand_over(share)
                return False

    def _start_interpreter(self):
        """Lease an interpreter and run the initializer; False if broken."""
        state = self._state
        try:
            self._lease, _ = self._client._lease(state.lane)
        except RemoteError as exc:
            with state.lock:
                others = state.leased_workers
            if exc.code == "lease_limit" and others:
                return False  # The daemon is full: run with fewer workers.
            state.break_pool(f"a worker could not lease an interpreter: "
                             f"{exc}", exc)
            return False
        except Exception as exc:
            state.break_pool(f"a worker could not lease an interpreter: "
                             f"{exc}", exc)
            return False
        with state.lock:
            state.leased_workers += 1
        if state.initializer is None:
            return True
        try:
            self._client._submit(state.initializer, state.initargs, {},
                                 lease=self._lease).result()
        except BaseException as exc:
            state.break_pool("a worker interpreter's initializer failed; "
                             "the pool is not usable any more", exc)
            return False
        return True

    def _send(self, item):
        """Send ``item``'s job on the lease: ``(job, lease)``, or None when
        it failed before it was sent (its Future then has the error)."""
        try:
            job = self._client._submit(item.fn, item.args, item.kwargs,
                                       lease=self._lease,
                                       timeout=self._state.timeout)
        except RemoteError as exc:  # the lease ended with its connection
            job = failed(exc)
        except BaseException as exc:  # It does not pickle, say.
            settle(item.future, exception=exc)
            return None
        item.future._set_stopper(job.cancel)
        return job, self._lease

    def _finish(self, item, sent):
        """Wait for ``item``'s job and settle its Future; a job that found
        its lease lost (it did not run) is sent again on a new lease. False
        if the pool broke."""
        future = item.future
        for attempt in range(LEASE_ATTEMPTS):
            if sent is None:
                return True
            job, lease = sent
            try:
                value = job.result()
            except concurrent.futures.CancelledError:
                future._mark_cancelled()  # By us, or by the daemon.
                return True
            except RemoteError as exc:
                if (exc.code != "lease_lost"
                        or attempt == LEASE_ATTEMPTS - 1):
                    settle(future, exception=exc)
                    return True
                if lease is self._lease:
                    self._end_lease()
                    if not self._start_interpreter():
                        settle(future, exception=self._state.broken or exc)
                        return False
                sent = self._send(item)
            except BaseException as exc:
                settle(future, exception=exc)
                return True
            else:
                settle(future, value=value)
                return True
        return True

    def _end_lease(self):
        if self._lease is None:
            return
        lease, self._lease = self._lease, None
        with self._state.lock:
            self._state.leased_workers -= 1
        try:
            self._client._release(lease).result()
        except Exception:  # noqa: BLE001 - lost lease or connection.
            pass


def interpreter_exiting():
    """True once this Python started to exit (``_python_exit`` ran)."""
    return _global_shutdown


def wake_on_drop(state):
    """The executor was garbage collected: let its workers exit."""
    state.shutdown = True
    state.work_queue.put(None)


def drain(work_queue):
    """Take every work item out of ``work_queue`` (not the wake-ups)."""
    items = []
    while True:
        try:
            item = work_queue.get_nowait()
        except queue.Empty:
            return items
        if item is not None:
            items.append(item)
