"""Job functions for the end-to-end tests.

The harness puts this file's directory on the daemon's ``--python-path``, so
functions pickled here as ``jobs.<name>`` import in every sub-interpreter.
Each job is small and says what it is for; blocking jobs wait on a file the
test creates, with a deadline, so a test failure never leaves one running.
"""

import importlib
import mmap
import importlib.util
import os
import signal
import sys
import threading
import time

_state = {}  # Module global state, per interpreter (see set_global).

WAIT_TIMEOUT = 60.0


def add(a, b):
    return a + b


def itself(value):
    return value


class Text(str):
    """A str subclass: a result must come back as itself."""


def echo(*args, **kwargs):
    return args, kwargs


def divide(a, b):
    return a / b


def reciprocal(a):
    return 1 / a


def stop_iteration_at_zero(a):
    """Raises StopIteration for 0: a call's own exception, not the end of
    the calls (map must not end there)."""
    if a == 0:
        raise StopIteration("zero")
    return a


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
    try:
        import _interpreters  # 3.13+: private, but the only way to ask.
        return _interpreters.get_current()[0]
    except ImportError:
        import _xxsubinterpreters  # 3.12
        return int(_xxsubinterpreters.get_current())


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


def wait_then_append(release, log, text):
    """Wait for ``release``, then append ``text`` to ``log``: a job that
    both holds a worker and leaves a trace if it ran."""
    wait_for_file(release)
    return append_line(log, str(text))


def wait_then_interpreter(release):
    """Wait for ``release``, then return the id of the interpreter (or the
    pid of the worker process) that ran the job."""
    wait_for_file(release)
    return interpreter_id()


def _flags(path):
    """A two-byte shared flag file, mapped: reading it never releases the GIL."""
    with open(path, "r+b") as f:
        return mmap.mmap(f.fileno(), 2)


def spin_holding_gil(path, timeout=WAIT_TIMEOUT):
    """Spin without ever giving up this interpreter's GIL until released.

    No blocking call, and a switch interval far longer than the test: under
    a GIL shared with the releasing job, that job could never run and this
    one would spin until the timeout. Returns the loop's start and end on
    the monotonic clock, and whether it was released.
    """
    flags = _flags(path)
    sys.setswitchinterval(1000.0)
    try:
        start = time.monotonic()
        flags[1] = 1  # spinning now
        deadline = start + timeout
        released = True
        while flags[0] == 0:
            if time.monotonic() > deadline:
                released = False
                break
        end = time.monotonic()
    finally:
        sys.setswitchinterval(0.005)
    return {"start": start, "end": end, "released": released,
            "interpreter": interpreter_id()}


def release_spinner(path, timeout=WAIT_TIMEOUT):
    """Wait until the spinner spins, then release it. Runs Python code the
    whole time, so it needs a GIL of its own to make progress."""
    flags = _flags(path)
    deadline = time.monotonic() + timeout
    while flags[1] == 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the spinner never started ({path})")
        time.sleep(0.001)
    start = time.monotonic()
    flags[0] = 1
    return {"start": start, "end": time.monotonic(),
            "interpreter": interpreter_id()}


def make_bytes(size):
    """A result of ``size`` bytes, to test the reply size limit."""
    return bytes(size)


# -- executor, asyncio, output and stopping jobs -------------------------------


def append_line(path, text):
    """Append ``text`` and a newline to ``path``: a side effect a test can
    look for to learn whether a job ran (and how often)."""
    with open(path, "a") as f:
        f.write(f"{text}\n")
    return text


def read_lines(path):
    """The lines of ``path``, or [] if it does not exist."""
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def record_init(path):
    """An executor initializer: log this interpreter and remember it."""
    _state["initialized_in"] = interpreter_id()
    _state["init_calls"] = _state.get("init_calls", 0) + 1
    append_line(path, str(interpreter_id()))


def init_state():
    """What ``record_init`` left here, and where this job runs."""
    return (_state.get("initialized_in"), _state.get("init_calls", 0),
            interpreter_id())


def failing_init():
    raise ValueError("initializer failed on purpose")


def spin(started_path, timeout=WAIT_TIMEOUT):
    """Mark started, then loop in pure Python until stopped or the deadline.

    Returns "not stopped" if nothing interrupted it in ``timeout`` seconds.
    """
    touch_file(started_path)
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        n += 1
    return "not stopped"


