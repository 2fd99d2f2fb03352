"""``InterpreterPoolExecutor``: ``concurrent.futures`` over leased interpreters.

Data flow::

    caller threads          executor             worker threads        daemon
    --------------          --------             --------------        ------
                                                 (started lazily, one per
                                                  max_workers; each leases
                                                  its own interpreter)
                                                 lease  ----------->  lease L
                                                 initializer on L  -> run L
    submit(fn, *args)
      new JobFuture
      _WorkItem  ----->  work queue  ----------> get item
                                                 set_running
                                                 run on lease L  --->  run L
                                                 wait for reply  <---  result
    result()  <-------------------------------- set the JobFuture
    shutdown()  ---->  None (wake-up)  -------> release L  -------->  release
                                                 last one out closes
                                                 the client

All workers share one ``Client`` (one connection, one reader thread). A
worker owns one lease for its whole life, so ``initializer(*initargs)`` runs
once per interpreter and the module state it leaves is there for every
later job of that worker, as in CPython's ``InterpreterPoolExecutor``.

Futures are ``JobFuture``s: standard ``concurrent.futures.Future``s whose
``cancel()`` also stops a job that is already running (the worker attaches
the running job's own ``cancel`` as the stopper).

A job stopped by cancel or timeout that does not unwind costs its
interpreter (the daemon retires it): its worker's next job gets
``lease_lost`` without having run, so the worker leases a fresh interpreter,
runs the initializer there and sends that job again.
"""

import concurrent.futures
import functools
import itertools
import queue
import threading
import weakref

from ._client import Client
from ._errors import BrokenInterpreterPool, RemoteError
from ._future import JobFuture, settle

__all__ = ["InterpreterPoolExecutor"]

# A chunk of map() runs as one job. eval of a fixed expression keeps the job
# made of things the daemon can import (builtins.eval, functools.partial)
# even where this package is not installed in the daemon's interpreters.
_CHUNK_EXPRESSION = "[fn(*args) for args in chunk]"
_run_chunk = functools.partial(eval, _CHUNK_EXPRESSION)

# How often one job is sent again after finding its lease lost (it did not
# run then, so sending it again is safe).
_LEASE_ATTEMPTS = 3

_global_shutdown = False
_live_pools = weakref.WeakSet()  # _PoolState of executors not shut down.


def _python_exit():
    """At interpreter exit: let workers finish queued work, then join them.

    Registered with ``threading._register_atexit`` like ThreadPoolExecutor,
    so it runs before non-daemon threads are joined.
    """
    global _global_shutdown
    _global_shutdown = True
    pools = list(_live_pools)
    for pool in pools:
        pool.work_queue.put(None)
    for pool in pools:
        for thread in list(pool.threads):
            thread.join()


try:
    threading._register_atexit(_python_exit)
except AttributeError:  # Not CPython 3.9+: fall back to daemon workers.
    _DAEMON_THREADS = True
else:
    _DAEMON_THREADS = False


class _WorkItem:
    __slots__ = ("future", "fn", "args", "kwargs")

    def __init__(self, future, fn, args, kwargs):
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs


class _PoolState:
    """What the workers share with the executor, without keeping it alive
    (so a dropped executor shuts down, as ThreadPoolExecutor does)."""

    def __init__(self, client, timeout, initializer, initargs, lane):
        self.client = client
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

    def shutting_down(self):
        return _global_shutdown or self.shutdown

    def break_pool(self, message, cause):
        """Fail every queued job and refuse new ones (first caller wins)."""
        error = BrokenInterpreterPool(message)
        error.__cause__ = cause
        with self.lock:
            if self.broken is None:
                self.broken = error
            error = self.broken
        for item in _drain(self.work_queue):
            settle(item.future, exception=error)
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


