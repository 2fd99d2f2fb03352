"""``DaemonExecutor``: the executor a Dask worker runs its tasks with.

How a task gets from a Dask worker into the daemon (distributed 2026.8)::

    Dask worker (event loop)          DaemonExecutor            daemon
    ------------------------          --------------            ------
    Worker.execute(key)
      loop.run_in_executor(e,
        _run_task_simple,     ---->   submit(): the task node
        task, data, delay)            becomes a _DaemonTask
                                      waiting thread runs
                                      _run_task_simple(
                                        _DaemonTask, data, delay)
                                        _DaemonTask(data):
                                          _dask_plan.job_for  ->  run fn(*args)
                                          wait for the reply  <-  result
                                        dask's own code builds
                                        the message (timings,
                                        sizeof, error_message)
      ExecuteSuccessEvent  <--------  result / exception

Dask builds the message it expects (``_run_task_simple`` is dask's,
called here with the task replaced), so what the worker gets is what a
thread would have produced: the result, or the job's own exception (its
type, the remote traceback as ``__cause__``). Anything else the worker
runs on its default executor (disk and memory benchmarks) runs in the
waiting threads, here.

What comes back as ``distributed.Reschedule`` (the scheduler then runs the
task again, here or elsewhere) instead of as the task's error: a job
cancelled because Dask released its task (``cancel(key)``), and a job lost
with the daemon (``JobLost``: it may have run; Dask tasks are meant to be
safe to run again). If the daemon stays unreachable past
``reconnect_timeout``, ``on_daemon_lost`` is called once and from then on
every task is rescheduled at once, without a wait: the plugin's callback
closes the worker, and the scheduler moves its work to the other hosts.
(Without a callback, each task tries to reconnect in turn.)

It depends on dask's ``distributed.worker._run_task_simple`` and
``_run_task`` (the functions the worker submits), checked by name when
the executor is made.
"""

import concurrent.futures
import logging
import threading

from distributed import Reschedule
from distributed import worker as dask_worker

from . import _dask_plan
from ._client import Client
from ._errors import DaemonConnectionError, _RemoteTraceback

__all__ = ["DaemonExecutor"]

logger = logging.getLogger("extrainterpreters.dask")

# A task whose job is being sent, and one cancelled while it was.
_SENDING, _STOP = object(), object()

# The functions a Dask worker submits to run a task; their first argument
# is the task node.
_TASK_RUNNERS = tuple(getattr(dask_worker, name, None)
                      for name in ("_run_task_simple", "_run_task"))


