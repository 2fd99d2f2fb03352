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
      WorkItem   ----->  work queue  ----------> get item
                                                 set_running
                                                 run on lease L  --->  run L
                                                 wait for reply  <---  result
    result()  <-------------------------------- set the JobFuture
    shutdown()  ---->  None (wake-up)  -------> release L  -------->  release
                                                 last one out closes
                                                 the client

``map`` with a ``chunksize`` queues a share of the map for each worker
instead of a work item per chunk: a worker that takes one sends chunks on
its lease, and each chunk's reply, on the reader thread, sends the next
(``_executor_map`` has that flow).

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
import itertools
import threading
import weakref

from . import _batch
from ._client import Client
from ._errors import BrokenInterpreterPool
from ._executor_map import Chunk, MapRun, MapShare
from ._executor_workers import (DAEMON_THREADS, PoolState, WorkItem, Worker,
                                drain, interpreter_exiting, live_pools,
                                wake_on_drop)
from ._future import JobFuture

__all__ = ["InterpreterPoolExecutor"]


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
        self._state = PoolState(client, timeout, initializer, tuple(initargs),
                                 lane, max_workers)
        self._shutdown_lock = threading.Lock()
        self._counter = itertools.count()
        live_pools.add(self._state)
        state = self._state
        self._weakref = weakref.ref(self, lambda _: wake_on_drop(state))

    @property
    def client(self):
        """The ``Client`` the workers share."""
        return self._state.client

    def submit(self, fn, /, *args, **kwargs):
        """Schedule ``fn(*args, **kwargs)``; return a ``JobFuture``."""
        return self._submit_item(fn, args, kwargs)

    def _submit_item(self, fn, args, kwargs):
        future = JobFuture()
        self._queue([WorkItem(future, fn, args, kwargs)])
        return future

    def _queue(self, items, run=None):
        """Put work items on the queue, with a worker for each if there is
        room for one; ``run``: the map they serve (see ``shutdown``)."""
        state = self._state
        with self._shutdown_lock:
            with state.lock:  # break_pool drains only after it sets broken.
                if state.broken is not None:
                    raise BrokenInterpreterPool(str(state.broken)) from (
                        state.broken.__cause__)
                if state.shutdown:
                    raise RuntimeError("cannot schedule new futures after "
                                       "shutdown")
                if interpreter_exiting():
                    raise RuntimeError("cannot schedule new futures after "
                                       "interpreter shutdown")
                if run is not None:
                    state.maps.add(run)
                for item in items:
                    state.work_queue.put(item)
            for _ in items:
                self._adjust_thread_count()

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
        # Every worker is asked to serve the map on its lease; each chunk's
        # reply sends the next chunk (_executor_map).
        chunks = [Chunk(args)
                  for args in _batch.chunk_args(fn, iterables, chunksize)]
        futures = [chunk.future for chunk in chunks]
        if chunks:
            shares = min(self._max_workers, len(chunks))
            run = MapRun(chunks, shares)
            self._queue([MapShare(run) for _ in range(shares)], run)
        return _batch.outcomes(_batch.in_order(futures, timeout))

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
                for item in drain(state.work_queue):
                    item.cancel()
                for run in list(state.maps):  # those being served too
                    run.cancel_unsent()
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
        thread = threading.Thread(name=name, target=Worker(state).run,
                                  daemon=DAEMON_THREADS)
        state.threads.add(thread)
        thread.start()
