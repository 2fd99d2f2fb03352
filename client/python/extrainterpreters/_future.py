"""``JobFuture``: a ``concurrent.futures.Future`` that can stop running jobs.

A standard Future can be cancelled only while it is pending; once an
executor runs its call, ``cancel()`` returns False, because a thread cannot
be stopped. A job in the daemon can: a ``cancel`` request makes the daemon
raise ``JobCancelled`` inside it. So ``JobFuture.cancel()`` also succeeds on
a running job, and returns False only when the job has already finished
(its reply arrived). This is a deliberate difference from
``concurrent.futures``.

Whoever sends the job attaches a *stopper* with ``_set_stopper``: a
callable that returns True if it stopped waiting for the job (and asked the
daemon to stop it), or False if the reply already came. Everything else
(``wait``, ``as_completed``, done callbacks) is the standard machinery:
cancelling a running job notifies waiters the way
``set_running_or_notify_cancel`` does for a pending one.

The class reaches into ``concurrent.futures._base`` (``_state``,
``_condition``, ``_waiters``, ``_invoke_callbacks``), which has kept these
names from Python 3.2 to 3.14.
"""

import collections
import concurrent.futures
import threading
from concurrent.futures import _base

__all__ = ["JobFuture", "failed", "settle"]

_CANCELLED_STATES = (_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED)
_DONE_STATES = frozenset({_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED,
                          _base.FINISHED})


class _Condition(threading.Condition):
    """A ``threading.Condition`` over its own RLock, as a Future's, whose
    lock methods are the class's: ``Condition.__init__`` binds five of the
    lock's methods to each instance, and every job has a Future. With many
    jobs in flight, the garbage collector's passes over those objects cost
    the client more than any other step of a job. ``Condition`` looks
    these methods up on itself, so that a lock's own ones can override its
    defaults (its comments say so)."""

    def __init__(self):
        self._lock = threading.RLock()
        self._waiters = collections.deque()

    def acquire(self, blocking=True, timeout=-1):
        return self._lock.acquire(blocking, timeout)

    def release(self):
        self._lock.release()

    def _release_save(self):
        return self._lock._release_save()

    def _acquire_restore(self, state):
        self._lock._acquire_restore(state)

    def _is_owned(self):
        return self._lock._is_owned()


# The fields Future.__init__ sets (the same since Python 3.2, checked here):
# JobFuture sets them itself while they are these.
_FUTURE_FIELDS_KNOWN = set(vars(concurrent.futures.Future())) == {
    "_condition", "_state", "_result", "_exception", "_waiters",
    "_done_callbacks"}


class JobFuture(concurrent.futures.Future):
    """The Future of a job run by ``extrainterpretersd``.

    ``cancel()`` works on queued and running jobs alike: it asks the daemon
    to stop the job and marks this Future cancelled at once, so
    ``result()`` raises ``concurrent.futures.CancelledError``; the job's
    later reply is ignored. It returns False only if the job has finished.
    """

    def __init__(self, running=False):
        """``running``: born running, as ``set_running_or_notify_cancel``
        would make it (a job about to be sent; nobody waits on it yet)."""
        if _FUTURE_FIELDS_KNOWN:
            # Future.__init__, with a leaner Condition (_Condition).
            self._condition = _Condition()
            self._state = _base.PENDING
            self._result = None
            self._exception = None
            self._waiters = []
            self._done_callbacks = []
        else:
            super().__init__()
        if running:
            self._state = _base.RUNNING
        self.job_id = None  # The run request's id, once sent.
        self._stopper = None  # Guarded by _condition.
        self._stopper_id = None  # What the stopper is called with, if set.

    # Two reads without the lock: a Future is done for good, and a
    # finished one has its result set before its state.

    def done(self):
        # One read of one field: the lock would add nothing.
        return self._state in _DONE_STATES

    def result(self, timeout=None):
        if self._state == _base.FINISHED and self._exception is None:
            return self._result
        return super().result(timeout)

    def set_result(self, result):
        # Future.set_result, on the lock of its _Condition itself (the
        # Condition's own __enter__ and __exit__ are Python calls), and
        # notifying only whom there is to notify: every job's reply
        # passes here.
        condition = self._condition
        if type(condition) is not _Condition:
            return super().set_result(result)
        with condition._lock:
            if self._state in _DONE_STATES:
                raise concurrent.futures.InvalidStateError(
                    f"{self._state}: {self!r}")
            self._result = result
            self._state = _base.FINISHED
            for waiter in self._waiters:
                waiter.add_result(self)
            if condition._waiters:
                condition.notify_all()
        if self._done_callbacks:
            self._invoke_callbacks()

    def cancel(self):
        """Cancel the job, queued or running. False only if it finished."""
        with self._condition:
            if self._state == _base.FINISHED:
                return False
            if self._state in _CANCELLED_STATES:
                return True
            stopper = self._stopper
            if self._state == _base.PENDING:
                # Not handed to the daemon yet: the standard path, and the
                # executor notifies waiters when it skips this Future.
                self._state = _base.CANCELLED
                self._condition.notify_all()
                stopper = None
            elif stopper is None:
                # Running, but its job is not sent yet: _set_stopper stops
                # it as soon as it is.
                self._mark_cancelled_locked()
        if stopper is not None:
            if not (stopper() if self._stopper_id is None
                    else stopper(self._stopper_id)):
                with self._condition:  # The reply won the race.
                    return self._state in _CANCELLED_STATES
            with self._condition:
                if self._state == _base.FINISHED:
                    return False
                if self._state in _CANCELLED_STATES:
                    return True
                self._mark_cancelled_locked()
        self._invoke_callbacks()
        return True

    def _set_stopper(self, stopper):
        """Attach how to stop the job; if already cancelled, stop it now.

        ``stopper`` must not refer to this Future: the cycle would keep the
        job's result (and shared memory it may wrap) alive until the
        garbage collector runs, instead of until the caller drops it.
        """
        with self._condition:
            cancelled = self._state in _CANCELLED_STATES
            self._stopper = None if cancelled else stopper
        if cancelled:
            stopper()

    def _set_first_stopper(self, stopper, job_id):
        """``_set_stopper`` for whoever made this Future and has not handed
        it to anyone yet, so nobody can be cancelling it: no lock. The
        stopper is called with ``job_id`` (no partial for each job)."""
        self._stopper = stopper
        self._stopper_id = job_id

    def _mark_cancelled(self):
        """Cancelled by the daemon itself; no request to send. Idempotent."""
        with self._condition:
            if self._state == _base.FINISHED or self._state in (
                    _CANCELLED_STATES):
                return
            self._mark_cancelled_locked()
        self._invoke_callbacks()

    def _mark_cancelled_locked(self):
        # As set_running_or_notify_cancel does for a cancelled pending
        # Future: wake wait() and as_completed() as well as result().
        self._state = _base.CANCELLED_AND_NOTIFIED
        self._stopper = None
        for waiter in self._waiters:
            waiter.add_cancelled(self)
        self._condition.notify_all()


def settle(future, *, value=None, exception=None):
    """Set ``future``'s outcome unless it was cancelled meanwhile.

    Returns False when the Future was already done, which for a
    ``JobFuture`` means a cancel won the race with the reply.
    """
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(value)
    except concurrent.futures.InvalidStateError:
        return False
    return True


def failed(exc):
    """A finished Future that failed with ``exc`` (a job that could not be
    sent, answered as if it had been)."""
    future = concurrent.futures.Future()
    future.set_exception(exc)
    return future
