"""The memory files one connection reuses for large data.

Writing into a new memfd costs a page fault per 4 KiB, so each side keeps
one file per connection and says when the other may write it again
(PROTOCOL.md, "Large data")::

    this side's argument region            the daemon's result region
    ---------------------------            --------------------------
    attach(): a job's large arguments      a large result arrives in it
      go in it while no other job has it     (its descriptor with the frame)
    sent(): the run request has it         result_views(): mapped once, the
    on_reply(): "oob_done" -> reusable;      mapping kept; unpickled here
      without it the daemon may still      release_result(): nothing made
      read it: dropped, a new one next       from it is used any more (at
                                             once, or when the caller drops
                                             it); the next request says
                                             "free_region"

The result region's mapping is kept from one result to the next: mapping
64 MiB with its page tables, and unmapping it, cost about as much as a
64 MiB memcpy here. Since closing the mapping then no longer tells
whether anything still uses it, each result's buffers are handed to
pickle as memoryviews of ``PickleBuffer`` objects over views of it:
whatever is made from one (a memoryview of it, a NumPy array) holds it,
or its view, or a buffer its view lends, which ``release_result`` sees.
"""

import contextlib
import functools
import mmap
import os
import pickle
import sys
import threading
import weakref

from . import _shm
from ._errors import ProtocolError

__all__ = ["Regions"]

# mmap's trackfd=False (3.13): a mapping kept for the connection holds no
# descriptor of its own. Older Pythons map each result, as before.
_KEEP_RESULT_MAPPING = sys.version_info >= (3, 13)


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
        # The reading thread's own (one reads at a time): the daemon's
        # result region, mapped read-only, and (st_dev, st_ino) of its file.
        self._result_map = None
        self._result_file = None
        self._held = None  # the _ResultViews of a result still in use

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

    def result_views(self, fd, lengths):
        """The buffers of a result in the daemon's result region (``fd``),
        as ``_ResultViews`` for ``pickle.loads``; with ``fd`` still open.
        On Pythons before 3.13, over a mapping of this result alone, which
        goes with the views."""
        total = sum(lengths)
        if not _KEEP_RESULT_MAPPING:
            if total == 0:
                return _shm.map_views(fd, lengths)
            return _ResultViews(mmap.mmap(fd, total, prot=mmap.PROT_READ,
                                          flags=_shm.POPULATE), lengths)
        stat = os.fstat(fd)
        if stat.st_size < total:
            raise ValueError(f"the result's buffers ({total} bytes) do not "
                             f"fit the daemon's result region "
                             f"({stat.st_size} bytes)")
        file = (stat.st_dev, stat.st_ino)
        if (self._result_map is None or file != self._result_file
                or len(self._result_map) < total):
            self._drop_result_map()
            # The whole file: it grows seldom, and the next results fit.
            self._result_map = mmap.mmap(
                fd, stat.st_size, prot=mmap.PROT_READ, flags=_shm.POPULATE,
                trackfd=False)
            self._result_file = file
        return _ResultViews(self._result_map, lengths)

    def release_result(self, views):
        """After a result in the daemon's region was unpickled: True (and
        the next request says ``free_region``) if nothing made from it is
        used any more; else the region stays the client's, and its mapping
        is left to what uses it."""
        if isinstance(views, _ResultViews):
            done = views.release()
            if not done:
                self._result_map = None  # freed when the last user goes
                # Then the region is free again: said with the request
                # after that. (A plain store: the last user may go in a
                # garbage collection run while this thread holds _lock.)
                views.when_unused(functools.partial(_result_unused,
                                                    weakref.ref(self)))
                self._held = views
        else:
            done = _shm.release(views)
        if done:
            self.result_released()
        return done

    def _drop_result_map(self):
        result_map, self._result_map = self._result_map, None
        if result_map is not None:
            try:
                result_map.close()
            except BufferError:
                pass  # a kept result still reads it; it goes with that

    def close(self):
        """The connection is over: no region is lent again."""
        with self._lock:
            self._closed = True
            region, self._region = self._region, None
        if region is not None:
            region.close()
        self._drop_result_map()

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


def _result_unused(regions_ref):
    """The last user of a kept result went: the region is free (weakly
    held, so a held result makes no reference cycle with its Regions)."""
    regions = regions_ref()
    if regions is not None:
        regions._result_free = True


class _ResultViews(list):
    """One result's buffers: memoryviews of ``PickleBuffer`` objects over
    views of the kept mapping. A PickleBuffer passes the buffers asked of
    it on to its view, so anything made from one of these (a memoryview
    of it, a NumPy array) holds a reference to it, or to the view, or a
    buffer the view lends: all of which ``release`` sees."""

    __slots__ = ("_buffers", "_views", "_watch")

    def __init__(self, result_map, lengths):
        super().__init__()
        self._buffers = []
        self._views = []
        with memoryview(result_map) as whole:
            offset = 0
            for length in lengths:
                view = whole[offset:offset + length]
                self._views.append(view)
                self._buffers.append(pickle.PickleBuffer(view))
                self.append(memoryview(self._buffers[-1]))
                offset += length

    def release(self):
        """True if nothing made from these buffers is used any more;
        releases what is not."""
        done = True
        for index in range(len(self)):
            # The list and getrefcount's own argument.
            if sys.getrefcount(self[index]) > 2:
                done = False
                continue
            try:
                self[index].release()
                self._buffers[index].release()
                self._views[index].release()
            except BufferError:
                done = False  # something holds a buffer of it
        return done

    def when_unused(self, callback):
        """After ``release`` said False: calls ``callback()`` once nothing
        made from these buffers is left, and lets go of them here. Whatever
        uses one holds its view (a PickleBuffer's view, or the object of a
        buffer lent by the view), so the views' deaths tell."""
        left = list(self._views)

        def gone(_):
            left.pop()  # one step: safe from any thread
            if not left:
                callback()

        self._watch = [weakref.ref(view, gone) for view in left]
        for index in range(len(left)):
            left[index] = None  # counts the views still alive
        self._views = []
        self._buffers = []
        self.clear()