class DaemonExecutor(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` for a Dask worker whose tasks run
    in an extrainterpretersd: ``Worker(executor=DaemonExecutor())``, or
    installed on every worker by ``ExtraInterpretersPlugin``.

    ``socket_path`` is resolved as ``Client`` resolves it, on the worker's
    host. ``lane`` and ``timeout`` (each job's deadline) are as for
    ``Client.submit``; ``reconnect_timeout`` as for ``Client``.
    ``max_threads`` threads wait for replies: as many as tasks the worker
    runs at once (its ``nthreads``). The connection is made on first use.
    """

    def __init__(self, socket_path=None, *, lane="auto", timeout=None,
                 max_threads=32, reconnect_timeout=10.0, on_daemon_lost=None):
        if None in _TASK_RUNNERS:
            raise ImportError("extrainterpreters.dask does not know this "
                              "distributed: distributed.worker has no "
                              "_run_task_simple or _run_task")
        _dask_plan.check()
        self._socket_path = socket_path
        self._lane = lane
        self._timeout = timeout
        self._reconnect_timeout = reconnect_timeout
        self._on_daemon_lost = on_daemon_lost
        self._threads = concurrent.futures.ThreadPoolExecutor(
            max_threads, thread_name_prefix="extrainterpreters-dask")
        self._connect_lock = threading.Lock()  # One connects at a time.
        self._lock = threading.Lock()  # Guards everything below.
        self._client = None
        self._jobs = {}  # task key -> JobFuture (or _SENDING, _STOP)
        self._lost = False  # on_daemon_lost was called: reschedule at once
        self._shutdown = False

    def submit(self, fn, /, *args, **kwargs):
        """Run ``fn(*args, **kwargs)``; a Dask task runner's task goes to
        the daemon, anything else runs in this executor's threads."""
        if fn in _TASK_RUNNERS and args:
            args = (_DaemonTask(args[0], self),) + args[1:]
        return self._threads.submit(fn, *args, **kwargs)

    def cancel(self, key):
        """Stop the daemon job of task ``key`` (sent, or being sent); its
        task is rescheduled. False if no job of that key is running."""
        with self._lock:
            job = self._jobs.get(key)
            if job is _SENDING:
                self._jobs[key] = _STOP  # run() cancels it once sent
                return True
        return job is not None and job is not _STOP and job.cancel()

    def connect(self):
        """Connect now (else on first use); raise DaemonConnectionError if
        the daemon cannot be reached."""
        return self._connected()

    def shutdown(self, wait=True, *, cancel_futures=False):
        """Stop taking tasks, stop the daemon jobs still running (their
        tasks are rescheduled: the worker is leaving) and close the
        connection."""
        with self._lock:
            self._shutdown = True
            jobs = [job for job in self._jobs.values()
                    if job is not _SENDING and job is not _STOP]
        for job in jobs:
            job.cancel()
        self._threads.shutdown(wait, cancel_futures=cancel_futures)
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __repr__(self):
        return f"<{type(self).__name__} {self._socket_path or 'default'!r}>"

    # -- used by _DaemonTask -------------------------------------------------

    def run(self, node, values):
        """Run the task ``node`` in the daemon and return its value."""
        if _dask_plan.runs_locally(node):
            return node(values)
        fn, args, kwargs = _dask_plan.job_for(node, values)
        key = node.key
        with self._lock:
            self._jobs[key] = _SENDING
        try:
            job = self._send(fn, args, kwargs)
            with self._lock:
                stop = self._jobs.get(key) is _STOP
                self._jobs[key] = job
            if stop:
                job.cancel()
            return job.result()
        except concurrent.futures.CancelledError:
            raise Reschedule() from None  # Dask released the task.
        except DaemonConnectionError as exc:
            if isinstance(exc.__cause__, _RemoteTraceback):
                raise  # the task's own error, raised in the job
            raise Reschedule() from exc  # lost with the daemon
        finally:
            with self._lock:
                self._jobs.pop(key, None)

    def _send(self, fn, args, kwargs):
        """Send the job; Reschedule if the daemon cannot be reached (at
        once, without trying, once it was declared lost)."""
        with self._lock:
            if self._shutdown or self._lost:
                raise Reschedule()
        try:
            return self._connected().submit_with(
                fn, args, kwargs, timeout=self._timeout,
                lane=_dask_plan.lane_for(fn, args, self._lane))
        except DaemonConnectionError as exc:
            if not self._shutdown:
                self._daemon_lost(exc)
            raise Reschedule() from exc

    def _connected(self):
        # Connecting can take connect_timeout: not under _lock, which
        # cancel() takes on the worker's event loop.
        with self._connect_lock:
            with self._lock:
                client = self._client
            if client is None:
                client = Client(self._socket_path,
                                reconnect_timeout=self._reconnect_timeout)
                with self._lock:
                    if not self._shutdown:
                        self._client = client
            if self._shutdown:  # shutdown() closed it, or will not see it
                client.close()
            return client

    def _daemon_lost(self, exc):
        logger.error("extrainterpreters: the daemon is unreachable: %s", exc)
        if self._on_daemon_lost is None:
            return
        with self._lock:
            first = not self._lost and not self._shutdown
            self._lost = True
        if first:
            self._on_daemon_lost(exc)


class _DaemonTask:
    """Stands in for a task node in dask's ``_run_task_simple``: calling it
    runs the task in the daemon."""

    __slots__ = ("_node", "_executor")

    def __init__(self, node, executor):
        self._node = node
        self._executor = executor

    def __call__(self, values):
        return self._executor.run(self._node, values)

    def __getattr__(self, name):  # key, dependencies... as the node has
        return getattr(self._node, name)
