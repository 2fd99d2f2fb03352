"""The memory files one connection reuses for large data.

Writing into a new memfd costs a page fault per 4 KiB, so each side keeps
files per connection and says when the other may write them again
(PROTOCOL.md, "Large data")::

    this side's argument regions           the daemon's result region
    ----------------------------           --------------------------
    attach(): a job's large arguments      a large result arrives in it
      go in a free one (a new one while      (its descriptor with the frame)
      there are fewer than _MAX_REGIONS)   result_views(): mapped once, the
    sent(): the run request has it           mapping kept; unpickled here
    on_reply(): "oob_done" -> reusable;    release_result(): nothing made
      without it the daemon may still        from it is used any more (at
      read it: dropped                       once, or when the caller drops
                                             it); the next request says
                                             "free_region"

Several argument regions, because jobs sent at once each hold theirs
until their reply: with one, a burst of 512 KiB numpy arguments wrote all
but the first into new memfds, whose pages the client, the daemon and the
worker process then allocated, mapped and freed again (about 0.4 ms of CPU
per job on a 2-vCPU machine, more than a third of the FFT it carried).

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

# Argument regions of one connection, at most (the daemon keeps as many
# mapped: MappedFileCache), and the bytes that those beyond the first may
# hold together; past that, a job's large arguments go in a new memfd.
_MAX_REGIONS = 64
_MAX_EXTRA_BYTES = 32 << 20


class Regions:
    """The argument regions of one connection, and whether the daemon's
    result region is free; thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()  # Guards everything below.
        self._free = []  # Argument regions (_shm.Region) no job has.
        self._free_bytes = 0  # Their sizes, together.
        # Regions sent with a request, by its id. Read without the lock
        # when empty (on_reply).
        self._lent = {}
        self._count = 0  # Argument regions made and not dropped.
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
        say so in its ``header``; yields ``(fd, region)`` for the request:
        ``region`` is the argument region it has (for ``sent``), or None.

        A free argument region (or a new one) when there is one (and
        ``lend``: the connection is open), else a new memfd, which is
        closed once the request is sent (the daemon has its own copy then).
        The buffers count against ``max_bytes``, the daemon's frame limit.
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
            yield fd, region
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

    def sent(self, request_id, region):
        """The request ``request_id`` is made with ``region`` (from
        ``attach``)."""
        with self._lock:
            self._lent[request_id] = region

    def on_reply(self, header):
        """A reply to a request that has an argument region gives it back:
        reusable once the daemon says it is done with it."""
        if not self._lent:
            # The common case, read without the lock: a request that has a
            # region was registered (sent()) before it was sent, so before
            # its reply could be read.
            return
        with self._lock:
            region = self._lent.pop(header["id"], None)
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
            regions = self._free + list(self._lent.values())
            self._free, self._lent, self._free_bytes = [], {}, 0
        for region in regions:
            region.close()  # the daemon's mapping keeps what it still uses
        self._drop_result_map()

    def _take(self):
        """A free argument region, or a new one while there are fewer than
        _MAX_REGIONS; None if there is none."""
        with self._lock:
            if self._closed:
                return None
            if self._free:
                region = self._free.pop()  # the last given back: pages warm
                self._free_bytes -= region.size
                return region
            if self._count >= _MAX_REGIONS:
                return None
            self._count += 1
        return _shm.Region()

    def _give_back(self, region, reuse):
        """The region's job is over: keep it for the next, or drop it (the
        daemon may still read it, the connection closed, or the regions
        beyond the first hold more than _MAX_EXTRA_BYTES)."""
        with self._lock:
            keep = reuse and not self._closed and (
                not self._free
                or region.size + self._free_bytes <= _MAX_EXTRA_BYTES)
            if keep:
                self._free.append(region)
                self._free_bytes += region.size
            else:
                self._count -= 1
        if not keep:
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
