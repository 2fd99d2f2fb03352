"""Run every Dask worker's tasks in its own host's extrainterpretersd.

    pip install './client/python[dask]'

    import distributed
    from extrainterpreters.dask import ExtraInterpretersPlugin

    client = distributed.Client("tcp://scheduler:8786")
    client.register_plugin(ExtraInterpretersPlugin())   # once, for all workers

Where things run::

    your program ---- Dask Client ----> scheduler (placement, retries)
                                           |
              +----------------------------+---------------------+
              v                                                  v
    host A: dask worker (tasks' data,         host B: dask worker ...
            the DaemonExecutor)
              | unix socket ($EXTRAINTERPRETERS_SOCKET, or the default)
              v
            extrainterpretersd: the task's function in a sub-interpreter
            (or, for numpy and the like, in a worker process)

The plugin, registered once with the scheduler, is set up on every worker
that is there or joins later. On each it resolves the daemon's socket on
that host, as ``extrainterpreters.Client`` does, and installs a
``DaemonExecutor`` as the worker's default executor (the thread pool it
had stays available as ``executor="threads"``, for
``dask.annotate(executor="threads")``). Give it another ``executor_name``
to make it opt-in per task instead: ``dask.annotate(executor="ei")``.

What goes to the daemon is the task's own call, ``fn(*args, **kwargs)``
(``_dask_plan``), with the usual lane routing (a numpy task runs in a
worker process); a task that calls dask's own functions (``dask.bag``'s
chunk functions) runs in the process lane.

A task released while it runs (``future.cancel()``, a lost dependency)
has its daemon job stopped; one whose daemon restarted is run again by
Dask; a worker whose daemon stays unreachable for ``reconnect_timeout``
seconds leaves the cluster, and the scheduler runs its work elsewhere.

This module needs ``distributed``; ``import extrainterpreters`` never
imports it.
"""

import asyncio
import logging

from distributed.diagnostics.plugin import WorkerPlugin

from ._dask_executor import DaemonExecutor

__all__ = ["DaemonExecutor", "ExtraInterpretersPlugin"]

logger = logging.getLogger("extrainterpreters.dask")

# States of a task the worker runs (distributed.worker_state_machine):
# leaving one of these for "released" means Dask no longer wants it.
_RUNNING_STATES = frozenset({"executing", "long-running"})


class ExtraInterpretersPlugin(WorkerPlugin):
    """Installs a ``DaemonExecutor`` on every worker: register it once,
    ``client.register_plugin(ExtraInterpretersPlugin())``.

    ``socket_path`` (default: resolved on each worker's host, as
    ``Client`` does), ``lane``, ``timeout`` and ``reconnect_timeout`` are
    the executor's. ``executor_name`` is the worker executor it becomes:
    ``"default"`` (every task) or a name that tasks choose with
    ``dask.annotate(executor=name)``.
    """

    idempotent = False

    def __init__(self, socket_path=None, *, executor_name="default",
                 lane="auto", timeout=None, reconnect_timeout=10.0):
        self.socket_path = socket_path
        self.executor_name = executor_name
        self.lane = lane
        self.timeout = timeout
        self.reconnect_timeout = reconnect_timeout
        self.name = f"extrainterpreters-{executor_name}"
        self._executor = None
        self._replaced = None

    async def setup(self, worker):
        """Install the executor (before connecting, so that tasks never
        run in threads by mistake), then check that the daemon answers."""
        self._executor = DaemonExecutor(
            self.socket_path, lane=self.lane, timeout=self.timeout,
            max_threads=worker.state.nthreads + 1,
            reconnect_timeout=self.reconnect_timeout,
            on_daemon_lost=lambda exc: _leave(worker, exc))
        self._replaced = worker.executors.get(self.executor_name)
        if self.executor_name == "default" and self._replaced is not None:
            worker.executors.setdefault("threads", self._replaced)
        worker.executors[self.executor_name] = self._executor
        # Off the event loop: connecting may wait up to connect_timeout.
        await asyncio.to_thread(self._executor.connect)

    def teardown(self, worker):
        """Put the replaced executor back and stop this one, without
        waiting: its jobs are cancelled and its threads end by themselves
        (a worker stopped by a signal cancels what it awaits, so nothing
        here may be awaited)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if worker.executors.get(self.executor_name) is executor:
            if self._replaced is not None:
                worker.executors[self.executor_name] = self._replaced
            else:
                del worker.executors[self.executor_name]
        executor.shutdown(wait=False, cancel_futures=True)

    def transition(self, key, start, finish, **kwargs):
        """Dask released a running task: stop its job in the daemon."""
        if (start in _RUNNING_STATES and finish == "released"
                and self._executor is not None):
            self._executor.cancel(key)

    def __getstate__(self):
        # Sent from the client to each worker: no executor of its own yet.
        state = dict(self.__dict__)
        state["_executor"] = state["_replaced"] = None
        return state


def _leave(worker, exc):
    """The daemon is gone: close the worker, from its event loop (this runs
    in one of the executor's threads), so the scheduler moves its work."""
    async def close():
        await worker.close(nanny=False, reason=f"extrainterpreters daemon "
                                               f"unreachable: {exc}")
    logger.error("closing %s: its extrainterpreters daemon is unreachable",
                 worker.address)
    worker.loop.add_callback(close)
