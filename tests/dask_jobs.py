"""Task functions for dask_e2e_test, importable by the Dask workers (their
PYTHONPATH) and by the daemons (--python-path). No dask or numpy at the top:
the interpreter lane imports this module too.
"""

import os
import time

import extrainterpreters

WAIT_TIMEOUT = 60.0


def square_where(x):
    """x * x, and where it ran."""
    return x * x, tuple(extrainterpreters.where())


def add_where(x, y):
    return x + y, tuple(extrainterpreters.where())


def total(pairs):
    """The sum of (value, placement) pairs' values, and their placements."""
    return sum(value for value, _ in pairs), [where for _, where in pairs]


def numpy_where(array):
    """The sum of a numpy array (a process-lane job: its argument names
    numpy), and where it ran."""
    return int(array.sum()), tuple(extrainterpreters.where())


def fail(message):
    raise ValueError(message)


def spin_until(started, release):
    """Writes where it runs to ``started``, then spins in Python (so a
    cancel can stop it) until ``release`` exists or the timeout passes."""
    with open(started, "w") as f:
        f.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + WAIT_TIMEOUT
    while not os.path.exists(release):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release} never appeared")
        for _ in range(10000):
            pass
    return "released"


def busy_square(x, loops=20000):
    """x * x after some pure-Python work, and where it ran."""
    n = 0
    for i in range(loops):
        n += i & 7
    return x * x, tuple(extrainterpreters.where())
