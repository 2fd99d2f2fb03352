"""Large data through shared memory (PROTOCOL.md, "Large data").

A job's large buffers (``bytes``, ``bytearray``, ``memoryview`` and anything
else with the buffer protocol, of at least ``OUT_OF_BAND_MIN`` bytes) leave
the pickle as protocol-5 out-of-band buffers. They are written once into a
memory file (``memfd``), whose descriptor travels with the ``run`` frame
(``SCM_RIGHTS``); the daemon maps it and unpickles from it in place. Large
results come back the same way. The kernel frees a memfd when both sides have
closed it, so nothing outlives the connection.

Writing into a new memfd costs a page fault per 4 KiB, several times the
copy itself. So each side keeps one file per connection that it reuses
(``Region``, and the daemon's result region, lent to jobs through
``reserve``): its pages are faulted in once, and the receiver says when it
is done with it (PROTOCOL.md: ``oob_done``, ``region``, ``free_region``).
A transfer that finds the region in use takes a new memfd as before.
"""

import mmap
import os
import sys
# _pickle rather than pickle.py: the daemon embeds this module in every
# interpreter, where pickle.py (re, enum...) would cost memory.
from _pickle import PickleBuffer

# The socket side (descriptors sent with frames) is _fdpass, which only the
# client needs: the daemon embeds this module in every interpreter, where
# share() and views() are all it uses.

OUT_OF_BAND_MIN = 1 << 20  # smaller buffers stay in the pickle
# ... except in a job bound for a worker process: its frame would be copied
# to the daemon and again to the worker (out_of_band_min).
PROCESS_OUT_OF_BAND_MIN = 256 << 10
_SCAN = 64  # container items looked at by may_be_large


_SMALL = frozenset({int, float, str, bool, type(None)})  # never a buffer


def may_be_large(args, kwargs):
    """True if an argument, or an item of a container argument, is a large
    buffer. Only such jobs pay for the out-of-band pickling."""
    return out_of_band_min(args, kwargs) != 0


def out_of_band_min(args, kwargs, process_lane=False,
                    process_modules=frozenset()):
    """The size from which the job's buffers leave the pickle, or 0 when
    none is that large (``may_be_large``). A job bound for a worker process
    (``process_lane``, or an argument of a type from ``process_modules``,
    such as a numpy array, which sends it there) uses
    ``PROCESS_OUT_OF_BAND_MIN``: measured with 512 KiB numpy arguments,
    out of band carried 1.4-1.5 x the jobs per second through the process
    lane, while in the interpreter lane 300 KiB went faster in the
    pickle."""
    found = 0
    for item in _candidates(args, kwargs):
        if type(item) in _NO_BUFFER:
            continue
        size = _nbytes(item)
        if size < PROCESS_OUT_OF_BAND_MIN:
            continue
        module = getattr(type(item), "__module__", None)
        if process_lane or (isinstance(module, str) and
                            module.partition(".")[0] in process_modules):
            return PROCESS_OUT_OF_BAND_MIN
        if size >= OUT_OF_BAND_MIN:
            found = OUT_OF_BAND_MIN
    return found


def _candidates(args, kwargs):
    """The arguments and the first items of container arguments: where
    large buffers are looked for. Empty for the common small job."""
    if not kwargs and len(args) <= _SCAN:
        for item in args:
            if type(item) not in _SMALL:
                break
        else:
            return ()  # numbers and strings only
    items = list(args[:_SCAN]) + list(kwargs.values())[:_SCAN]
    for item in list(items):
        if type(item) in (list, tuple):
            items.extend(item[:_SCAN])
        elif type(item) is dict:
            items.extend(list(item.values())[:_SCAN])
    return items


# Types that never expose a buffer: no memoryview() attempt (which raises
# TypeError, a cost per item: a chunk of map() holds a tuple per call).
_NO_BUFFER = frozenset({int, float, complex, str, bool, type(None), list,
                        tuple, dict, set, frozenset})


def _nbytes(obj):
    if type(obj) in _NO_BUFFER:
        return 0
    try:
        with memoryview(obj) as view:
            return view.nbytes
    except TypeError:
        return 0


