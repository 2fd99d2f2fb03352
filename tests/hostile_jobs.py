"""Jobs that misbehave on purpose, for tests/attack_jobs_e2e_test.py and
tests/nothing_lost_e2e_test.py.

Like ``jobs.py``, this file's directory is on the daemon's ``--python-path``.
Every job that could block has a deadline, so a failed test never leaves one
running for long.
"""

import os
import signal
import sys
import threading
import time

WAIT_TIMEOUT = 60.0


def fork():
    return os.fork()


def execv():
    os.execv(sys.executable, [sys.executable, "-c", "pass"])


def install_signal_handler():
    signal.signal(signal.SIGUSR1, lambda *_: None)


def recurse(depth=0):
    return recurse(depth + 1)


def allocate(size):
    return len(bytearray(size))


def start_daemon_thread():
    threading.Thread(target=time.sleep, args=(1,), daemon=True).start()


def leave_thread_running(path, timeout=WAIT_TIMEOUT):
    """Start a (non-daemon) thread that runs until ``path`` exists, and
    return while it runs. Returns the thread's name."""
    def run():
        deadline = time.monotonic() + timeout
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)

    thread = threading.Thread(target=run, name=f"left-running {path}")
    thread.start()
    return thread.name


def log_a_line():
    """Logging, like any call of threading.current_thread(), makes the
    worker thread a _DummyThread of the job's interpreter (not a daemon
    thread, in an isolated sub-interpreter). Returns the interpreter's id."""
    import logging
    import jobs
    logging.getLogger("job").warning("a line from a job")
    return jobs.interpreter_id()


def use_datetime_and_log():
    """_datetime's shared static types, and a _DummyThread for the worker
    thread: both outlive-the-interpreter hazards on CPython 3.13.0."""
    import datetime
    import logging
    logging.getLogger("job").warning("at %s", datetime.datetime.now())
    return datetime.date(2026, 12, 3).isoformat()


def left_running_threads():
    """Names of the threads ``leave_thread_running`` left in this interpreter."""
    return sorted(t.name for t in threading.enumerate()
                  if t.name.startswith("left-running"))


def exit_process(code):
    os._exit(code)


def record_once(path, job_id, size=0):
    """Append ``job_id`` as one line to ``path`` (one O_APPEND write, so lines
    from concurrent jobs never mix) and return it with ``size`` bytes."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{job_id}\n".encode())
    finally:
        os.close(fd)
    return job_id, bytes(size)
