"""The memory files one connection reuses for large data.

Writing into a new memfd costs a page fault per 4 KiB, so each side keeps
one file per connection and says when the other may write it again
(PROTOCOL.md, "Large data")::

    this side's argument region            the daemon's result region
    ---------------------------            --------------------------
    attach(): a job's large arguments      a large result arrives in it
      go in it while no other job has it     (its descriptor with the frame)
    sent(): the run request has it         mapped and unpickled here
    on_reply(): "oob_done" -> reusable;    result_released(): nothing made
      without it the daemon may still        from it is used any more; the
      read it: dropped, a new one next       next request says "free_region"
"""

import contextlib
import os
import threading

from . import _shm
from ._errors import ProtocolError

__all__ = ["Regions"]


class Regions:
    """The argument region of one connection, and whether the daemon's
    result region is free; thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()  # Guards everything below.
        self._region = None  # The argument region (_shm.Region), once made.
        # The request id of the job that has it: -1 while its request is
        # being made, None while free.
        self._job = None
        self._result_free = False  # Say "free_region" with the next request.
        self._closed = False

    @contextlib.contextmanager
    def attach(self, header, buffers, max_bytes, lend=True):
        """Put a job's large ``buffers`` where the daemon maps them, and
        say so in its ``header``; yields ``(fd, region)`` for the request.

        The argument region when no other job has it (and ``lend``: the
        connection is open), else a new memfd, which is closed once the
        request is sent (the daemon has its own copy then). The buffers
        count against ``max_bytes``, the daemon's frame limit.
        """
        size = sum(b.raw().nbytes for b in buffers)
        if size > max_bytes:
            raise ProtocolError(
                f"the job's large buffers ({size} bytes) exceed the "
                f"daemon's max_frame_bytes {max_bytes}", code="too_large")
        region = self._take() if lend else None
        if region is not None:
            fd = region.fd
            header["oob"] = region.fill(buffers)
            header["region"] = True  # sent again: the daemon may keep it mapped
        else:
            fd, header["oob"] = _shm.share(buffers)
        header["fd"] = True
        sent = False
        try:
            yield fd, region is not None
            sent = True
        finally:
            if region is not None:
                if not sent:
                    self._give_back(region, reuse=True)
            else:
                os.close(fd)

    def take_result_free(self):
        """True if the request being made should say ``free_region``; it
        is then said (``result_released`` again if that request is not
        sent after all)."""
        if not self._result_free:  # the common case: no lock
            return False
        with self._lock:
            free, self._result_free = self._result_free, False
            return free

    def sent(self, request_id):
        """The request ``request_id`` is made with the argument region."""
        with self._lock:
            self._job = request_id

    def on_reply(self, header):
        """A reply to the request that has the argument region gives it
        back: reusable once the daemon says it is done with it."""
        if self._job is None:
            # The common case, read without the lock: the request that has
            # the region was registered (sent()) before it was sent, so
            # before its reply could be read.
            return
        request_id = header["id"]
        with self._lock:
            region = (self._region if request_id is not None
                      and request_id == self._job else None)
        if region is not None:
            self._give_back(region, reuse=header.get("oob_done") is True)

    def result_released(self):
        """Nothing here uses the daemon's result region any more."""
        with self._lock:
            self._result_free = True

    def close(self):
        """The connection is over: no region is lent again."""
        with self._lock:
            self._closed = True
            region, self._region = self._region, None
        if region is not None:
            region.close()

    def _take(self):
        """The argument region, if no job has it now."""
        with self._lock:
            if self._job is not None or self._closed:
                return None
            if self._region is None:
                self._region = _shm.Region()
            self._job = -1  # taken; the request id comes with sent()
            return self._region

    def _give_back(self, region, reuse):
        """The region's job is over: keep it for the next, or (when the
        daemon may still read it) drop it."""
        with self._lock:
            if self._region is region:
                self._job = None
                if not reuse:
                    self._region = None
        if not reuse:
            region.close()  # the daemon's mapping keeps what it still uses
