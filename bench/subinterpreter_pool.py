"""The in-process peer: a pool of CPython sub-interpreters in this process.

CPython 3.13 ships the private ``_interpreters`` and ``_interpqueues``
modules but no executor on them (PEP 734's ``InterpreterPoolExecutor`` is
3.14's; the PyPI backport ``interpreters-pep-734`` 0.5.0 has the module
API and no executor). So the bench builds the smallest executor a user of
3.13 would write, the way 3.14's works: one worker thread per isolated
interpreter (each with its own GIL), jobs pickled in and out::

    submit(fn, *args) --pickle--> SimpleQueue --> worker thread
                                                    |  _interpreters.exec(_entry,
                                                    |    shared={"job": bytes})
                                                    v
    Future.set_result <--unpickle-- _interpqueues <-- the interpreter
                                    (one per worker)   runs, pickles the result

The caller's ``sys.path`` is copied into each interpreter, so jobs import
what the caller imports (but numpy, like every single-phase extension,
refuses to load there: that is the peer's limit, and the bench reports it).
"""

import concurrent.futures
import os
import pickle
import queue
import sys
import threading

import _interpqueues
import _interpreters

# _interpqueues.put's last two arguments: items are objects shared as they
# are (bytes), and an item left by a destroyed interpreter is removed.
_SHARED_ONLY = 0
_UNBOUND_REMOVE = 1

# Run once in each new interpreter: ``_run_job(job)`` unpickles a call,
# runs it and puts ``(ok, pickled value or exception)`` on the result queue.
_SETUP = """
import pickle, sys
import _interpqueues
sys.path[:0] = [p for p in _caller_path.split(_pathsep) if p not in sys.path]

def _run_job(job):
    try:
        fn, args, kwargs = pickle.loads(job)
        reply = (True, fn(*args, **kwargs))
    except BaseException as exc:
        # The chain does not survive pickling: the root cause goes as a note.
        root = exc
        while root.__cause__ is not None or root.__context__ is not None:
            root = root.__cause__ or root.__context__
        if root is not exc:
            exc.add_note(f"caused by {type(root).__name__}: {root}")
        reply = (False, exc)
    try:
        data = pickle.dumps(reply, protocol=5)
    except BaseException as exc:
        data = pickle.dumps((False, RuntimeError(f"unpicklable result: {exc!r}")))
    _interpqueues.put(_result_queue, data, 0, 1)
"""


def _entry():
    """Run in an interpreter's ``__main__``: ``job`` and ``_run_job`` are
    bound there (``_interpreters.exec`` takes a function with no arguments
    and runs its code, which skips compiling a script per job)."""
    _run_job(job)  # noqa: F821 -- names of the interpreter's __main__


class SubinterpreterPool(concurrent.futures.Executor):
    """``max_workers`` isolated interpreters, each driven by one thread."""

    def __init__(self, max_workers):
        self._jobs = queue.SimpleQueue()
        self._threads = []
        self._shutdown = False
        ready = [threading.Event() for _ in range(max_workers)]
        errors = []
        for index in range(max_workers):
            thread = threading.Thread(
                target=self._worker, args=(ready[index], errors),
                name=f"subinterpreter-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        for event in ready:
            event.wait()
        if errors:
            self.shutdown()
            raise errors[0]

    def submit(self, fn, /, *args, **kwargs):
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future = concurrent.futures.Future()
        self._jobs.put((future, pickle.dumps((fn, args, kwargs), protocol=5)))
        return future

    def shutdown(self, wait=True, *, cancel_futures=False):
        self._shutdown = True
        for _ in self._threads:
            self._jobs.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _worker(self, ready, errors):
        """One thread: creates its interpreter, runs jobs, destroys it."""
        try:
            interp, results = _open_interpreter()
        except BaseException as exc:  # noqa: BLE001 -- raised by __init__
            errors.append(exc)
            ready.set()
            return
        ready.set()
        try:
            while (item := self._jobs.get()) is not None:
                future, job = item
                if future.set_running_or_notify_cancel():
                    _run_in(interp, results, future, job)
        finally:
            _interpreters.destroy(interp)
            _interpqueues.destroy(results)


def _open_interpreter():
    """A new isolated interpreter and the queue it answers on."""
    results = _interpqueues.create(0, _SHARED_ONLY, _UNBOUND_REMOVE)
    interp = _interpreters.create("isolated")
    failed = _interpreters.exec(interp, _SETUP, {
        "_caller_path": os.pathsep.join(sys.path), "_pathsep": os.pathsep,
        "_result_queue": results})
    if failed is not None:
        _interpreters.destroy(interp)
        _interpqueues.destroy(results)
        raise RuntimeError(f"setting up a sub-interpreter failed: "
                           f"{failed.formatted}")
    return interp, results


def _run_in(interp, results, future, job):
    failed = _interpreters.exec(interp, _entry, {"job": job})
    if failed is not None:  # Only if _run_job itself broke.
        future.set_exception(RuntimeError(failed.formatted))
        return
    data, _, _ = _interpqueues.get(results)
    ok, value = pickle.loads(data)
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class SharedQueue:
    """A bounded queue between interpreters (``_interpqueues``), with the
    blocking ``put``/``get`` of ``queue.Queue`` for the bench's queue jobs.

    3.13's primitives never block, so a waiting side polls, yielding the
    CPU between tries (3.13's own ``test.support.interpreters.queues``
    polls too, sleeping 10 ms). Items are shared as they are: ints, bytes,
    str and None. Pickles as its id, so jobs can take it as an argument.
    """

    def __init__(self, maxsize=0, *, qid=None):
        self.owner = qid is None
        self.qid = (_interpqueues.create(maxsize, _SHARED_ONLY, _UNBOUND_REMOVE)
                    if qid is None else qid)

    def __reduce__(self):
        return _attach, (self.qid,)

    def put(self, item):
        while True:
            try:
                return _interpqueues.put(self.qid, item, _SHARED_ONLY,
                                         _UNBOUND_REMOVE)
            except queue.Full:
                os.sched_yield()

    def get(self):
        while True:
            try:
                return _interpqueues.get(self.qid)[0]
            except queue.Empty:
                os.sched_yield()

    def close(self):
        if self.owner:
            _interpqueues.destroy(self.qid)


def _attach(qid):
    return SharedQueue(qid=qid)
