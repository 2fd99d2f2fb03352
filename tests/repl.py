"""A real interactive Python on a pseudo-terminal, for tests that type at it."""

import os
import pty
import re
import select
import subprocess
import sys
import time

import harness

__all__ = ["REPL_TIMEOUT", "run_repl"]

REPL_TIMEOUT = 60.0


def run_repl(test_case, lines, expected, *, cwd=None, pythonpath=None):
    """Runs ``sys.executable -i`` on a pty, types ``lines``; returns output.

    Each line is typed once the prompt after the previous one appeared
    (``>>> ``, or ``... `` inside a block); reading stops when every
    ``expected`` text was printed, or after REPL_TIMEOUT.
    ``cwd`` is where it runs (its ``sys.path[0]``); ``pythonpath`` defaults
    to the client package and the tests' folder.
    """
    env = dict(os.environ, TERM="xterm", PYTHONSTARTUP="",
               PYTHONPATH=pythonpath or harness.client_pythonpath())
    # Popen rather than pty.fork(): this process has threads (clients'
    # readers), and only exec is safe in a child forked from them.
    fd, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-i", "-q"], env=env, cwd=cwd,
                               stdin=terminal, stdout=terminal,
                               stderr=terminal, start_new_session=True)
    os.close(terminal)
    test_case.addCleanup(_reap, process, fd)
    reader = _PtyReader(fd, time.monotonic() + REPL_TIMEOUT)
    reader.wait_for(">>> ")
    for line in lines:
        os.write(fd, line.encode() + b"\r")
        reader.wait_for(">>> ", "... ", after_mark=True)
    for text in expected:
        reader.wait_for(text)
    os.write(fd, b"exit()\r")
    return reader.text


def _reap(process, fd):
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    os.close(fd)


class _PtyReader:
    """Reads what a pty child prints, with a deadline for every wait."""

    _ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")

    def __init__(self, fd, deadline):
        self._fd = fd
        self._deadline = deadline
        self._raw = ""
        self._mark = 0  # wait_for(after_mark=True) looks past this offset

    @property
    def text(self):
        """Everything read so far, without terminal escape sequences."""
        return self._ESCAPES.sub("", self._raw)

    def wait_for(self, *texts, after_mark=False):
        """Reads until one of ``texts`` was printed (past the mark of the
        last wait, with ``after_mark``), and moves the mark past it."""
        start = self._mark if after_mark else 0
        while not any(text in self.text[start:] for text in texts):
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the REPL did not print {texts!r}; it "
                                     f"printed:\n{self.text}")
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self._fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the REPL exited before printing "
                                         f"{texts!r}; it printed:\n{self.text}")
                self._raw += chunk.decode(errors="replace")
        rest = self.text[start:]
        self._mark = start + min(rest.index(t) + len(t) for t in texts
                                 if t in rest)
