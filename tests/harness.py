"""Starts the real ``extrainterpretersd`` for end-to-end tests.

The daemon binary comes from ``$EI_DAEMON`` when set, else from Bazel's
runfiles (``$TEST_SRCDIR/extrainterpreters/daemon/extrainterpretersd``). Each
daemon gets a short temporary directory under /tmp for its socket and log,
since a Unix socket path must fit in 108 bytes and Bazel's temp dirs do not.
The directory of this file (holding ``jobs.py``) is on the daemon's
``--python-path``, so jobs pickled as ``jobs.<name>`` load there.

Outside Bazel, importing this module also makes the client package
importable from the source tree.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
CLIENT_DIR = os.path.join(os.path.dirname(TESTS_DIR), "client", "python")

try:
    import extrainterpreters  # noqa: F401  (Bazel puts it on the path)
except ImportError:
    sys.path.insert(0, CLIENT_DIR)
    import extrainterpreters  # noqa: F401

START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
POLL_INTERVAL = 0.02


# Where each built program lives in the tree (and in Bazel's runfiles).
_PROGRAM_FOLDERS = {"extrainterpretersd": "daemon", "extrainterpretersctl": "cli"}


def built_binary(name, override_variable):
    """Path of one of the built programs under test (daemon/ or cli/).

    ``$<override_variable>`` wins; under Bazel the runfiles hold it.
    """
    override = os.environ.get(override_variable)
    if override:
        return override
    folder = _PROGRAM_FOLDERS[name]
    srcdir = os.environ.get("TEST_SRCDIR")
    if srcdir:
        path = os.path.join(srcdir, "extrainterpreters", folder, name)
        if os.path.exists(path):
            return path
    raise RuntimeError(
        f"cannot find {name}: run under `bazel test`, or set "
        f"{override_variable}=/path/to/bazel-bin/{folder}/{name}")


def test_site_packages():
    """The site-packages of the test-only packages (numpy, pandas) that
    ./test.sh installs (tests/requirements.txt) and passes to the tests as
    $EI_TEST_SITE_PACKAGES; AssertionError when it is missing, so a test
    that needs them fails, naming the fix, instead of being skipped."""
    path = os.environ.get("EI_TEST_SITE_PACKAGES")
    if not path or not os.path.isdir(path):
        raise AssertionError(
            "the test-only packages are missing: run ./test.sh, or pass "
            "--test_env=EI_TEST_SITE_PACKAGES=<site-packages of an environment "
            "made from tests/requirements.txt> to bazel test")
    return path


def daemon_binary():
    """Path of the daemon to test; raise if it cannot be found."""
    return built_binary("extrainterpretersd", "EI_DAEMON")


def client_pythonpath():
    """PYTHONPATH entries that make ``extrainterpreters`` and ``jobs``
    importable in a child Python process."""
    package_parent = os.path.dirname(
        os.path.dirname(os.path.abspath(extrainterpreters.__file__)))
    return os.pathsep.join([package_parent, TESTS_DIR])


def touch(path):
    """Create ``path`` if missing: how tests release ``jobs.wait_for_file``."""
    with open(path, "a"):
        pass


def pool_workers(status):
    """The pool interpreters in a status document (not leased or spare)."""
    return [w for w in status["workers"] if w["kind"] == "pool"]


def queue_exists(q):
    """Whether the daemon still has the queue of ``q`` (an
    ``extrainterpreters.Queue``); any error but ``unknown_queue`` raises."""
    try:
        q.info()
        return True
    except extrainterpreters.RemoteError as exc:
        if exc.code != "unknown_queue":
            raise
        return False


def wait_until(predicate, timeout=30.0, message="condition"):
    """Poll ``predicate()`` until it returns a true value; return that value.

    Raises ``AssertionError`` naming ``message`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for "
                                 f"{message}")
        time.sleep(POLL_INTERVAL)


class RawConnection:
    """A socket speaking frames by hand, for tests of the wire protocol.

    Every read has a deadline (the socket's timeout) instead of hanging;
    sending tolerates a daemon that has already closed the connection.
    """

    HELLO = {"type": "hello", "id": 1, "protocol": 1, "client": "raw-test"}

    def __init__(self, path, *, timeout=30.0, rcvbuf=None):
        from extrainterpreters import _codec
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self._encode = _codec.encode_frame
        self.decoder = _codec.FrameDecoder()
        self.frames = []
        self.eof = False
        self.next_id = 100

    def close(self):
        self.sock.close()

    def send_bytes(self, data):
        """Send what the daemon takes; it may close before all is sent."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def send(self, header, payload=b""):
        self.send_bytes(self._encode(header, payload))

    def hello(self):
        """Say hello; return the reply's header."""
        self.send(self.HELLO)
        reply = self.read_frame()
        if reply.header["type"] != "hello":
            raise AssertionError(f"expected a hello reply, got {reply.header}")
        return reply.header

    def request(self, type_, **fields):
        """Send a request and return the header of the reply with its id."""
        self.next_id += 1
        self.send({"type": type_, "id": self.next_id, **fields})
        return self.read_reply(self.next_id)

    def run(self, request_id, payload):
        self.send({"type": "run", "id": request_id}, payload)

    def read_reply(self, request_id):
        """The header of the next frame answering ``request_id``; other
        frames stay queued."""
        while True:
            for i, reply in enumerate(self.frames):
                if reply.header.get("id") == request_id:
                    return self.frames.pop(i).header
            if self.eof:
                raise AssertionError(
                    f"connection closed before reply {request_id}")
            self._fill()

    def read_frame(self):
        """The next frame; AssertionError if the connection ends first."""
        while not self.frames:
            if self.eof:
                raise AssertionError("connection closed before a frame came")
            self._fill()
        return self.frames.pop(0)

    def read_until_eof(self):
        """Every frame until the daemon closes the connection."""
        while not self.eof:
            self._fill()
        frames, self.frames = self.frames, []
        return frames

    def _fill(self):
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return
        self.frames += self.decoder.feed(data)


class Daemon:
    """One ``extrainterpretersd`` process on a private socket."""

    def __init__(self, *, workers=2, extra_args=()):
        self.workers = workers
        self.extra_args = list(extra_args)
        self.tmpdir = tempfile.mkdtemp(prefix="ei-", dir="/tmp")
        self.socket_path = os.path.join(self.tmpdir, "ei.sock")
        self.log_path = os.path.join(self.tmpdir, "daemon.log")
        self.process = None

    def command(self):
        return [daemon_binary(), "--socket", self.socket_path,
                "--workers", str(self.workers),
                "--python-path", TESTS_DIR, *self.extra_args]

    def start(self):
        """Start the daemon and wait until it reports ready."""
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        last_error = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"extrainterpretersd exited with status "
                    f"{self.process.returncode} while starting; its log:\n"
                    f"{self.log()}")
            try:
                with extrainterpreters.Client(self.socket_path,
                                              connect_timeout=5) as client:
                    client.ping(timeout=5)
                    if client.status(timeout=5).get("state") == "ready":
                        return
            except (extrainterpreters.ExtraInterpretersError,
                    TimeoutError) as exc:
                last_error = exc
            time.sleep(POLL_INTERVAL)
        raise AssertionError(
            f"extrainterpretersd was not ready after {START_TIMEOUT} s "
            f"(last error: {last_error}); its log:\n{self.log()}")

    def log(self):
        """The daemon's stderr so far."""
        try:
            with open(self.log_path, encoding="utf-8",
                      errors="replace") as log:
                return log.read()
        except OSError as exc:
            return f"(cannot read {self.log_path}: {exc})"

    def terminate(self):
        """Send SIGTERM and return the exit status (killing on timeout)."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"extrainterpretersd ignored SIGTERM for {STOP_TIMEOUT} s "
                f"and was killed; its log:\n{self.log()}")

    def stop(self):
        """Stop the daemon if running and remove its directory. Idempotent."""
        try:
            self.terminate()
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def client(self, test_case=None):
        """A new Client on this daemon, closed at ``test_case`` cleanup."""
        client = extrainterpreters.Client(self.socket_path)
        if test_case is not None:
            test_case.addCleanup(client.close)
        return client


@contextlib.contextmanager
def running_daemon(**kwargs):
    """Context manager: a started ``Daemon``, always stopped on exit."""
    daemon = Daemon(**kwargs)
    try:
        yield daemon.start()
    finally:
        daemon.stop()


class DaemonTestCase(unittest.TestCase):
    """Base class: one daemon shared by the tests of a class.

    Tests that stop or break the daemon start their own with
    ``self.start_daemon()``.
    """

    workers = 2
    daemon_args = ()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.daemon = Daemon(workers=cls.workers, extra_args=cls.daemon_args)
        cls.addClassCleanup(cls.daemon.stop)
        cls.daemon.start()

    def setUp(self):
        super().setUp()
        status = self.daemon.process.poll()
        if status is not None:
            how = (f"killed by signal {-status}" if status < 0
                   else f"exit status {status}")
            self.fail(f"the shared daemon has exited ({how}); its log:\n"
                      f"{self.daemon.log()}")
        self.client = self.daemon.client(self)

    def start_daemon(self, **kwargs):
        """A private daemon for this test, stopped at cleanup."""
        kwargs.setdefault("workers", self.workers)
        daemon = Daemon(**kwargs)
        self.addCleanup(daemon.stop)
        return daemon.start()

    def release_file(self, daemon=None):
        """A path for ``jobs.wait_for_file`` that is created at cleanup.

        It lives in the daemon's directory, which outlives the daemon's
        jobs, so a job released by the cleanup always sees the file.
        """
        daemon = daemon or self.daemon
        path = os.path.join(daemon.tmpdir, f"release-{uuid.uuid4().hex}")
        self.addCleanup(touch, path)
        return path

    def tmp_path(self):
        """A fresh directory, removed at cleanup."""
        path = tempfile.mkdtemp(prefix="ei-test-", dir="/tmp")
        self.addCleanup(shutil.rmtree, path, ignore_errors=True)
        return path
