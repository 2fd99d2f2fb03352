"""``where()``: which host, daemon, process and interpreter a job runs in.

Runs inside jobs: the daemon embeds this package, so ``import
extrainterpreters`` in a job imports the daemon's own copy of this module.
It imports only what every sub-interpreter can load, and nothing that
touches ``threading`` (``threading.current_thread()`` on a thread the
daemon started registers a dummy thread, which the daemon counts as a
thread the job left behind).

How it tells the lanes apart: a job in the interpreter lane runs in a
sub-interpreter of the daemon's own process (CPython interpreter id > 0);
one in the process lane runs in the main interpreter (id 0) of a worker
process that the daemon spawned, so its parent is the daemon. Only the
daemon and its worker processes have the ``_extrainterpreters`` built-in
module; anywhere else, ``lane`` and ``daemon_pid`` are None.
"""

import collections
import os

__all__ = ["Placement", "where"]

Placement = collections.namedtuple(
    "Placement", ["host", "daemon_pid", "pid", "interpreter_id", "lane"])
Placement.__doc__ = """Where code runs.

host: the machine's host name (``os.uname().nodename``).
daemon_pid: the pid of the extrainterpretersd that ran the job, or None
    outside a job.
pid: the process running the code: the daemon in the interpreter lane, a
    worker process of the daemon in the process lane.
interpreter_id: CPython's id of the interpreter (0 is a process's main
    interpreter), as ``extrainterpretersctl status`` lists them.
lane: ``"interpreter"``, ``"process"``, or None outside a job.
"""


def where():
    """Return the ``Placement`` of the calling code.

    Call it inside a job (or a Dask task run by ``extrainterpreters.dask``)
    to see which daemon ran it, in which lane and interpreter::

        def task(x):
            return x * x, extrainterpreters.where()

    Outside a job it describes the calling process, with ``lane`` and
    ``daemon_pid`` None.
    """
    interpreter_id = _interpreter_id()
    pid = os.getpid()
    if not _in_daemon():
        lane, daemon_pid = None, None
    elif interpreter_id == 0:
        lane, daemon_pid = "process", os.getppid()
    else:
        lane, daemon_pid = "interpreter", pid
    return Placement(os.uname().nodename, daemon_pid, pid, interpreter_id,
                     lane)


def _in_daemon():
    try:
        import _extrainterpreters  # noqa: F401  (the daemon's built-in)
    except ImportError:
        return False
    return True


def _interpreter_id():
    """CPython's id of the current interpreter (0: the main one)."""
    try:
        import _interpreters as interpreters  # CPython 3.13 and later
    except ImportError:
        try:
            import _xxsubinterpreters as interpreters  # CPython 3.12
        except ImportError:
            return 0  # older: no sub-interpreters to be in
    current = interpreters.get_current()
    if isinstance(current, tuple):  # 3.13+: (id, how it was made)
        current = current[0]
    return int(current)
