"""A real Dask cluster for tests and benchmarks: a scheduler and worker
processes (``python -m distributed.cli.dask_*``), started and stopped here.

Every process gets SIGTERM if the process that started it dies
(``setpriv --pdeathsig``), and the workers leave by themselves when the
scheduler is gone (``--death-timeout``), so a killed test leaves nothing.
The child processes see the client package, the tests' directory and the
test-only site-packages (dask, distributed, numpy) on PYTHONPATH.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import harness

START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0


class DaskCluster:
    """A scheduler on ``host`` (TCP, an ephemeral port) and named workers.

    ``wrap(name)`` may return a command prefix for a worker (``nsenter``
    into a network namespace, say); ``host`` is the address the scheduler
    listens on and the workers reach it at.
    """

    def __init__(self, site_packages, *, host="127.0.0.1", wrap=None):
        self.tmpdir = tempfile.mkdtemp(prefix="ei-dask-", dir="/tmp")
        self.site_packages = site_packages
        self.host = host
        self._wrap = wrap or (lambda name: [])
        self.scheduler = None
        self.address = None
        self.workers = {}  # name -> Popen

    def environment(self, **extra):
        env = dict(os.environ, **extra)
        env["PYTHONPATH"] = os.pathsep.join(
            [harness.client_pythonpath(), self.site_packages])
        env.pop("PYTHONSAFEPATH", None)
        return env

    def start_scheduler(self):
        """Start the scheduler; return its address once it is listening."""
        path = os.path.join(self.tmpdir, "scheduler.json")
        self.scheduler = self._spawn(
            "scheduler", ["distributed.cli.dask_scheduler", "--host",
                          self.host, "--port", "0", "--no-dashboard",
                          "--scheduler-file", path], wrap=[])
        info = harness.wait_until(lambda: _read_json(path) or self._alive(
            self.scheduler, "the scheduler"), START_TIMEOUT,
            "the Dask scheduler to write its address")
        self.address = info["address"]
        return self.address

    def start_worker(self, name, *, nthreads=2, env=None, args=()):
        """Start a worker (no nanny) named ``name``; it joins the scheduler."""
        command = ["distributed.cli.dask_worker", self.address,
                   "--name", name, "--nthreads", str(nthreads), "--no-nanny",
                   "--no-dashboard", "--death-timeout", "60",
                   "--local-directory", os.path.join(self.tmpdir, name),
                   *args]
        self.workers[name] = self._spawn(name, command, env=env,
                                         wrap=self._wrap(name))
        return self.workers[name]

    def wait_for_workers(self, client, count):
        """Wait until ``count`` workers are registered with the scheduler."""
        client.wait_for_workers(count, timeout=START_TIMEOUT)

    def pids(self):
        processes = [self.scheduler, *self.workers.values()]
        return [p.pid for p in processes if p is not None]

    def log(self, name):
        try:
            with open(os.path.join(self.tmpdir, f"{name}.log"),
                      errors="replace") as f:
                return f.read()
        except OSError as exc:
            return f"(no log: {exc})"

    def stop(self):
        """Stop the workers, then the scheduler (SIGTERM; SIGKILL past
        STOP_TIMEOUT), and remove the directory. Idempotent. In turn: a
        worker told to close by the scheduler while a SIGTERM cancels its
        closing can hang until killed (distributed 2026.8, no nanny)."""
        for process in self.workers.values():
            _terminate(process)
        _terminate(self.scheduler)
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def _spawn(self, name, module_args, *, env=None, wrap=()):
        log = open(os.path.join(self.tmpdir, f"{name}.log"), "wb")
        command = [*wrap, "setpriv", "--pdeathsig", "TERM", "--",
                   sys.executable, "-m", *module_args]
        with log:
            return subprocess.Popen(command, env=self.environment(**(env or {})),
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT,
                                    cwd=self.tmpdir)

    def _alive(self, process, what):
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with status "
                                 f"{process.returncode}")
        return None


def _terminate(process):
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def leftover_processes(marks, pids):
    """Processes still alive among ``pids``, or whose command line holds one
    of ``marks`` (temporary directories, sockets) or whose parent is one of
    ``pids``: what a test started and did not stop. ``{pid: cmdline}``."""
    left = {}
    pids = set(pids)
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        state, parent = fields[0], int(fields[1])
        if state == "Z":
            continue
        if (int(entry) in pids or parent in pids
                or any(mark in cmdline for mark in marks)):
            left[int(entry)] = cmdline.strip()
    return left


def wait_gone(marks, pids, timeout=STOP_TIMEOUT):
    """``leftover_processes`` once none is left, else after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        left = leftover_processes(marks, pids)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)
