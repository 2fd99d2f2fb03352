"""Many small calls as one job: ``Client.map`` and the executor's ``map``
with a ``chunksize`` send a chunk of calls in one frame; ``run_batch`` runs
them back to back in one interpreter and returns every outcome in one frame.
Each call succeeds or fails on its own, as the standard ``map`` wants: the
caller gets the values in order, and a call's exception when it reaches
that call.

    client                                   daemon (one interpreter)
    ------                                   ------------------------
    map(fn, items, chunksize=n)
      chunks of n  --- run run_chunk(fn, chunk, star) --->  fn(item) or
                                                            fn(*args) each
                   <-- (values, None) | (values, {index: (error, traceback)})
      yield values; raise a failed call's error at its place

A chunk of one iterable is a list of its items and each call is
``fn(item)``; of several, a list of their ``zip`` tuples and each call is
``fn(*args)`` (``star``). The common case, every call returning, pickles
a plain list of values both ways: no tuple per call, which pickle would
build and memoize one by one.

``run_chunk`` runs inside the daemon (this package is the daemon's own copy
there), so it imports nothing that is not in the standard library.
``run_batch`` is the form clients before 2026-12-03 ask for.
"""

import itertools
import pickle

__all__ = ["chunk_args", "in_order", "outcomes", "run_batch", "run_chunk"]


def run_chunk(fn, calls, star=False):
    """``fn(item)`` for each item of ``calls`` (``fn(*args)`` for each
    argument tuple with ``star``), back to back: ``(values, None)`` when
    every call returned, else ``(values, failures)`` where ``failures``
    maps a failed call's index to ``(exception, traceback text)`` and
    ``values`` holds None there.

    A stop of the whole job (cancel, timeout) is not one call's failure:
    the daemon's stop exception goes through.
    """
    values = []
    append = values.append
    failures = None
    calls = iter(calls)
    while True:
        # The try is outside the loop (free until something raises); after
        # a failure the loop goes on with the calls left. Not
        # values.extend(map(fn, calls)): a StopIteration from fn would end
        # that silently.
        try:
            if star:
                for args in calls:
                    append(fn(*args))
            else:
                for item in calls:
                    append(fn(item))
            return values, failures
        except BaseException as exc:
            if type(exc).__module__ == "_extrainterpreters_worker":
                raise  # JobCancelled: the chunk is stopped, not this call
            if failures is None:
                failures = {}
            failures[len(values)] = (_portable(exc), _traceback(exc))
            append(None)


def run_batch(fn, calls):
    """``run_chunk`` as clients before 2026-12-03 ask for it: ``calls`` are
    argument tuples, and the outcomes a list of ``(True, value)`` or
    ``(False, exception, traceback text)``."""
    values, failures = run_chunk(fn, calls, True)
    failures = failures or {}
    return [(False, *failures[index]) if index in failures else (True, value)
            for index, value in enumerate(values)]


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


def chunk_args(fn, iterables, size):
    """``run_chunk``'s arguments for each chunk of up to ``size`` calls:
    ``(fn, chunk, star)``, the chunk a list of one iterable's items, or of
    several iterables' ``zip`` tuples (``star``)."""
    star = len(iterables) != 1
    calls = zip(*iterables) if star else iter(iterables[0])
    while True:
        chunk = list(itertools.islice(calls, size))
        if not chunk:
            return
        yield fn, chunk, star


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


def outcomes(results):
    """The values of each chunk's ``run_chunk`` result, in order; a failed
    call raises its exception there, with the remote traceback as its
    ``__cause__``."""
    from ._errors import _RemoteTraceback
    for values, failures in results:
        if failures is None:
            yield from values  # the common case: no Python step per value
            continue
        for index, value in enumerate(values):
            failure = failures.get(index)
            if failure is None:
                yield value
                continue
            error, text = failure
            error.__cause__ = _RemoteTraceback(text)
            raise error
