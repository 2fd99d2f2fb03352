"""Runs jobs inside one sub-interpreter of extrainterpretersd.

The daemon compiles this module into every worker interpreter as
``_extrainterpreters_worker`` (after ``_extrainterpreters_loader``, which
unpickles jobs) and calls :func:`run_job` once per job, holding that
interpreter's GIL. The job's pickle sits at the start of the worker's
shared buffer, which this code sees as a writable ``memoryview`` over the
daemon's memory: the job is unpickled straight from it, and the result (or the
exception) is pickled straight back into it. Bytes that do not fit spill into
a ``bytearray``; the daemon then grows the buffer for the next job.

Nothing here may let an exception escape: every outcome is returned as data.
"""

import _pickle  # not pickle.py, which would load re, enum and more in every interpreter
import sys

import _extrainterpreters_loader
import _extrainterpreters_shm as _shm  # the client's _shm.py, embedded

# Outcome kinds; daemon/python/job_runner.cc has the same numbers.
OK = 0
RAISED = 1
LOAD_FAILED = 2
NOT_PICKLABLE = 3

_PROTOCOL = 5
# A result of one of these types, short enough, is pickled by _pickle.dumps
# and copied into the buffer in one go: no result pickler, no writer, no
# search for large buffers (about 4 of a trivial job's 13 µs in the
# daemon). Longer str and bytes take the long way, which may send them out
# of band.
_PLAIN_RESULTS = frozenset({type(None), bool, int, float, str, bytes})
_PLAIN_RESULT_MAX = 64 * 1024
_MAX_PIECE = 64 * 1024  # output is sent in pieces of at most this many chars


class JobCancelled(BaseException):
    """Raised inside a job that a client cancelled.

    A BaseException, like KeyboardInterrupt, so that ``except Exception``
    in the job does not swallow it.
    """


class _JobStream:
    """sys.stdout / sys.stderr of a running job: sends whole lines.

    ``emit(stream, text)`` is the daemon's, and queues the text for the
    client; None throws the output away.
    """

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, name):
        self.name = name
        self._emit = None
        self._pending = []
        self._size = 0

    def start(self, emit):
        """Begins a job's output: ``emit`` receives it."""
        self._emit = emit
        self._pending = []
        self._size = 0

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self._emit is None or not text:
            return len(text)
        self._pending.append(text)
        self._size += len(text)
        if "\n" in text or self._size >= _MAX_PIECE:
            self._send(everything=False)
        return len(text)

    def _send(self, everything):
        data = "".join(self._pending)
        cut = len(data) if everything else data.rfind("\n") + 1
        if cut == 0 and len(data) >= _MAX_PIECE:
            cut = _MAX_PIECE
        for start in range(0, cut, _MAX_PIECE):
            self._emit(self.name, data[start:min(cut, start + _MAX_PIECE)])
        rest = data[cut:]
        self._pending = [rest] if rest else []
        self._size = len(rest)

    def flush(self):
        if self._pending:
            self._send(everything=True)

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        raise OSError("a job's output stream has no file descriptor")


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


# One pair per interpreter, started again for each job.
_STDOUT, _STDERR = _JobStream("stdout"), _JobStream("stderr")


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
        import traceback  # only on errors: it pulls in several modules
        text = "".join(traceback.format_exception(cls, exc, tb))
    except BaseException:
        text = ""
    return (f"{cls.__module__}.{cls.__qualname__}", message, text)


def _dump(view, obj, collector=None):
    """Pickles obj into the buffer: (bytes written, spill).

    With a ``collector`` (``_shm.Collector``), large buffers are kept out
    of the pickle, in ``collector.buffers``.
    """
    writer = _BufferWriter(view)
    _extrainterpreters_loader.pickler(writer, _PROTOCOL, collector).dump(obj)
    return writer.written, writer.spill


def _may_be_large(obj):
    """True if obj, or an item of a container it is, is a large buffer.

    Only then is the result pickled with the slower out-of-band pickler.
    """
    return _shm.may_be_large((obj,), {})


def _share(collector):
    """The result's large buffers in a new memfd: (fd, lengths), or (-1, ())
    when there are none. The daemon sends the fd with the reply and closes
    it."""
    if collector is None or not collector.buffers:
        return -1, ()
    fd, lengths = _shm.share(collector.buffers)
    return fd, tuple(lengths)


def _load(view, size, defs, oob_fd, oob_lengths):
    """Unpickles the job and checks its shape: (fn, args, kwargs)."""
    buffers = _shm.views(oob_fd, oob_lengths) if oob_fd >= 0 else None
    with view[:size] as job_bytes:
        job = _extrainterpreters_loader.loads(job_bytes, defs, buffers)
    if not (isinstance(job, tuple) and len(job) == 3):
        raise TypeError(f"a job must be a (callable, tuple, dict) triple, not {type(job).__name__}")
    fn, args, kwargs = job
    if not callable(fn):
        raise TypeError(f"the job's function is not callable: {type(fn).__name__}")
    if type(args) is not tuple or type(kwargs) is not dict:
        raise TypeError("the job's arguments must be a tuple and a dict")
    return fn, args, kwargs


