"""End-to-end tests of the daemon under a service manager's protocols.

The real ``extrainterpretersd`` runs under ``systemd-socket-activate``, which
binds the socket and passes it as fd 3 with ``LISTEN_FDS``/``LISTEN_PID``,
as systemd does. The test plays the service manager's other half: a
datagram socket as ``NOTIFY_SOCKET`` that records every notification with
the time it came. No systemd as PID 1 is needed.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import jobs  # noqa: E402

import extrainterpreters  # noqa: E402

ACTIVATE = shutil.which("systemd-socket-activate")
WATCHDOG_USEC = 1_000_000  # WatchdogSec=1s: pings expected every 0.5 s
SLOW_IMPORT_SECONDS = 1.5  # the preloaded module's import time


class FakeServiceManager:
    """A NOTIFY_SOCKET listener: (time, {key: value}) per datagram."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.messages = []

    def poll(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, BlockingIOError):
                return self.messages
            fields = dict(line.split("=", 1)
                          for line in data.decode().splitlines() if line)
            self.messages.append((time.monotonic(), fields))

    def wait_for(self, key, value=None, count=1, timeout=30.0):
        """The first `count` messages holding `key` (= `value`)."""
        def matching():
            return [m for m in self.poll()
                    if key in m[1] and (value is None or m[1][key] == value)]
        return harness.wait_until(lambda: len(matching()) >= count and matching(),
                                  timeout, f"{count} x {key}={value} from the daemon")

    def close(self):
        self.sock.close()


@unittest.skipIf(ACTIVATE is None, "systemd-socket-activate is not installed "
                 "(Debian package systemd; bazel/install_deps.sh installs it)")
class SocketActivatedDaemonTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ei-sd-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.socket_path = os.path.join(self.dir, "ei.sock")
        self.manager = FakeServiceManager(os.path.join(self.dir, "notify"))
        self.addCleanup(self.manager.close)
        with open(os.path.join(self.dir, "slow_import.py"), "w") as f:
            f.write(f"import time\ntime.sleep({SLOW_IMPORT_SECONDS})\n")
        self.config_path = os.path.join(self.dir, "config.json")
        self.write_config(workers=2)
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.process = None

    def write_config(self, **settings):
        with open(self.config_path, "w") as f:
            json.dump(settings, f)

    def start(self):
        command = [
            ACTIVATE, "--listen", self.socket_path,
            "-E", f"NOTIFY_SOCKET={self.manager.sock.getsockname()}",
            "-E", f"WATCHDOG_USEC={WATCHDOG_USEC}",
            harness.daemon_binary(), "--config", self.config_path,
            "--preload", "slow_import",
            "--python-path", f"{harness.TESTS_DIR}:{self.dir}"]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(self.kill)
        harness.wait_until(lambda: os.path.exists(self.socket_path), 10,
                           "systemd-socket-activate to bind the socket")
        self.started = time.monotonic()
        # systemd-socket-activate starts the daemon on the first connection.
        self.first_client = extrainterpreters.Client(self.socket_path)
        self.addCleanup(self.first_client.close)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def test_ready_status_watchdog_reload_and_stop(self):
        self.start()
        ready_at, ready = self.manager.wait_for("READY", "1")[0]
        # READY=1 only once the warm pool exists: the preloaded module's
        # import is part of it.
        self.assertGreaterEqual(ready_at - self.started, SLOW_IMPORT_SECONDS - 0.1)
        self.assertIn("ready:", self.log())
        self.assertEqual(self.first_client.status(timeout=10)["state"], "ready")
        self.assertTrue(ready["STATUS"].startswith("ready: 2 pool interpreters"),
                        ready["STATUS"])
        self.assertEqual(self.first_client.run(jobs.add, 2, 3), 5)

        # Pings from the health probe, about every WATCHDOG_USEC / 2.
        pings = self.manager.wait_for("WATCHDOG", "1", count=4, timeout=10)
        self.assertGreater(pings[0][0], ready_at - 0.001)
        gaps = [b[0] - a[0] for a, b in zip(pings, pings[1:])]
        self.assertLess(max(gaps), 0.9 * WATCHDOG_USEC / 1e6, gaps)
        # STATUS= is refreshed on a timer and counts what happened.
        status = harness.wait_until(
            lambda: [m for t, m in self.manager.poll()
                     if "STATUS" in m and "1 jobs done" in m["STATUS"]],
            15, "a STATUS= line counting the job")
        self.assertIn("1 clients", status[0]["STATUS"])

        # SIGHUP: the config file is re-read, the pool grows, the socket
        # change is refused for now.
        self.write_config(workers=3, socket="/tmp/elsewhere.sock")
        before = len(self.manager.poll())
        self.process.send_signal(signal.SIGHUP)
        reloading_at = self.manager.wait_for("RELOADING", "1")[0][0]
        harness.wait_until(lambda: [m for m in self.manager.poll()[before:]
                                    if "READY" in m[1]], 10, "READY=1 after the reload")
        after = [m for m in self.manager.poll()[before:] if "READY" in m[1]]
        self.assertGreater(after[0][0], reloading_at)
        self.assertIn("reloaded: applied workers 2 -> 3", self.log())
        self.assertRegex(self.log(), r"WARNING reloaded: socket \S+ -> /tmp/elsewhere.sock: "
                                     r"needs a restart")
        harness.wait_until(
            lambda: len(harness.pool_workers(self.first_client.status(timeout=10))) == 3,
            30, "a third pool interpreter")
        self.assertEqual(self.first_client.run(jobs.add, 1, 1), 2)

        # SIGTERM: STOPPING=1, a clean exit, and systemd's socket file stays.
        self.process.send_signal(signal.SIGTERM)
        self.manager.wait_for("STOPPING", "1")
        self.assertEqual(self.process.wait(60), 0, self.log())
        self.assertTrue(os.path.exists(self.socket_path),
                        "the daemon removed the socket file systemd owns")
        self.assertIn("stopped: exit status 0", self.log())

    def test_shrinking_the_pool_on_reload_drops_no_job(self):
        self.write_config(workers=3)
        self.start()
        self.manager.wait_for("READY", "1")
        futures = [self.first_client.submit(jobs.sleep, 0.2) for _ in range(12)]
        self.write_config(workers=1)
        self.process.send_signal(signal.SIGHUP)
        self.assertEqual([f.result(timeout=60) for f in futures], [0.2] * 12)
        harness.wait_until(
            lambda: len(harness.pool_workers(self.first_client.status(timeout=10))) == 1,
            30, "the pool to shrink to one interpreter")
        self.assertIn("reloaded: applied workers 3 -> 1", self.log())


class PlainDaemonLogTest(unittest.TestCase):
    """Under systemd (INVOCATION_ID set) lines carry <N> priorities."""

    def test_journal_prefixes(self):
        daemon = harness.Daemon(workers=1)
        self.addCleanup(daemon.stop)
        os.environ["INVOCATION_ID"] = "0123456789abcdef0123456789abcdef"
        try:
            daemon.start()
        finally:
            del os.environ["INVOCATION_ID"]
        daemon.terminate()
        lines = daemon.log().splitlines()
        self.assertTrue(lines, "no log")
        self.assertTrue(all(line[:3] in ("<3>", "<4>", "<6>", "<7>") for line in lines),
                        lines)
        self.assertTrue(any(line.startswith("<6>ready: ") for line in lines), lines)


if __name__ == "__main__":
    unittest.main()