class _Large:
    """Stands in for a large ``bytes`` or ``memoryview`` argument, so that
    it pickles as an out-of-band buffer (it arrives as ``bytes``).
    ``bytearray`` and types with their own protocol-5 support need no
    stand-in."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __reduce_ex__(self, protocol):
        return bytes, (PickleBuffer(self.obj),)


def wrap_large(args, kwargs, minimum=OUT_OF_BAND_MIN):
    """``args`` and ``kwargs`` with their large bytes and memoryviews (and
    those in list, tuple and dict arguments) replaced by stand-ins: pickle
    writes ``bytes`` in the pickle without asking ``reducer_override``. The
    same object twice gets the same stand-in, so it travels once."""
    memo = {}

    def wrap(obj):
        if type(obj) in (bytes, memoryview) and _nbytes(obj) >= minimum:
            return memo.setdefault(id(obj), _Large(obj))
        return obj

    def wrap_item(obj):
        if type(obj) is list:
            return [wrap(x) for x in obj]
        if type(obj) is tuple:
            return tuple(wrap(x) for x in obj)
        if type(obj) is dict:
            return {k: wrap(v) for k, v in obj.items()}
        return wrap(obj)

    return (tuple(wrap_item(a) for a in args),
            {k: wrap_item(v) for k, v in kwargs.items()})


class Collector:
    """A pickle ``buffer_callback`` keeping large buffers out of the pickle;
    ``buffers`` has them, in pickle order."""

    def __init__(self, minimum=OUT_OF_BAND_MIN):
        self.minimum = minimum
        self.buffers = []

    def reset(self):
        """Forget buffers handed out by a pickling that was thrown away."""
        self.buffers = []

    def __call__(self, buffer):
        with buffer.raw() as raw:
            if raw.nbytes < self.minimum:
                return True  # in the pickle
        self.buffers.append(buffer)
        return False


# Set by the daemon in its interpreters: reserve(size) -> (writable
# memoryview, fd) of the connection's result region, or None when it is in
# use. The caller releases the view and owns the descriptor.
reserve = None

# mmap flags of a mapping whose pages are all faulted in at once: one call
# instead of a fault per page.
POPULATE = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)


def _copy_into(view, buffers):
    """Copies ``buffers`` back to back into ``view``: their lengths."""
    lengths, offset = [], 0
    for buffer in buffers:
        with buffer.raw() as raw:
            view[offset:offset + raw.nbytes] = raw
            offset += raw.nbytes
            lengths.append(raw.nbytes)
    return lengths


def share(buffers):
    """Writes ``buffers`` back to back into the daemon's result region when
    it is free (``reserve``), else into a new memfd: (fd, lengths)."""
    if reserve is not None:
        total = 0
        for buffer in buffers:
            with buffer.raw() as raw:
                total += raw.nbytes
        lent = reserve(total)
        if lent is not None:
            view, fd = lent
            try:
                return fd, _copy_into(view, buffers)
            except BaseException:
                os.close(fd)
                raise
            finally:
                view.release()
    fd = os.memfd_create("extrainterpreters-job", os.MFD_CLOEXEC)
    try:
        lengths = []
        for buffer in buffers:
            with buffer.raw() as raw:
                lengths.append(raw.nbytes)
                done = 0
                while done < raw.nbytes:
                    done += os.write(fd, raw[done:])
        return fd, lengths
    except BaseException:
        os.close(fd)
        raise


class Region:
    """A memory file this side reuses for the large buffers it sends.

    Grown on demand; its pages are faulted in when it grows (MAP_POPULATE),
    so filling it again costs only the copy. Whoever holds it sends ``fd``
    with the frame and keeps it open.
    """

    def __init__(self):
        self.fd = os.memfd_create("extrainterpreters-region", os.MFD_CLOEXEC)
        self._map = None
        self._size = 0

    def fill(self, buffers):
        """Copies ``buffers`` back to back from offset 0: their lengths."""
        total = 0
        for buffer in buffers:
            with buffer.raw() as raw:
                total += raw.nbytes
        if total > self._size:
            self._grow(total)
        with memoryview(self._map) as view:
            return _copy_into(view, buffers)

    def _grow(self, size):
        size = max(size, 2 * self._size)
        if self._map is not None:
            self._map.close()
            self._map = None
        os.ftruncate(self.fd, size)
        self._map = mmap.mmap(self.fd, size, flags=POPULATE)
        self._size = size

    @property
    def size(self):
        """Bytes of the file (0 until it is first filled)."""
        return self._size

    def close(self):
        if self._map is not None:
            self._map.close()
            self._map = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _Views(list):
    """The views of one received file, and its mapping (``mmap``)."""

    __slots__ = ("mmap",)


def map_views(fd, lengths):
    """Read-only views of the buffers in a received memfd.

    The mmap (which holds its own copy of the descriptor) lives as long as
    any view of it does; the caller still closes ``fd``.
    """
    out = _Views()
    out.mmap = None
    total = sum(lengths)
    if total == 0:
        out.extend(memoryview(b"") for _ in lengths)
        return out
    out.mmap = mmap.mmap(fd, total, prot=mmap.PROT_READ, flags=POPULATE)
    with memoryview(out.mmap) as whole:
        offset = 0
        for length in lengths:
            out.append(whole[offset:offset + length])
            offset += length
    return out


def release(views):
    """Releases ``views`` (from ``map_views``) and their mapping; True
    unless something still uses the mapping (an object made from a view,
    or a view itself), in which case its file must not be written again."""
    done = True
    for view in views:
        # The list, the loop variable and getrefcount's own argument.
        if sys.getrefcount(view) > 3:
            done = False
            continue
        try:
            view.release()
        except BufferError:
            done = False
    if done and views.mmap is not None:
        try:
            views.mmap.close()  # refused while any view of it is left
        except BufferError:
            done = False
    return done


_received = []  # views() of the job running in this interpreter


# Set by the daemon in its interpreters: mapped() -> a read-only memoryview
# of the session's mapping of the job's file (the client's reused one), or
# None. The daemon checks after the job that nothing still uses it.
mapped = None


def views(fd, lengths):
    """``map_views`` for the daemon's interpreters, which run one job at a
    time: the views are kept until ``settle_received``."""
    whole = mapped() if mapped is not None else None
    if whole is not None and whole.nbytes >= sum(lengths):
        out = _Views()
        out.mmap = None
        offset = 0
        for length in lengths:
            out.append(whole[offset:offset + length])
            offset += length
    else:
        out = map_views(fd, lengths)
    del whole
    _received.append(out)
    return out


def settle_received():
    """After a job: True if nothing it made still uses the views of its
    buffers (the client may then write that file again)."""
    done = True
    while _received:
        done = release(_received.pop()) and done
    return done
