"""A ``run`` request as both clients make it: the job pickled, its options.

The payload is ``(fn, args, kwargs)`` pickled by ``_byvalue`` (by value
what the daemon cannot import, which then needs ``define`` requests
first); the header carries the job's deadline and whether its output comes
back (PROTOCOL.md, ``run``).
"""

import math
import pickle

from . import _byvalue

__all__ = ["LANES", "add_options", "check_lane", "describe", "dump_job"]

# Where a job may run (PROTOCOL.md, ``run``): the daemon chooses ("auto"),
# an own-GIL sub-interpreter, or a worker process (every extension module
# loads there, and a crash ends only that process).
LANES = ("auto", "interpreter", "process")


def dump_job(fn, args, kwargs, check=None, buffer_callback=None):
    """Pickle a job, shipping by value what the daemon cannot import."""
    try:
        return _byvalue.dump_job(fn, args, kwargs, check, buffer_callback)
    except _byvalue.VersionMismatch:
        raise
    except Exception as exc:
        raise pickle.PicklingError(
            f"cannot send a call of {describe(fn)} to the daemon: the "
            f"function or its arguments do not pickle: {exc}") from exc


def add_options(header, timeout, output, lane="auto", rerun=True, wait=True):
    """Put the job's options in its ``run`` header: ``timeout`` (None: no
    deadline), ``output`` (whether what it prints comes back), ``lane``
    (where it runs) and ``rerun`` (whether a job that raised CPython's
    "does not support loading in subinterpreters" ImportError may run
    again in the process lane) and ``wait`` (False: refused with ``busy``
    if the daemon has no room for it, rather than held until it has)."""
    if timeout is not None:
        header["timeout"] = _check_timeout(timeout)
    if output:
        header["output"] = True
    if lane != "auto":
        header["lane"] = check_lane(lane)
    if not rerun:
        header["rerun"] = False
    if not wait:
        header["wait"] = False


def check_lane(lane):
    """``lane`` if it names one, else ValueError."""
    if lane not in LANES:
        raise ValueError(f"lane must be one of {', '.join(map(repr, LANES))}, "
                         f"not {lane!r}")
    return lane


def _check_timeout(timeout):
    """A job ``timeout`` as the protocol wants it: a positive finite number."""
    if (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout) or timeout <= 0):
        raise ValueError(f"timeout must be a positive number of seconds, "
                         f"not {timeout!r}")
    return timeout


def describe(fn):
    """``module.qualname`` of a function, as pickle refers to it."""
    qualname = getattr(fn, "__qualname__", None)
    if qualname is None:
        return repr(fn)
    module = getattr(fn, "__module__", None)
    return f"{module}.{qualname}" if module else qualname
