"""Many small calls as one job: ``Client.map`` and the executor's ``map``
with a ``chunksize`` send a chunk of calls in one frame; ``run_batch`` runs
them back to back in one interpreter and returns every outcome in one frame.
Each call succeeds or fails on its own, as the standard ``map`` wants: the
caller gets the values in order, and a call's exception when it reaches
that call.

    client                                   daemon (one interpreter)
    ------                                   ------------------------
    map(fn, items, chunksize=n)
      chunks of n  --- run run_batch(fn, chunk) --->  fn(*args) for each
                   <-- [(True, value) | (False, error, traceback), ...]
      yield values; raise a failed call's error at its place

``run_batch`` runs inside the daemon (this package is the daemon's own copy
there), so it imports nothing that is not in the standard library.
"""

import itertools
import operator
import pickle

__all__ = ["chunks", "in_order", "outcomes", "run_batch"]


def run_batch(fn, calls):
    """``fn(*args)`` for each ``args`` of ``calls``, back to back: a list of
    ``(True, value)`` or ``(False, exception, traceback text)``.

    A stop of the whole job (cancel, timeout) is not one call's failure:
    the daemon's stop exception goes through.
    """
    results = []
    for args in calls:
        try:
            results.append((True, fn(*args)))
        except BaseException as exc:
            if type(exc).__module__ == "_extrainterpreters_worker":
                raise  # JobCancelled: the batch is stopped, not this call
            results.append((False, _portable(exc), _traceback(exc)))
    return results


def _portable(exc):
    """``exc``, or a stand-in that pickles: the error's type and message."""
    try:
        pickle.dumps(exc, 5)
    except Exception:
        return RuntimeError(f"{type(exc).__module__}.{type(exc).__qualname__}: "
                            f"{exc} (the exception itself does not pickle)")
    return exc


def _traceback(exc):
    import traceback
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__.tb_next
                                              if exc.__traceback__ else None))


def chunks(iterables, size):
    """Tuples of up to ``size`` argument tuples, from ``zip(*iterables)``."""
    calls = zip(*iterables)
    while True:
        chunk = tuple(itertools.islice(calls, size))
        if not chunk:
            return
        yield chunk


def in_order(futures, timeout=None):
    """Each Future's result in order, waiting at most until ``timeout``
    seconds from now for all of them; the ones not reached are cancelled
    when the caller stops early or the wait times out (as ``Executor.map``
    does)."""
    import time
    end = None if timeout is None else time.monotonic() + timeout
    return _in_order(futures, end)


def _in_order(futures, end):
    import time
    futures.reverse()
    try:
        while futures:
            future = futures.pop()
            try:
                value = future.result(
                    None if end is None else end - time.monotonic())
            except BaseException:
                future.cancel()  # timed out: it is not waited for any more
                raise
            yield value
    finally:
        for future in futures:
            future.cancel()


_succeeded = operator.itemgetter(0)
_value = operator.itemgetter(1)


def outcomes(batches):
    """The values of each batch's outcomes, in order; a failed call raises
    its exception there, with the remote traceback as its ``__cause__``."""
    from ._errors import _RemoteTraceback
    for batch in batches:
        if all(map(_succeeded, batch)):
            # The common case, handed out by C code: no Python step per item.
            yield from map(_value, batch)
            continue
        batch.reverse()  # pop() from the end: each outcome freed as it goes
        while batch:
            outcome = batch.pop()
            if outcome[0]:
                yield outcome[1]
                continue
            error = outcome[1]
            error.__cause__ = _RemoteTraceback(outcome[2])
            raise error
