"""A CPU-bound job for the examples: pure Python, so it holds its GIL.

The daemon imports this module by name, so it must be on the daemon's
``--python-path`` (./run.sh starts it that way).
"""

import threading
import time


def _interpreter_id():
    try:
        import _interpreters  # Python 3.13+: get_current() is (id, whence)
        return _interpreters.get_current()[0]
    except ImportError:
        import _xxsubinterpreters  # Python 3.12: get_current() is the id
        return int(_xxsubinterpreters.get_current())


def count_primes(lo, hi):
    """Counts the primes in [lo, hi) by trial division; reports where it ran."""
    started = time.time()
    count = 0
    for n in range(max(lo, 2), hi):
        if n % 2 == 0:
            count += n == 2
            continue
        d = 3
        while d * d <= n:
            if n % d == 0:
                break
            d += 2
        else:
            count += 1
    return {
        "range": (lo, hi),
        "primes": count,
        "interpreter": _interpreter_id(),
        "thread": threading.get_native_id(),
        "started": started,
        "ended": time.time(),
    }
