"""A ``run`` request as both clients make it: the job pickled, its options.

The payload is ``(fn, args, kwargs)`` pickled by ``_byvalue`` (by value
what the daemon cannot import, which then needs ``define`` requests
first); the header carries the job's deadline and whether its output comes
back (PROTOCOL.md, ``run``).
"""

import math
import pickle

from . import _byvalue

__all__ = ["add_options", "describe", "dump_job"]


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


def add_options(header, timeout, output):
    """Put the job's options in its ``run`` header: ``timeout`` (None: no
    deadline) and ``output`` (whether what it prints comes back)."""
    if timeout is not None:
        header["timeout"] = _check_timeout(timeout)
    if output:
        header["output"] = True


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
