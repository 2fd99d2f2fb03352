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
    size, ancillary, flags, _ = sock.recvmsg_into(
        [buffer], socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            received = array.array("i")
            received.frombytes(payload[:len(payload) - len(payload) % received.itemsize])
            fds.extend(received)
    if flags & socket.MSG_CTRUNC:
        raise OSError("the daemon sent more file descriptors than expected")
    return size
