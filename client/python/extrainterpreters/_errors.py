"""The client's exceptions: one root, and subclasses that carry context.

    ExtraInterpretersError
     +-- DaemonConnectionError   cannot reach the daemon, or lost it
     |    +-- JobLost            the connection ended while a job was in
     |                           flight: it may have run, and is not run
     |                           again
     +-- ProtocolError           a frame or message broke PROTOCOL.md
     +-- RemoteError             a job failed in a way that cannot be
     |    |                      re-raised as its own exception type
     |    +-- WorkerCrashed      the process lane worker running it died
     |    +-- DaemonBusy         no room for a job that was not to wait
     +-- JobTimeout              a job ran past its deadline (also a
     |                           TimeoutError)
     +-- BrokenInterpreterPool   an InterpreterPoolExecutor cannot run jobs
                                 any more (also a
                                 concurrent.futures.BrokenExecutor)

A job that raises an exception which pickles is re-raised as that exception,
not wrapped; its remote traceback becomes its ``__cause__`` as a
``_RemoteTraceback`` (the same trick as ``concurrent.futures.process``).
"""

import concurrent.futures

__all__ = [
    "ExtraInterpretersError",
    "DaemonConnectionError",
    "JobLost",
    "ProtocolError",
    "RemoteError",
    "WorkerCrashed",
    "DaemonBusy",
    "JobTimeout",
    "BrokenInterpreterPool",
]


class ExtraInterpretersError(Exception):
    """Root of every error this package raises about the daemon or a job."""


class DaemonConnectionError(ExtraInterpretersError):
    """The daemon could not be reached, or the connection to it ended.

    ``socket_path`` is the socket the client used; ``reason`` is a short
    phrase such as ``"no daemon is listening"`` or ``"permission denied"``.
    """

    def __init__(self, socket_path, reason, *, connected=False):
        self.socket_path = socket_path
        self.reason = reason
        if connected:
            text = f"connection to {socket_path} ended ({reason})"
        else:
            text = f"cannot connect to {socket_path} ({reason})"
        super().__init__(text)


class JobLost(DaemonConnectionError):
    """The connection ended while a job was in flight (the daemon stopped,
    crashed, or was restarted): the job may or may not have run, and the
    client never sends it again. ``job_id`` is its request id.

    The ``Client`` itself reconnects on its next call.
    """

    def __init__(self, socket_path, reason, job_id):
        self.job_id = job_id
        super().__init__(socket_path, reason, connected=True)
        self.args = (f"job {job_id} was lost: the connection to {socket_path} "
                     f"ended ({reason}) before its reply; it may have run, "
                     f"and it is not sent again",)

    def __reduce__(self):
        return type(self), (self.socket_path, self.reason, self.job_id)


class ProtocolError(ExtraInterpretersError):
    """A frame or message did not follow the wire protocol.

    Raised for malformed frames in either direction and for the daemon's
    protocol-level ``error`` replies, whose code is kept in ``code`` (``None``
    when the client itself found the problem).
    """

    def __init__(self, message, *, code=None):
        self.message = message
        self.code = code
        super().__init__(f"{code}: {message}" if code else message)


class RemoteError(ExtraInterpretersError):
    """A job failed and the failure cannot be raised as its own type.

    This covers exceptions that could not be pickled in the daemon (or
    unpickled here), and ``error`` replies about a job such as
    ``job_load_failed`` or ``result_not_picklable``.

    Attributes:
        type_name: qualified name of the remote exception type (for example
            ``"builtins.ZeroDivisionError"``), or ``None``.
        message: the remote exception's message, or the daemon's message for
            an ``error`` reply.
        traceback_text: the remote traceback as text, or ``None``.
        code: the daemon's error code (``"job_load_failed"``...), or ``None``
            when the job ran and raised.
    """

    def __init__(self, message, *, type_name=None, traceback_text=None,
                 code=None):
        self.type_name = type_name
        self.message = message
        self.traceback_text = traceback_text
        self.code = code
        super().__init__(message)

    def __str__(self):
        if self.code:
            text = f"{self.code}: {self.message}"
        elif self.type_name:
            text = f"{self.type_name}: {self.message}"
        else:
            text = self.message
        if self.traceback_text:
            text += ("\n\nRemote traceback:\n"
                     + self.traceback_text.rstrip("\n"))
        return text

    def __reduce__(self):
        # Keeps the code and the remote details when a job raises one (a
        # queue call inside a job can) and it travels back pickled.
        return _restore_remote_error, (type(self), self.message, self.type_name,
                                       self.traceback_text, self.code)

    @classmethod
    def from_exception_info(cls, info, *, message=None, code=None):
        """Build from the ``exception`` object of a reply header.

        ``info`` may be ``None`` or malformed (the daemon is not trusted to
        get it right); missing parts become ``None``.
        """
        if not isinstance(info, dict):
            info = {}
        type_name = _str_or_none(info.get("type"))
        if message is None:
            message = _str_or_none(info.get("message")) or ""
        return cls(message, type_name=type_name,
                   traceback_text=_str_or_none(info.get("traceback")),
                   code=code)


class WorkerCrashed(RemoteError):
    """The worker process that ran a job in the process lane died in it.

    A segfault, ``os._exit``, the OOM killer: only that job fails. The
    message names the worker, its pid and how it ended, for example
    ``process worker 2 (pid 4711) died with SIGSEGV while running job
    17``; the daemon, its other jobs and clients carry on, and a fresh
    worker takes the dead one's place. ``code`` is ``"worker_crashed"``.
    """


class DaemonBusy(RemoteError):
    """A job asked not to wait for room (``wait=False``), and there was
    none: the connection had its window of jobs in flight, or the daemon's
    queue was full. ``code`` is ``"busy"``.
    """


class JobTimeout(ExtraInterpretersError, TimeoutError):
    """A job was stopped because it ran past its ``timeout``.

    The daemon answers with this whether the job was still queued (it never
    ran) or running (``TimeoutError`` was raised inside it). Catch it as
    ``TimeoutError`` to treat it like any other deadline.

    Attributes:
        message: the daemon's message.
        code: always ``"timeout"``, the daemon's error code.
    """

    def __init__(self, message):
        self.message = message
        self.code = "timeout"
        super().__init__(message)

    def __str__(self):
        return self.message


class BrokenInterpreterPool(ExtraInterpretersError,
                            concurrent.futures.BrokenExecutor):
    """An ``InterpreterPoolExecutor`` can no longer run jobs.

    Raised by ``submit`` once the executor is broken, and set on every
    future it had not run: a worker's initializer failed, or a worker could
    not lease its interpreter. The first failure is the ``__cause__``.
    """


class _RemoteTraceback(Exception):
    """Carries a remote traceback as the ``__cause__`` of a re-raised error.

    Its str is the traceback text itself, so the usual "The above exception
    was the direct cause of the following exception" display shows the
    daemon-side frames.
    """

    def __init__(self, traceback_text):
        super().__init__(traceback_text)
        self.traceback_text = traceback_text

    def __str__(self):
        return self.traceback_text


def _str_or_none(value):
    return value if isinstance(value, str) else None


def _restore_remote_error(cls, message, type_name, traceback_text, code):
    return cls(message, type_name=type_name, traceback_text=traceback_text, code=code)
