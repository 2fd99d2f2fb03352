"""Coalescing sends: frames written while others are in flight go out
together, in one ``sendall``, from a writer thread.

A frame sent when nothing else is in flight (the round-trip path) goes out
at once from the caller's thread, as before. Only while earlier requests
wait for replies are later ones queued here: the writer thread sends
everything queued so far in one system call, and frames that arrive while
it sends go out together in the next. Order is kept: the caller holds the
client's send lock while it queues, and an inline send first waits until
the queue is empty.
"""

import threading


class Outbox:
    """Frames waiting for the writer thread of one connection."""

    def __init__(self, sock, on_error, name):
        self._sock = sock
        self._on_error = on_error  # called with the OSError of a failed send
        self._name = name
        # Entered as the plain lock on the hot paths (one C call rather
        # than the Condition's Python __enter__ and __exit__).
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._parts = []  # bytes to send, in order; guarded by _lock
        self._sending = False  # the writer is in sendall; guarded by _lock
        self._closed = False
        self._thread = None

    def add(self, data):
        """Queues ``data`` (bytes) behind what is queued already."""
        with self._lock:
            if self._closed:
                return
            self._parts.append(data)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._write_loop, daemon=True, name=self._name)
                self._thread.start()
            elif not self._sending and len(self._parts) == 1:
                self._ready.notify()

    def busy(self):
        """True while something is queued or being sent."""
        with self._lock:
            return bool(self._parts) or self._sending

    def wait_empty(self):
        """Waits until everything queued has been sent (or the outbox closed)."""
        with self._ready:
            self._ready.wait_for(
                lambda: self._closed or not (self._parts or self._sending))

    def close(self):
        """Stops the writer; what is still queued is dropped (the
        connection is closing)."""
        with self._ready:
            self._closed = True
            self._parts.clear()
            self._ready.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _write_loop(self):
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._closed or self._parts)
                if self._closed:
                    return
                data = b"".join(self._parts)
                self._parts.clear()
                self._sending = True
            try:
                self._sock.sendall(data)
            except OSError as exc:
                self._on_error(exc)
            finally:
                with self._ready:
                    self._sending = False
                    self._ready.notify_all()