class InterpreterPoolExecutor(concurrent.futures.Executor):
    """An ``Executor`` whose workers are interpreters leased from the daemon.

    ``max_workers`` defaults to the daemon's worker count (its ``hello``).
    Worker threads, named ``thread_name_prefix`` plus a number, start as
    jobs arrive; each leases a dedicated interpreter and runs
    ``initializer(*initargs)`` there before its first job. If an
    initializer raises, the executor is broken: its queued futures and
    later ``submit`` calls raise ``BrokenInterpreterPool``.

    ``timeout`` is the default deadline (seconds) of every job, enforced
    by the daemon (``JobTimeout``); ``map(timeout=...)`` keeps its standard
    meaning, a limit on the caller's wait. ``output`` is as for ``Client``.
    ``cancel()`` on a returned Future stops the job even when it is running.

    ``lane="process"`` makes each worker lease a worker process of the
    daemon instead of a sub-interpreter (for numpy, pandas and other
    libraries that refuse sub-interpreters); ``max_workers`` then defaults
    to the daemon's ``max_process_workers``.

    Connects to the daemon at once, so a missing daemon raises here.
    """

    def __init__(self, max_workers=None, thread_name_prefix="",
                 initializer=None, initargs=(), *, socket_path=None,
                 timeout=None, output=True, lane="interpreter"):
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if lane not in ("interpreter", "process"):
            raise ValueError(f"an InterpreterPoolExecutor's lane must be "
                             f"'interpreter' or 'process', not {lane!r}")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        client = Client(socket_path, output=output)
        if max_workers is None and lane == "process":
            max_workers = client.hello.get("limits", {}).get(
                "max_process_workers") or 1
        elif max_workers is None:
            max_workers = client.hello.get("workers") or 1
        self._max_workers = max_workers
        self._thread_name_prefix = (thread_name_prefix
                                    or f"InterpreterPoolExecutor-{id(self)}")
        self._state = _PoolState(client, timeout, initializer, tuple(initargs),
                                 lane)
        self._shutdown_lock = threading.Lock()
        self._counter = itertools.count()
        _live_pools.add(self._state)
        state = self._state
        self._weakref = weakref.ref(self, lambda _: _wake_on_drop(state))

    @property
    def client(self):
        """The ``Client`` the workers share."""
        return self._state.client

    def submit(self, fn, /, *args, **kwargs):
        """Schedule ``fn(*args, **kwargs)``; return a ``JobFuture``."""
        state = self._state
        with self._shutdown_lock:
            future = JobFuture()
            with state.lock:  # break_pool drains only after it sets broken.
                if state.broken is not None:
                    raise BrokenInterpreterPool(str(state.broken)) from (
                        state.broken.__cause__)
                if state.shutdown:
                    raise RuntimeError("cannot schedule new futures after "
                                       "shutdown")
                if _global_shutdown:
                    raise RuntimeError("cannot schedule new futures after "
                                       "interpreter shutdown")
                state.work_queue.put(_WorkItem(future, fn, args, kwargs))
            self._adjust_thread_count()
            return future

    def map(self, fn, *iterables, timeout=None, chunksize=1):
        """Like ``Executor.map``; ``chunksize`` items go as one job.

        The iterables are consumed at once; results are yielded in order
        as they are needed. ``timeout`` limits the wait for them, counted
        from this call.
        """
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if chunksize == 1:
            return super().map(fn, *iterables, timeout=timeout)
        chunks = ({"fn": fn, "chunk": chunk}
                  for chunk in _chunks(zip(*iterables), chunksize))
        return _flatten(super().map(_run_chunk, chunks, timeout=timeout))

    def shutdown(self, wait=True, *, cancel_futures=False):
        """Stop taking jobs; with ``wait``, wait for queued jobs to finish.

        ``cancel_futures`` cancels the jobs not started yet. Every worker
        releases its lease when the queue is empty; the connection closes
        after the last worker is gone.
        """
        state = self._state
        with self._shutdown_lock:
            with state.lock:
                state.shutdown = True
            if cancel_futures:
                for item in _drain(state.work_queue):
                    item.future.cancel()
                    # Wakes wait() and as_completed() on it.
                    item.future.set_running_or_notify_cancel()
            state.work_queue.put(None)
            with state.lock:
                no_workers = state.live_workers == 0
        if no_workers:
            state.close_client()
        if wait:
            for thread in list(state.threads):
                thread.join()
            state.close_client()

    def _adjust_thread_count(self):
        state = self._state
        if state.idle.acquire(timeout=0):
            return  # An idle worker will take the job.
        with state.lock:
            if len(state.threads) >= self._max_workers:
                return
            state.live_workers += 1
        name = f"{self._thread_name_prefix}_{next(self._counter)}"
        thread = threading.Thread(name=name, target=_Worker(state).run,
                                  daemon=_DAEMON_THREADS)
        state.threads.add(thread)
        thread.start()


class _Worker:
    """One worker thread and the lease it holds."""

    def __init__(self, state):
        self._state = state
        self._client = state.client
        self._lease = None

    def run(self):
        state = self._state
        try:
            if not self._start_interpreter():
                return
            while True:
                item = state.work_queue.get()
                if item is None:
                    state.work_queue.put(None)  # Wake the next worker too.
                    if state.shutting_down() or state.broken is not None:
                        return
                    continue
                if not self._run_item(item):
                    return
                del item
                state.idle.release()
        finally:
            self._end_lease()
            state.worker_exited()

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

    def _run_item(self, item):
        """Run one job on this worker's lease; False if the pool broke."""
        future = item.future
        if not future.set_running_or_notify_cancel():
            return True  # Cancelled while queued.
        for attempt in range(_LEASE_ATTEMPTS):
            try:
                job = self._client._submit(item.fn, item.args, item.kwargs,
                                           lease=self._lease,
                                           timeout=self._state.timeout)
            except BaseException as exc:  # It does not pickle, say.
                settle(future, exception=exc)
                return True
            future._set_stopper(job.cancel)
            try:
                value = job.result()
            except concurrent.futures.CancelledError:
                future._mark_cancelled()  # By us, or by the daemon.
                return True
            except RemoteError as exc:
                if (exc.code != "lease_lost"
                        or attempt == _LEASE_ATTEMPTS - 1):
                    settle(future, exception=exc)
                    return True
                self._end_lease()
                if not self._start_interpreter():
                    settle(future, exception=self._state.broken or exc)
                    return False
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


def _wake_on_drop(state):
    """The executor was garbage collected: let its workers exit."""
    state.shutdown = True
    state.work_queue.put(None)


def _drain(work_queue):
    """Take every work item out of ``work_queue`` (not the wake-ups)."""
    items = []
    while True:
        try:
            item = work_queue.get_nowait()
        except queue.Empty:
            return items
        if item is not None:
            items.append(item)


def _chunks(iterator, size):
    iterator = iter(iterator)
    while True:
        chunk = tuple(itertools.islice(iterator, size))
        if not chunk:
            return
        yield chunk


def _flatten(chunk_results):
    """Yield the items of each chunk's list, freeing each as it goes."""
    for chunk in chunk_results:
        chunk.reverse()
        while chunk:
            yield chunk.pop()
