"""The system service under a real systemd: PID 1 of a container.

A Debian root file system, built once and cached (tests/nspawn/build_root.sh),
boots under ``systemd-nspawn`` with an overlay that keeps it unchanged. The
build under test is laid out as a built checkout, bound read-only at
/src/extrainterpreters, and installed there by ``deploy/install.sh`` as a
user would run it; the CPython the daemon embeds (pyenv's, under /root) is
bound read-only at the same path. Everything is then checked through
``systemctl`` and ``journalctl`` inside (tests/nspawn/container.py says how
the test gets in), with clients on the host that connect through
``/proc/<container's PID 1>/root/run/extrainterpreters/ei.sock``.

The tests share one container (booting it takes about a second); each one
puts the service in the state it needs first, so their order does not
matter. The container is powered off at the end and nothing of it may be
left on the host.
"""

import asyncio
import json
import operator
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "nspawn"))
import harness  # noqa: E402
from container import Container, cannot_run_reason  # noqa: E402

import extrainterpreters  # noqa: E402

UNIT = "extrainterpreters.service"
SOCKET_UNIT = "extrainterpreters.socket"
SOCKET = "/run/extrainterpreters/ei.sock"
CONFIG = "/etc/extrainterpreters/config.json"
CHECKOUT = "/src/extrainterpreters"  # where install.sh runs from, inside
# On the daemon's --python-path: readable by the service user, and outside
# /home and /root (ProtectHome=).
JOBS_DIR = "/opt/ei-test"
SLOW_IMPORT_SECONDS = 2.0  # the preloaded module's import time
# A drop-in of the test's own, so a hung daemon is caught in seconds, not
# the unit's 30.
WATCHDOG_SECONDS = 3
# docs/operations.md: "Overall exposure level: 0.5 SAFE".
MAX_EXPOSURE = 0.5
# The units' RestartSec=, as systemctl shows it: a fast comeback after a
# crash (docs/operations.md has the measured time to a new client's job).
RESTART_SEC = "100ms"
DAEMON_LOG_ID = "extrainterpretersd"  # SYSLOG_IDENTIFIER of the daemon's lines



def segfault():
    """A job that ends the daemon with SIGSEGV (shipped by value: the
    daemon's --python-path here is the container's). Reading address 0
    through ctypes where it loads in a sub-interpreter (3.13); 3.12's
    _ctypes refuses them, so there the job raises the same signal."""
    try:
        import ctypes
    except ImportError:
        signal.raise_signal(signal.SIGSEGV)
    else:
        ctypes.string_at(0)


FIRST_CLIENT = """
import extrainterpreters, operator
print(extrainterpreters.__file__)
print(extrainterpreters.run(operator.mul, 6, 7))
"""


def runfile(*parts):
    return os.path.join(os.environ["TEST_SRCDIR"], "extrainterpreters", *parts)


