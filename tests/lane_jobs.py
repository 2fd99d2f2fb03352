"""Job functions for the process lane's tests (process_lane_e2e_test).

Importable by the daemon from the tests' directory (--python-path), beside
the test-only site-packages that hold numpy and pandas. This module imports
neither at the top: the interpreter lane imports it too.
"""

import os
import signal
import time


def numpy_total(values):
    """Sums with numpy, importing it inside the job: the pickle of a call of
    this function names no numpy module, so the daemon learns only when the
    sub-interpreter refuses the import."""
    import numpy
    return int(numpy.asarray(values).sum())


def scale(array, factor):
    """array * factor, computed by numpy."""
    return array * factor


def checksum(data):
    """The sum of the bytes of ``data``, in plain Python (either lane)."""
    return sum(data)


def frame_mean(frame, column):
    """The mean of a pandas DataFrame column."""
    return float(frame[column].mean())


def make_frame(rows):
    import pandas
    return pandas.DataFrame({"n": list(range(rows)), "sq": [i * i for i in range(rows)]})


def mark_then_import(path, module):
    """Appends a line to ``path``, then imports ``module``: in a
    sub-interpreter a refusing module fails there, after the line, so a
    job run again shows two lines."""
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    __import__(module)
    return module


def lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def crash():
    """Dereferences NULL: SIGSEGV."""
    import ctypes
    return ctypes.string_at(0)


def exit_now(status):
    os._exit(status)


def getpid():
    return os.getpid()


def sleep_with_numpy(started_path, seconds):
    """A numpy job that sleeps: a stop signal ends the sleep."""
    import numpy
    numpy.zeros(3)
    open(started_path, "a").close()
    time.sleep(seconds)
    return "slept"


def stuck_in_c_with_numpy(started_path, seconds):
    """A numpy job stuck in one C call that holds the GIL, with the stop
    signal blocked: only killing its process ends it early. The signal is
    blocked first, so a stop that comes early (a slow import on a busy
    machine) cannot end the job the polite way either."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    import ctypes
    import numpy
    numpy.zeros(3)
    open(started_path, "a").close()
    ctypes.PyDLL(None).sleep(int(seconds))  # PyDLL: the GIL stays held
    return "not stopped"


def print_and_return(text):
    print(text, flush=True)
    return text


def put_squares(queue, count):
    """Puts count squares computed by numpy on a queue."""
    import numpy
    for value in numpy.arange(count) ** 2:
        queue.put(int(value))
    return count


def get_one(queue):
    return queue.get()


def set_state(value):
    global _state
    _state = value


def get_state():
    return globals().get("_state")


def churn(nbytes):
    """Allocates three arrays of ``nbytes`` at once with numpy, writes them
    and frees them: the worker process's pid."""
    import numpy
    (numpy.ones(nbytes // 8) + numpy.ones(nbytes // 8)).sum()
    return os.getpid()


def call_each(functions):
    """[f() for f in functions]: an object array of functions, say."""
    return [f() for f in functions]