def block_in_c(started_path, fifo_path):
    """A job that cannot be stopped in time: it blocks inside one C call
    (a read of a FIFO) until the test writes to the FIFO. A stop exception
    raised into it waits until that call returns.

    (A job that catches the exception in a loop is no good for this: on
    CPython 3.13 an exception raised asynchronously in a loop can escape an
    enclosing ``except BaseException``; see CPython gh-139622.)"""
    touch_file(started_path)
    fd = os.open(fifo_path, os.O_RDONLY)
    try:
        return os.read(fd, 1)
    finally:
        os.close(fd)


def crash_or_append(crash, log, text):
    """``segfault`` when ``crash``, else append ``text`` to ``log``: one
    function for a map one of whose calls ends its worker process."""
    if crash:
        segfault()
    append_line(log, str(text))
    return text


def release_fifo(fifo_path):
    """Unblocks ``block_in_c`` if it is reading ``fifo_path``."""
    try:
        fd = os.open(fifo_path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # nobody reads it (the job never ran, or is gone)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)


def touch_file(path):
    with open(path, "a"):
        pass


def print_lines(count, prefix="line", stream="stdout"):
    """Print ``count`` numbered lines to ``stream``; return ``count``."""
    out = getattr(sys, stream)
    for i in range(count):
        print(f"{prefix} {i}", file=out)
    return count


def print_in_pieces(count, letter, width=50):
    """Print ``count`` lines of ``letter``, each in many small writes, so
    lines from two such jobs could only stay whole if kept so on purpose."""
    for _ in range(count):
        for _ in range(width):
            sys.stdout.write(letter)
        sys.stdout.write("\n")
    return count


def print_then_wait(line, path, timeout=WAIT_TIMEOUT):
    """Print ``line``, then block until ``path`` exists."""
    print(line, flush=True)
    return wait_for_file(path, value="released", timeout=timeout)


def print_in_pieces_after(path, count, letter):
    """``print_in_pieces`` once ``path`` exists: two of these start at once."""
    wait_for_file(path)
    return print_in_pieces(count, letter)


def pattern(size, seed=0):
    """``size`` bytes of a repeating pattern that depends on ``seed``."""
    block = bytes((i * 7 + seed) % 256 for i in range(4096))
    return (block * (size // len(block) + 1))[:size]


def pattern_buffer(size, seed=0):
    """``pattern`` as a buffer that pickles out of band and arrives as a
    memoryview of the shared memory, not copied."""
    import pickle
    return pickle.PickleBuffer(bytearray(pattern(size, seed)))


def describe_buffer(data):
    """(type name, length, sha-256) of a buffer argument."""
    import hashlib
    return type(data).__name__, len(data), hashlib.sha256(data).hexdigest()


def big_bytearray(size, seed=0):
    return bytearray(pattern(size, seed))


def rss_kib():
    """This process's resident memory (VmRSS), in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def call_item(data, key, *args):
    """Unpickle a queue item's payload here, in a job, and call
    ``item[key](*args)``: items holding by-value functions are
    self-contained, so a job can rebuild them."""
    import pickle
    return pickle.loads(data)[key](*args)


class Keeper:
    """Holds a view of a buffer it was unpickled from: pickled out of band
    (pickle protocol 5), it keeps the sender's shared memory in use."""

    def __init__(self, data):
        self.data = data

    def __reduce_ex__(self, protocol):
        import pickle
        return _keeper, (pickle.PickleBuffer(self.data),)


def _keeper(buffer):
    kept = Keeper.__new__(Keeper)
    kept.data = memoryview(buffer)
    return kept


def keep(kept, *rest):
    """Keeps ``kept`` (a Keeper) in this interpreter; the sha-256 of its data."""
    _state["kept"] = kept
    return kept_sha()


def kept_sha():
    """The sha-256 of the data of the Keeper that ``keep`` kept here."""
    import hashlib
    return hashlib.sha256(_state["kept"].data).hexdigest()


def keeper_and_bytes(size, seed):
    """A large result whose first item keeps a view of the file it came in."""
    data = pattern(size, seed)
    return Keeper(data), data


def segfault():
    """Ends the process with SIGSEGV: a read of address 0 where ctypes
    loads (sub-interpreters of 3.13, worker processes); in a sub-interpreter
    of 3.12, whose _ctypes refuses them, the same signal raised by the job."""
    try:
        import ctypes
    except ImportError:
        signal.raise_signal(signal.SIGSEGV)
    else:
        ctypes.string_at(0)
