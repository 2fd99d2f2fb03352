"""File descriptors over the daemon's socket (``SCM_RIGHTS``).

A frame with ``"fd": true`` carries one descriptor, sent with the frame's
first bytes; the receiver queues descriptors in arrival order and each such
frame takes the oldest (PROTOCOL.md, "Large data"). Only the client uses
this module: the daemon passes descriptors in C++, and embeds ``_shm``
without it.
"""

import array
import socket

__all__ = ["MAX_FDS", "receive_into", "send_with_fd"]

MAX_FDS = 16  # descriptors one recvmsg can bring; the daemon's limit too
_FD_SIZE = array.array("i").itemsize
_ANCILLARY_SPACE = socket.CMSG_SPACE(MAX_FDS * _FD_SIZE)
# A plain int: ``flags & socket.MSG_CTRUNC`` would go through IntFlag's
# Python ``__and__`` on every read (~1.5 us of a round trip).
_MSG_CTRUNC = int(socket.MSG_CTRUNC)


def send_with_fd(sock, parts, fd):
    """sendall of ``parts`` (bytes-like), with ``fd`` on the first bytes."""
    data = memoryview(b"".join(parts))
    sent = sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                  array.array("i", [fd]))])
    if sent < len(data):
        sock.sendall(data[sent:])


def receive_into(sock, buffer, fds):
    """recv into ``buffer`` (a writable memoryview, reused from read to
    read: a fresh ``bytes`` of that size per read would be an mmap, a
    page fault, an mremap and a munmap each time); returns the byte count.
    Descriptors that came with the bytes are appended to ``fds`` (a
    deque)."""
    size, ancillary, flags, _ = sock.recvmsg_into([buffer], _ANCILLARY_SPACE)
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            received = array.array("i")
            received.frombytes(payload[:len(payload) - len(payload) % _FD_SIZE])
            fds.extend(received)
    if flags & _MSG_CTRUNC:
        raise OSError("the daemon sent more file descriptors than expected")
    return size
