"""A real Dask cluster for tests: a scheduler and worker processes
(``python -m distributed.cli.dask_*``), started and stopped here, on the
loopback or each worker in a network namespace of its own (``Network``).

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


class Network:
    """Hosts of their own on one bridge, made with network namespaces.

    ``enter()`` moves this process into a new network namespace, where a
    bridge (``HOST``) is the scheduler's host; each worker started with
    ``wrap()`` gets a namespace of its own, a veth into the bridge and an
    address on it, so Dask's traffic (client to scheduler, scheduler to
    worker, worker to worker) is TCP between namespaces. Everything is
    anonymous: it ends with the processes (a worker's namespace and its
    veth pair when the worker exits, the bridge with this process), so a
    killed test leaves nothing. Needs CAP_SYS_ADMIN and CAP_NET_ADMIN (root).
    """

    HOST = "10.201.0.1"
    _BRIDGE = "ei-dask-br"

    def __init__(self):
        self._ip = _tool("ip")
        self._nsenter = _tool("nsenter")
        self._unshare = _tool("unshare")
        self._next = 1

    @classmethod
    def enter(cls):
        """Move this process into a namespace of its own, with the bridge.
        Call it before any thread starts (a namespace is per thread, and
        threads inherit it). Return the Network, or raise OSError."""
        network = cls()
        os.unshare(os.CLONE_NEWNET)
        network._run("link", "set", "lo", "up")
        network._run("link", "add", cls._BRIDGE, "type", "bridge")
        network._run("addr", "add", f"{cls.HOST}/24", "dev", cls._BRIDGE)
        network._run("link", "set", cls._BRIDGE, "up")
        return network

    def wrap(self, ready):
        """(command prefix, address) for a worker: the prefix runs it in a
        new namespace once the file ``ready`` exists (``attach`` makes it
        after the network is up); ``address`` is the worker's."""
        self._next += 1
        address = f"10.201.0.{self._next}"
        wait = ('i=0; until [ -e "$0" ]; do i=$((i+1)); '
                f'[ $i -lt {int(START_TIMEOUT * 20)} ] || exit 70; '
                'sleep 0.05; done; exec "$@"')
        return [self._unshare, "--net", "--", "/bin/sh", "-c", wait,
                ready], address

    def attach(self, process, address, ready):
        """Link the namespace of ``process`` (started with ``wrap``) to the
        bridge, give it ``address``, then create ``ready``."""
        pid = process.pid
        own = os.readlink("/proc/self/ns/net")
        harness.wait_until(
            lambda: _namespace(pid) not in (own, None) or _exited(process),
            START_TIMEOUT, f"worker {pid} to enter its network namespace")
        if process.poll() is not None:
            raise AssertionError(f"worker {pid} exited with status "
                                 f"{process.returncode} before its network")
        veth = f"ei-veth{address.rsplit('.', 1)[1]}"
        self._run("link", "add", veth, "type", "veth", "peer", "name", "eth0",
                  "netns", str(pid))
        self._run("link", "set", veth, "master", self._BRIDGE, "up")
        inside = [self._nsenter, f"--net=/proc/{pid}/ns/net", self._ip]
        for args in (("link", "set", "lo", "up"),
                     ("addr", "add", f"{address}/24", "dev", "eth0"),
                     ("link", "set", "eth0", "up")):
            _check([*inside, *args])
        harness.touch(ready)

    def _run(self, *args):
        _check([self._ip, *args])


def _tool(name):
    path = shutil.which(name, path=os.pathsep.join(
        [os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin", "/bin"]))
    if path is None:
        raise OSError(f"{name} is not installed (needed for network "
                      f"namespaces)")
    return path


def _check(command):
    ran = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if ran.returncode != 0:
        raise OSError(f"{' '.join(command)} failed ({ran.returncode}): "
                      f"{ran.stderr.strip()}")


def _namespace(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _exited(process):
    return process.poll() is not None


class DaskCluster:
    """A scheduler (TCP, an ephemeral port) and named workers, on
    127.0.0.1, or each worker on a host of its own in ``network``."""

    def __init__(self, site_packages, *, network=None):
        self.tmpdir = tempfile.mkdtemp(prefix="ei-dask-", dir="/tmp")
        self.site_packages = site_packages
        self.network = network
        self.host = network.HOST if network else "127.0.0.1"
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
        wrap, address = [], "127.0.0.1"
        ready = os.path.join(self.tmpdir, f"{name}.network-ready")
        if self.network is not None:
            wrap, address = self.network.wrap(ready)
        command = ["distributed.cli.dask_worker", self.address,
                   "--name", name, "--nthreads", str(nthreads), "--no-nanny",
                   "--no-dashboard", "--death-timeout", "60",
                   "--host", address,
                   "--local-directory", os.path.join(self.tmpdir, name),
                   *args]
        process = self._spawn(name, command, env=env, wrap=wrap)
        self.workers[name] = process
        if self.network is not None:
            self.network.attach(process, address, ready)
        return process

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
        # setpriv runs last: the parent whose death sends SIGTERM is this
        # process, however many execs come before.
        command = [*wrap, _tool("setpriv"), "--pdeathsig", "TERM", "--",
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
