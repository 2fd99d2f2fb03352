"""Job functions for the end-to-end tests.

The harness puts this file's directory on the daemon's ``--python-path``, so
functions pickled here as ``jobs.<name>`` import in every sub-interpreter.
Each job is small and says what it is for; blocking jobs wait on a file the
test creates, with a deadline, so a test failure never leaves one running.
"""

import importlib
import importlib.util
import os
import sys
import threading
import time

_state = {}  # Module global state, per interpreter (see set_global).

WAIT_TIMEOUT = 60.0


def add(a, b):
    return a + b


def echo(*args, **kwargs):
    return args, kwargs


def divide(a, b):
    return a / b


class UnpicklableError(Exception):
    """An exception that cannot be pickled: it holds a lock."""

    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()


def raise_unpicklable(message):
    raise UnpicklableError(message)


def raise_system_exit(code):
    sys.exit(code)


def raise_keyboard_interrupt():
    raise KeyboardInterrupt("interrupted in a job")


def return_lock():
    return threading.Lock()


def set_global(key, value):
    _state[key] = value


def get_global(key, default=None):
    return _state.get(key, default)


def set_main_attr(name, value):
    setattr(sys.modules["__main__"], name, value)


def get_main_attr(name, default=None):
    return getattr(sys.modules["__main__"], name, default)


def interpreter_id():
    """The CPython id of the interpreter running this job."""
    import _interpreters  # Private, but the only way to learn the id.
    return _interpreters.get_current()[0]


def getpid():
    return os.getpid()


def has_module(name):
    """True if ``name`` can be found (not imported) in this interpreter."""
    return importlib.util.find_spec(name) is not None


def import_module(name):
    importlib.import_module(name)
    return name


def sleep(seconds):
    time.sleep(seconds)
    return seconds


def wait_for_file(path, value=None, timeout=WAIT_TIMEOUT):
    """Block until ``path`` exists, then return ``value``.

    Lets a test hold a worker busy for exactly as long as it needs to.
    """
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.005)
    return value


def spin_together(my_marker, other_marker, iterations,
                  timeout=WAIT_TIMEOUT):
    """CPU-bound loop started in step with a twin job on another worker.

    Creates ``my_marker``, waits for ``other_marker`` (so the two loops start
    together), then runs a pure-Python loop; under a shared GIL two such
    loops would only take turns. Returns the loop's start and end on the
    monotonic clock (the same clock for every thread of the daemon), this
    thread's CPU time spent in the loop, and the interpreter id.
    """
    with open(my_marker, "w"):
        pass
    wait_for_file(other_marker, timeout=timeout)
    cpu_start = time.thread_time()
    start = time.monotonic()
    total = 0
    for i in range(iterations):
        total += i * i % 7
    end = time.monotonic()
    cpu_end = time.thread_time()
    return {"start": start, "end": end, "cpu": cpu_end - cpu_start,
            "interpreter": interpreter_id(),
            "checksum": total}


def make_bytes(size):
    """A result of ``size`` bytes, to test the reply size limit."""
    return bytes(size)