def cached_root():
    """The container's root file system, built on first use (by this test or
    by ./test.sh ahead of it; the script waits on a lock for a build in
    progress)."""
    cache = os.environ.get("EI_NSPAWN_CACHE") or os.path.join(
        pwd.getpwuid(os.getuid()).pw_dir, ".cache", "extrainterpreters")
    result = subprocess.run([runfile("tests", "nspawn", "build_root.sh")],
                            env=dict(os.environ, EI_NSPAWN_CACHE=cache),
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise AssertionError(f"cannot build the container's root:\n{result.stderr}")
    return result.stdout.strip().splitlines()[-1]


def stage_checkout(into):
    """What deploy/install.sh reads, laid out as a checkout after
    ``bazel build``: deploy/, client/python/ and bazel-bin/{daemon,cli}/."""
    shutil.copytree(runfile("deploy"), os.path.join(into, "deploy"))
    shutil.copytree(runfile("client", "python"), os.path.join(into, "client", "python"))
    for name, variable in (("extrainterpretersd", "EI_DAEMON"),
                           ("extrainterpretersctl", "EI_CTL")):
        folder = "daemon" if name == "extrainterpretersd" else "cli"
        os.makedirs(os.path.join(into, "bazel-bin", folder))
        shutil.copy(harness.built_binary(name, variable),
                    os.path.join(into, "bazel-bin", folder, name))


def python_home(daemon):
    """The prefix of the CPython the daemon loads libpython from."""
    out = subprocess.run(["ldd", daemon], capture_output=True, text=True, check=True).stdout
    match = re.search(r"libpython\S* => (/\S+)", out)
    if match is None:
        raise AssertionError(f"the daemon does not load a libpython:\n{out}")
    home = os.path.dirname(os.path.dirname(match.group(1)))
    if home in ("/", "/usr"):
        raise AssertionError(f"the daemon embeds the system's Python ({home}); this test "
                             "binds a self-contained one (pyenv's) into the container")
    return home


class SystemdServiceTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        reason = cannot_run_reason()
        if reason:
            raise unittest.SkipTest(reason)
        cls.tmp = tempfile.mkdtemp(prefix="ei-nspawn-", dir="/tmp")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        cls.root = cached_root()
        checkout = os.path.join(cls.tmp, "checkout")
        stage_checkout(checkout)
        home = python_home(harness.daemon_binary())
        cls.box = Container(cls.root, f"ei-test-{os.getpid()}",
                            {home: home, checkout: CHECKOUT},
                            os.path.join(cls.tmp, "console.log"))
        cls.addClassCleanup(cls.power_off)
        # A test runner's SIGTERM (a timeout) must not leave a container.
        signal.signal(signal.SIGTERM, cls.on_sigterm)
        started = time.monotonic()
        cls.box.boot()
        print(f"container booted in {time.monotonic() - started:.1f} s", file=sys.stderr)
        cls.install = cls.box.run(f"{CHECKOUT}/deploy/install.sh", timeout=300)
        cls.box.write(f"{JOBS_DIR}/slow_import.py",
                      f"import time\ntime.sleep({SLOW_IMPORT_SECONDS})\n")
        cls.box.write(f"/etc/systemd/system/{UNIT}.d/test-watchdog.conf",
                      f"[Service]\nWatchdogSec={WATCHDOG_SECONDS}s\n")
        cls.box.run("systemctl", "daemon-reload")

    @classmethod
    def on_sigterm(cls, signum, frame):
        cls.box.kill()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        os._exit(128 + signum)

    @classmethod
    def power_off(cls):
        started = time.monotonic()
        cls.box.poweroff()
        print(f"container powered off in {time.monotonic() - started:.1f} s", file=sys.stderr)
        left = cls.box.leftovers()
        if left:
            raise AssertionError(f"processes of the container outlived it: {left}")
        for installed in ("usr/local/bin/extrainterpretersd", f"etc/systemd/system/{UNIT}"):
            if os.path.exists(os.path.join(cls.root, installed)):
                raise AssertionError(f"the cached root was written to: {installed}")

    # Helpers.

    def show(self, *properties, unit=UNIT):
        out = self.box.run("systemctl", "show", "-p", ",".join(properties), unit).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def write_config(self, **settings):
        self.box.write(CONFIG, json.dumps({"allow_groups": ["extrainterpreters"],
                                           "workers": 2, "python_path": [JOBS_DIR],
                                           **settings}))

    def start_service(self, **settings):
        """(Re)start the service on a fresh config; returns its MainPID once
        it is active (Type=notify: after READY=1)."""
        self.write_config(**settings)
        self.box.run("systemctl", "reset-failed", UNIT, check=False)
        self.box.run("systemctl", "restart", UNIT, timeout=120)
        state = self.show("ActiveState", "MainPID")
        self.assertEqual(state["ActiveState"], "active")
        return int(state["MainPID"])

    def reload(self, **settings):
        self.write_config(**settings)
        self.box.run("systemctl", "reload", UNIT)

    def client(self, **kwargs):
        client = extrainterpreters.Client(self.box.path(SOCKET), **kwargs)
        self.addCleanup(client.close)
        return client

    def ctl_status(self):
        """``extrainterpretersctl status --json``, run inside (the installed CLI)."""
        out = self.box.run("extrainterpretersctl", "--socket", SOCKET, "status", "--json")
        return json.loads(out.stdout)

    def pool_size(self):
        return len(harness.pool_workers(self.ctl_status()))

    def messages(self, entries, identifier=None):
        return [e.get("MESSAGE", "") for e in entries
                if identifier is None or e.get("SYSLOG_IDENTIFIER") == identifier]

    def wait_for_journal(self, after, *phrases):
        """The unit's journal since ``after`` once it holds every phrase."""
        def found():
            text = "\n".join(self.messages(self.box.journal(UNIT, after=after)))
            return text if all(p in text for p in phrases) else None
        return harness.wait_until(found, 30, f"{phrases} in the journal")

    def first_new_run(self):
        """Seconds until a brand-new client runs a job (retrying while the
        daemon is away)."""
        started = time.monotonic()
        while True:
            try:
                with extrainterpreters.Client(self.box.path(SOCKET), connect_timeout=10) as c:
                    self.assertEqual(c.run(operator.add, 2, 3, timeout=10), 5)
                    return time.monotonic() - started
            except extrainterpreters.DaemonConnectionError:
                if time.monotonic() - started > 30:
                    raise
                time.sleep(0.01)

    def process_workers(self):
        """(host pid, cgroup) of every process-lane worker in the container."""
        return [(pid, cgroup) for pid, argv, cgroup in self.box.processes()
                if "--process-worker" in argv]

    # The checks.

    def test_install_sh_installs_and_enables_the_socket_only(self):
        self.assertIn("install.sh: installed the Python client into /usr/bin/python3",
                      self.install.stdout)
        self.assertIn("python-home.conf", self.install.stdout)
        self.assertIn("enabled extrainterpreters.socket", self.install.stdout)
        self.assertEqual(self.box.run("systemctl", "is-enabled", SOCKET_UNIT).stdout.strip(),
                         "enabled")
        self.assertEqual(self.box.run("id", "-nG", "extrainterpreters").stdout.strip(),
                         "extrainterpreters")

    def test_socket_activation_and_ready_once_the_pool_is_warm(self):
        self.box.run("systemctl", "stop", UNIT)
        self.write_config(preload=["slow_import"])
        self.assertEqual(self.show("ActiveState")["ActiveState"], "inactive")
        self.assertEqual(self.show("ActiveState", "SubState", unit=SOCKET_UNIT),
                         {"ActiveState": "active", "SubState": "listening"})
        # The first client runs inside, with the Python client install.sh put
        # into Debian's python3.
        first = self.box.run("python3", "-c", FIRST_CLIENT, background=True,
                             env=[f"EXTRAINTERPRETERS_SOCKET={SOCKET}"])
        seen = set()

        def active():
            state = self.show("ActiveState", "SubState")
            seen.add((state["ActiveState"], state["SubState"]))
            return state["ActiveState"] == "active"
        harness.wait_until(active, 60, "the socket-activated service to become active")
        out, err = first.communicate(timeout=60)
        self.assertEqual(first.returncode, 0, err)
        self.assertEqual(out.split(), ["/usr/local/lib/python3.11/dist-packages/"
                                       "extrainterpreters/__init__.py", "42"])
        self.assertIn(("activating", "start"), seen)
        # Not active until READY=1, which waits for the preloaded import.
        times = self.show("InactiveExitTimestampMonotonic", "ActiveEnterTimestampMonotonic")
        activating = (int(times["ActiveEnterTimestampMonotonic"]) -
                      int(times["InactiveExitTimestampMonotonic"])) / 1e6
        self.assertGreaterEqual(activating, SLOW_IMPORT_SECONDS - 0.05, seen)
        ready = [m for m in self.messages(self.box.journal(UNIT), DAEMON_LOG_ID)
                 if m.startswith("ready: ")]
        self.assertTrue(ready, "no ready: line in the journal")

    def test_segfaulting_job_restarts_the_daemon_and_the_same_clients_carry_on(self):
        main = self.start_service()
        restarts = int(self.show("NRestarts")["NRestarts"])
        self.client().run(os.getpid, lane="process")  # a worker process exists
        old_workers = {pid for pid, _ in self.process_workers()}
        self.assertTrue(old_workers)
        socket_path = self.box.path(SOCKET)
        crasher = self.client()
        self.assertEqual(crasher.run(operator.add, 1, 2), 3)
        bystander = self.client()
        executor = extrainterpreters.InterpreterPoolExecutor(1, socket_path=socket_path)
        self.addCleanup(executor.shutdown, wait=True, cancel_futures=True)
        self.assertEqual(executor.submit(operator.add, 1, 1).result(60), 2)
        loop = asyncio.new_event_loop()
        self.addCleanup(loop.close)
        aclient = extrainterpreters.AsyncClient(socket_path)
        self.assertEqual(loop.run_until_complete(aclient.run(operator.add, 1, 3)), 4)
        in_flight = bystander.submit(time.sleep, 60, lane="interpreter")
        mark = self.box.journal_mark()
        with self.assertRaises(extrainterpreters.DaemonConnectionError):
            crasher.run(segfault, lane="interpreter")
        # The job that was running when the daemon died fails at once, as
        # lost; it is not sent again.
        with self.assertRaises(extrainterpreters.JobLost):
            in_flight.result(60)
        comeback = self.first_new_run()
        print(f"comeback after a segfault: {comeback:.2f} s", file=sys.stderr)
        self.wait_for_journal(mark, "Main process exited, code=killed, status=11/SEGV",
                              "Scheduled restart job")
        state = self.show("MainPID", "NRestarts", "RestartUSec")
        self.assertNotEqual(int(state["MainPID"]), main)
        self.assertEqual(int(state["NRestarts"]), restarts + 1)
        self.assertEqual(state["RestartUSec"], RESTART_SEC)
        # KillMode=mixed: the crashed daemon's worker processes went with it.
        self.assertFalse(old_workers & {pid for pid, _ in self.process_workers()})
        # The objects made before the crash carry on with the new daemon.
        new_pid = int(state["MainPID"])
        self.assertEqual(crasher.run(operator.add, 2, 2), 4)
        self.assertEqual(bystander.run(operator.add, 3, 3), 6)
        self.assertEqual(executor.submit(operator.add, 4, 4).result(60), 8)
        self.assertEqual(loop.run_until_complete(aclient.run(operator.add, 5, 5)), 10)
        loop.run_until_complete(self.close_async(aclient))
        # They talk to the new daemon (its pid as it sees itself: the
        # container's, which is systemd's MainPID).
        self.assertEqual(crasher.hello["pid"], new_pid)

    @staticmethod
    async def close_async(aclient):
        aclient.close()
        await aclient.wait_closed()

    def test_watchdog_kills_and_restarts_a_hung_daemon(self):
        main = self.start_service()
        mark = self.box.journal_mark()
        # dash's built-in kill: minbase has no procps.
        self.box.run("sh", "-c", f"kill -STOP {main}")
        stopped = time.monotonic()

        def restarted():
            state = self.show("MainPID", "ActiveState")
            return state["ActiveState"] == "active" and int(state["MainPID"]) not in (0, main)
        harness.wait_until(restarted, WATCHDOG_SECONDS + 30, "the watchdog to restart it")
        print(f"hung daemon replaced after {time.monotonic() - stopped:.1f} s", file=sys.stderr)
        self.wait_for_journal(mark, f"Watchdog timeout (limit {WATCHDOG_SECONDS}s)!",
                              "status=6/ABRT", "Scheduled restart job")
        self.first_new_run()

    def test_reload_resizes_the_pool_without_dropping_a_job(self):
        main = self.start_service(workers=2)
        mark = self.box.journal_mark()
        client = self.client()
        futures = [client.submit(time.sleep, 1.0) for _ in range(6)]
        harness.wait_until(lambda: [w for w in harness.pool_workers(self.ctl_status())
                                    if w["state"] == "busy"], 30, "a running job")
        self.reload(workers=3)
        harness.wait_until(lambda: self.pool_size() == 3, 30, "three pool interpreters")
        self.reload(workers=1)
        self.assertEqual([f.result(timeout=60) for f in futures], [None] * 6)
        harness.wait_until(lambda: self.pool_size() == 1, 30, "one pool interpreter")
        self.wait_for_journal(mark, "reloaded: applied workers 2 -> 3",
                              "reloaded: applied workers 3 -> 1")
        self.assertEqual(int(self.show("MainPID")["MainPID"]), main)

    def test_journal_carries_the_daemon_log_priorities(self):
        mark = self.box.journal_mark()
        self.start_service()
        self.reload(max_queue_depth=5000)  # a warning: needs a restart
        warning = "reloaded: max_queue_depth 100000 -> 5000: needs a restart"
        self.wait_for_journal(mark, warning)
        every = self.box.journal(UNIT, after=mark)
        daemon = [e for e in every if e.get("SYSLOG_IDENTIFIER") == DAEMON_LOG_ID]
        self.assertTrue(any(e["MESSAGE"].startswith("ready: ") and e["PRIORITY"] == "6"
                            for e in daemon), daemon)
        self.assertFalse([e for e in daemon if e["MESSAGE"].startswith("<")],
                         "a <N> prefix was not taken as the priority")
        warnings = self.messages(self.box.journal(UNIT, after=mark, priority="warning"),
                                 DAEMON_LOG_ID)
        self.assertTrue(any(m.startswith(warning) for m in warnings), warnings)
        self.assertFalse([m for m in warnings if m.startswith(("ready: ", "starting: "))],
                         warnings)

    def test_security_score_of_the_live_unit(self):
        self.start_service()
        out = self.box.run("systemd-analyze", "security", "--no-pager", UNIT).stdout
        match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
        self.assertIsNotNone(match, out)
        print(f"systemd-analyze security: {match.group(1)}", file=sys.stderr)
        self.assertLessEqual(float(match.group(1)), MAX_EXPOSURE, out)

    def test_stop_leaves_no_worker_process(self):
        self.start_service(process_workers=2)
        self.client().run(os.getpid, lane="process")
        workers = harness.wait_until(lambda: len(self.process_workers()) >= 2 and
                                     self.process_workers(), 30, "two worker processes")
        for pid, cgroup in workers:
            self.assertIn(f"/system.slice/{UNIT}", cgroup, pid)
        self.box.run("systemctl", "stop", UNIT)
        self.assertEqual(self.show("ActiveState")["ActiveState"], "inactive")
        left = [(pid, argv) for pid, argv, _ in self.box.processes()
                if any("extrainterpretersd" in arg for arg in argv)]
        self.assertEqual(left, [])
        self.assertEqual(self.show("SubState", unit=SOCKET_UNIT)["SubState"], "listening")


if __name__ == "__main__":
    unittest.main()