def _threads_left():
    """Threads a job started that still run (besides this worker thread)."""
    threading = sys.modules.get("threading")
    if threading is None:
        return 0
    # main_thread() is not this thread in a sub-interpreter. This thread
    # shows up as a _DummyThread once a job called current_thread()
    # (logging does), and in an isolated sub-interpreter that one is not a
    # daemon thread (daemon threads are not allowed there): it is skipped
    # by its ident. Threads a job started are non-daemon for the same reason.
    if threading.active_count() <= 1:
        return 0  # the main thread's object, there from import to shutdown
    main = threading.main_thread()
    this = threading.get_ident()
    return sum(1 for t in threading.enumerate()
               if t is not main and t.ident != this and not t.daemon and t.is_alive())


# -- the process lane: stopping a job in a worker process's main thread ------
#
# A worker process runs its jobs in its main interpreter, on the main thread.
# To stop one, the daemon's request arrives on another thread, which leaves
# the exception here (holding the GIL) and sends the stop signal to the main
# thread; the signal's handler raises it there. A signal, unlike an
# asynchronous exception, also ends a blocking call such as time.sleep (PEP
# 475 retries only when the handler returns), and it raises in the job's
# frame like any exception, so except and finally clauses run.

_stop_exception = None  # what the stop signal's handler raises, once


def install_stop_signal(signum):
    import signal
    signal.signal(signum, _on_stop_signal)


def request_stop(exception_type):
    global _stop_exception
    _stop_exception = exception_type


def _on_stop_signal(signum, frame):
    global _stop_exception
    exception_type, _stop_exception = _stop_exception, None
    if exception_type is not None:
        raise exception_type


def run_job(view, size, defs, emit, oob_fd, oob_lengths, share_result):
    """Runs the job in view[:size].

    Returns (kind, error, written, spill, result_fd, result_lengths,
    threads_left): the last is how many threads the job left running.
    ``defs`` maps digests to the definitions the job uses (or is None);
    ``emit`` receives the job's output (or is None: output is discarded);
    ``oob_fd`` (or -1) holds the job's out-of-band buffers, of
    ``oob_lengths``; ``result_fd`` (or -1) holds the result's, made only
    when ``share_result`` (the client takes file descriptors).
    """
    global _stop_exception
    _stop_exception = None  # a stop meant for the job before came too late
    saved = sys.stdout, sys.stderr
    _STDOUT.start(emit)
    _STDERR.start(emit)
    sys.stdout, sys.stderr = _STDOUT, _STDERR
    try:
        return _run(view, size, defs, oob_fd, oob_lengths, share_result) + (_threads_left(),)
    finally:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, _JobStream):
                stream.flush()
        sys.stdout, sys.stderr = saved
        # The daemon may grow (move) the buffer after this job, so no view
        # of it may outlive the call. Jobs never see the view itself.
        try:
            view.release()
        except BufferError:
            pass


def _run(view, size, defs, oob_fd, oob_lengths, share_result):
    try:
        fn, args, kwargs = _load(view, size, defs, oob_fd, oob_lengths)
    except BaseException as exc:
        return LOAD_FAILED, _describe(exc), 0, None, -1, ()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        # Skip this frame: the traceback starts in the job's own code.
        error = _describe(exc, skip_frames=1)
        try:
            written, spill = _dump(view, exc)
        except BaseException:
            written, spill = 0, None  # the client falls back to RemoteError
        return RAISED, error, written, spill, -1, ()
    finally:
        del fn, args, kwargs
    try:
        if type(result) in _PLAIN_RESULTS and (
                type(result) not in (str, bytes) or len(result) <= _PLAIN_RESULT_MAX):
            pickled = _pickle.dumps(result, _PROTOCOL)
            if len(pickled) <= len(view):
                view[:len(pickled)] = pickled
                return OK, None, len(pickled), None, -1, ()
        collector = None
        if share_result and _may_be_large(result):
            # pickle writes bytes in-band without asking reducer_override;
            # stand-ins send large ones out-of-band (as the client does).
            collector = _shm.Collector()
            result = _shm.wrap_large((result,), {})[0][0]
        written, spill = _dump(view, result, collector)
        result_fd, lengths = _share(collector)
    except BaseException as exc:
        return NOT_PICKLABLE, _describe(exc), 0, None, -1, ()
    return OK, None, written, spill, result_fd, lengths


class _PackageFinder:
    """Finds ``extrainterpreters`` and its modules in the daemon binary
    (module ``_extrainterpreters``), so a job can use the client package,
    and its queues in particular, whatever the daemon's sys.path holds. It
    comes first on sys.meta_path: a job always gets the package of the
    daemon it runs in.
    """

    _PACKAGE = "extrainterpreters"

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != cls._PACKAGE and not fullname.startswith(cls._PACKAGE + "."):
            return None
        import _extrainterpreters
        found = _extrainterpreters.package_source(fullname)
        if found is None:
            return None
        source, is_package = found
        spec = _ModuleSpec(fullname, _PackageLoader(source), is_package=is_package,
                           origin=f"<extrainterpretersd>/{fullname.replace('.', '/')}.py")
        if is_package:
            spec.submodule_search_locations = []
        return spec


class _PackageLoader:
    __slots__ = ("_source",)

    def __init__(self, source):
        self._source = source

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        code = compile(self._source, module.__spec__.origin, "exec", dont_inherit=True)
        exec(code, module.__dict__)

    def get_source(self, fullname):  # for tracebacks
        return self._source


_ModuleSpec = type(sys.__spec__)
sys.meta_path.insert(0, _PackageFinder)
