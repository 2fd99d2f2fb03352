"""Runs jobs inside one sub-interpreter of extrainterpretersd.

The daemon compiles this module into every worker interpreter as
``_extrainterpreters_worker`` and calls :func:`run_job` once per job, holding
that interpreter's GIL. The job's pickle sits at the start of the worker's
shared buffer, which this code sees as a writable ``memoryview`` over the
daemon's memory: the job is unpickled straight from it, and the result (or the
exception) is pickled straight back into it. Bytes that do not fit spill into
a ``bytearray``; the daemon then grows the buffer for the next job.

Nothing here may let an exception escape: every outcome is returned as data.
"""

import pickle
import traceback

# Outcome kinds; daemon/python/job_runner.cc has the same numbers.
OK = 0
RAISED = 1
LOAD_FAILED = 2
NOT_PICKLABLE = 3

_PROTOCOL = 5


class _BufferWriter:
    """A file for pickle.Pickler that writes into the shared buffer."""

    __slots__ = ("_view", "_size", "written", "spill")

    def __init__(self, view):
        self._view = view
        self._size = len(view)
        self.written = 0
        self.spill = None

    def write(self, data):
        with memoryview(data) as chunk:
            if chunk.format != "B" or chunk.ndim != 1:
                chunk = chunk.cast("B")
            n = chunk.nbytes
            if self.spill is None and self.written + n <= self._size:
                self._view[self.written:self.written + n] = chunk
                self.written += n
            else:
                if self.spill is None:
                    self.spill = bytearray()
                self.spill += chunk
        return n


def _describe(exc, skip_frames=0):
    """(type name, message, traceback text) of an exception, never raising."""
    cls = type(exc)
    try:
        message = str(exc)
    except BaseException:
        message = "<str() of the exception failed>"
    try:
        tb = exc.__traceback__
        for _ in range(skip_frames):
            if tb is not None:
                tb = tb.tb_next
        text = "".join(traceback.format_exception(cls, exc, tb))
    except BaseException:
        text = ""
    return (f"{cls.__module__}.{cls.__qualname__}", message, text)


def _dump(view, obj):
    """Pickles obj into the buffer: (kind, bytes written, spill)."""
    writer = _BufferWriter(view)
    pickle.Pickler(writer, protocol=_PROTOCOL).dump(obj)
    return writer.written, writer.spill


def _load(view, size):
    """Unpickles the job and checks its shape: (fn, args, kwargs)."""
    with view[:size] as job_bytes:
        job = pickle.loads(job_bytes)
    if not (isinstance(job, tuple) and len(job) == 3):
        raise TypeError(f"a job must be a (callable, tuple, dict) triple, not {type(job).__name__}")
    fn, args, kwargs = job
    if not callable(fn):
        raise TypeError(f"the job's function is not callable: {type(fn).__name__}")
    if type(args) is not tuple or type(kwargs) is not dict:
        raise TypeError("the job's arguments must be a tuple and a dict")
    return fn, args, kwargs


def run_job(view, size):
    """Runs the job in view[:size]; returns (kind, error, written, spill)."""
    try:
        try:
            fn, args, kwargs = _load(view, size)
        except BaseException as exc:
            return LOAD_FAILED, _describe(exc), 0, None
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            # Skip this frame: the traceback starts in the job's own code.
            error = _describe(exc, skip_frames=1)
            try:
                written, spill = _dump(view, exc)
            except BaseException:
                written, spill = 0, None  # the client falls back to RemoteError
            return RAISED, error, written, spill
        finally:
            del fn, args, kwargs
        try:
            written, spill = _dump(view, result)
        except BaseException as exc:
            return NOT_PICKLABLE, _describe(exc), 0, None
        return OK, None, written, spill
    finally:
        # The daemon may grow (move) the buffer after this job, so no view
        # of it may outlive the call. Jobs never see the view itself.
        try:
            view.release()
        except BufferError:
            pass
