"""The by-value definitions a ``Client`` has sent on its connection.

A job whose function travels by value names its definitions by digest
(``uses``); each is sent once per connection, in a ``define`` request just
before the first job that needs it. The daemon answers requests in order,
so the job is sent at once, without waiting for the define's reply::

    caller thread                             daemon
    -------------                             ------
    run_with(definitions, send)
      define (digest, blob), if not yet  -->  rebuilt, or refused
      run (uses: digests)               -->  unknown_definition if refused
    define refused: the job fails with the refusal, at once; the
    definition is sent again with the next job that needs it
"""

import functools
import re
import threading
import weakref

from ._errors import RemoteError
from ._future import settle
from ._replies import expect_type

__all__ = ["Definitions"]


class Definitions:
    """What one connection has defined, and the refusals it got.

    ``request(header, decode, payload)`` sends a request and returns its
    Future (``Client._request``); ``abandon(job_id, job)`` stops waiting
    for a job's reply (``Connection.abandon``).
    """

    def __init__(self, request, abandon):
        self._request = request
        self._abandon = abandon
        self._lock = threading.Lock()  # Guards _defined and _refusals.
        # Keeps a job from overtaking a define another thread is sending
        # for it.
        self._send_lock = threading.Lock()
        self._defined = {}  # digest -> the define's Future
        self._refusals = {}  # digest -> (qualname, refusal)

    def run_with(self, definitions, what, send):
        """Send the ``definitions`` this connection lacks, then the job
        (``send()``, which returns its Future); ``what`` names its function.

        A refusal known already raises here; a later one fails the job
        (``_check``).
        """
        defines = self._send(definitions)
        for definition, define_future in defines:
            if define_future.done() and define_future.exception():
                raise _refused(f"cannot run {what}", definition.qualname,
                               definition.digest, define_future.exception())
        future = send()
        # The define's Future keeps its callbacks for the connection, so
        # they hold neither the job's Future (nor its result) nor its
        # function.
        job_ref = weakref.ref(future)
        for definition, define_future in defines:
            define_future.add_done_callback(functools.partial(
                self._check, job_ref, what, definition.qualname,
                definition.digest))
        return future

    def lacks(self, definitions):
        """Whether any of ``definitions`` is still to be sent on this
        connection."""
        with self._lock:
            return any(d.digest not in self._defined for d in definitions)

    def explain(self, header, error):
        """Turn a job's ``unknown_definition`` error into the refusal of that
        definition, which the daemon sent first (requests are answered in
        order, so it has been read already)."""
        match = re.search(r"[0-9a-f]{64}", header.get("message") or "")
        with self._lock:
            refusal = self._refusals.get(match.group(0)) if match else None
        if refusal is None:
            return error
        qualname, refusal = refusal
        return _refused(f"job {header['id']} cannot run", qualname,
                        match.group(0), refusal)

    def _send(self, definitions):
        """Send the definitions this connection lacks; return all Futures.

        A refused definition fails the jobs using it (``_check``) and is
        sent again for the next one.
        """
        futures = []
        with self._send_lock:
            for definition in definitions:
                digest = definition.digest
                with self._lock:
                    future = self._defined.get(digest)
                if future is None:
                    future = self._request(
                        {"type": "define", "digest": digest},
                        expect_type("define"), definition.blob)
                    with self._lock:
                        self._defined[digest] = future
                    future.add_done_callback(functools.partial(
                        self._forget, digest, definition.qualname))
                futures.append((definition, future))
        return futures

    def _forget(self, digest, qualname, future):
        """A refused definition is sent again for the next job; its refusal
        is kept to explain the ``unknown_definition`` replies of jobs that
        were already sent with it (``explain``)."""
        if future.exception() is not None:
            with self._lock:
                if self._defined.get(digest) is future:
                    del self._defined[digest]
                self._refusals[digest] = (qualname, future.exception())

    def _check(self, job_ref, what, qualname, digest, define_future):
        """Fail the job (``job_ref()``) at once if the daemon refused a
        definition it uses.

        Its own reply (``unknown_definition``) would say less; it is dropped
        like a cancelled job's. (If that reply was read before this callback
        was attached, the job keeps it: it still names the digest.)
        """
        refusal = define_future.exception()
        job = job_ref()
        if refusal is None or job is None:
            return  # A job nobody refers to any more has been answered.
        if self._abandon(job.job_id, job):
            settle(job, exception=_refused(f"cannot run {what}", qualname,
                                           digest, refusal))


def _refused(head, qualname, digest, refusal):
    """The error of a job whose definition the daemon refused; ``head``
    says which job cannot run."""
    error = RemoteError(
        f"{head}: the daemon refused the definition of {qualname} "
        f"({digest}) it uses: {refusal}",
        code=getattr(refusal, "code", None))
    error.__cause__ = refusal
    return error
