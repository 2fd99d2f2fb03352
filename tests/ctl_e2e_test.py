"""End-to-end tests of the command lines: ``extrainterpretersctl`` against
the real daemon, and ``extrainterpretersd``'s own flags.

The CLI comes from ``$EI_CTL`` when set, else from Bazel's runfiles; the
daemon as ``harness.daemon_binary()`` finds it. Activity the status must
show (jobs, leases, a busy worker) is made through the real client first,
and every wait is a poll with a deadline.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import jobs  # noqa: E402

import extrainterpreters  # noqa: E402

# How long one CLI run may take before the test calls it hung.
RUN_TIMEOUT = 60.0

# PROTOCOL.md, "status": the keys of the status document and its parts.
STATUS_KEYS = {
    "daemon_version", "protocol", "pid", "python", "socket", "state",
    "uptime_seconds", "workers", "leases", "queue_depth", "connections", "queues",
    "totals", "latency_us", "retired", "process_workers", "lanes",
}
WORKER_KEYS = {
    "id", "interpreter", "kind", "lease", "state", "jobs_done",
    "current_job_age_seconds",
}
LEASES_KEYS = {"active", "max"}
TOTALS_KEYS = {"submitted", "completed", "failed", "dropped", "cancelled",
               "timeouts"}
RETIRED_KEYS = {"stuck", "recycled", "threads"}
LATENCY_KEYS = {"p50", "p99", "samples"}
WORKER_KINDS = {"pool", "lease", "spare"}
WORKER_STATES = {"starting", "idle", "busy", "stopping"}

DAEMON_FLAGS = [
    "--socket", "--workers", "--config", "--preload", "--buffer-size",
    "--max-interpreters", "--max-frame-bytes", "--max-header-bytes",
    "--python-path", "--version", "--help",
]

# The header of the per-interpreter table, and how wide each row splits:
# the last column (the current job's age, "1m 05s") may hold a space.
TABLE_HEADER = re.compile(r"^WORKER\s+INTERPRETER\s+KIND\s+LEASE\s+STATE\s+"
                          r"JOBS DONE\s+CURRENT JOB\s*$")
TABLE_COLUMNS = 7


def ctl_binary():
    """Path of the CLI to test; raise if it cannot be found."""
    return harness.built_binary("extrainterpretersctl", "EI_CTL")


def run(argv, timeout=RUN_TIMEOUT):
    """Run a command to completion; stdout and stderr as text."""
    return subprocess.run(argv, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def ctl(*args, socket_path=None):
    """Run extrainterpretersctl, with ``--socket`` first when given."""
    prefix = ["--socket", socket_path] if socket_path is not None else []
    return run([ctl_binary(), *prefix, *args])


def describe(result):
    return (f"exit status {result.returncode}\nstdout:\n{result.stdout}\n"
            f"stderr:\n{result.stderr}")


def parse_summary(text):
    """The "name  value" lines above the table, as {name: value}."""
    summary = {}
    for line in text.splitlines():
        if not line.strip():
            break
        name, _, value = line.partition(" ")
        summary[name] = value.strip()
    return summary


def parse_table(text):
    """The per-interpreter rows of the text status, as lists of columns."""
    lines = text.splitlines()
    headers = [i for i, line in enumerate(lines) if TABLE_HEADER.match(line)]
    if len(headers) != 1:
        raise AssertionError(f"no single interpreter table in:\n{text}")
    rows = []
    for line in lines[headers[0] + 1:]:
        if not line.strip():
            break  # the process workers' table follows
        rows.append(line.split(None, TABLE_COLUMNS - 1))
    return rows


class CtlTestCase(harness.DaemonTestCase):
    """Runs the CLI against the class's shared daemon."""

    def ctl(self, *args):
        return ctl(*args, socket_path=self.daemon.socket_path)

    def ctl_ok(self, *args):
        result = self.ctl(*args)
        self.assertEqual(result.returncode, 0, describe(result))
        self.assertEqual(result.stderr, "", describe(result))
        return result.stdout

    def status_json(self):
        return json.loads(self.ctl_ok("status", "--json"))

    def settled_status(self):
        """The status once no interpreter is still starting (a spare is
        made again after each lease ends)."""
        return harness.wait_until(
            lambda: (lambda s: s if all(w["state"] != "starting"
                                        for w in s["workers"]) else None)(
                self.status_json()),
            message="every interpreter to finish starting")


class StatusTextTest(CtlTestCase):

    def test_summary_lines_name_the_daemon(self):
        text = self.ctl_ok("status")
        summary = parse_summary(text)
        hello = self.client.hello
        self.assertRegex(hello["python"], r"^3\.\d+\.\d+")
        self.assertEqual(
            summary.get("daemon"),
            f"extrainterpretersd {hello['daemon_version']}, "
            f"pid {self.daemon.process.pid}, Python {hello['python']}",
            text)
        self.assertRegex(summary.get("state", ""), r"^ready, up \d", text)
        self.assertEqual(summary.get("socket"), self.daemon.socket_path, text)
        self.assertRegex(
            summary.get("workers", ""),
            rf"^{self.workers} pool, \d+ leased, max "
            rf"{hello['limits']['max_interpreters']} interpreters$", text)
        for name in ("queue", "jobs", "latency"):
            self.assertIn(name, summary, text)

    def test_one_row_per_interpreter(self):
        before = self.settled_status()
        text = self.ctl_ok("status")
        after = self.status_json()
        self.assertEqual(before["workers"], after["workers"],
                         "the daemon changed while idle")
        rows = parse_table(text)
        self.assertEqual(len(rows), len(after["workers"]), text)
        for row, worker in zip(rows, after["workers"]):
            self.assertEqual(len(row), TABLE_COLUMNS, row)
            worker_id, interpreter, kind, lease, state, done, age = row
            self.assertEqual(worker_id, str(worker["id"]), text)
            self.assertEqual(interpreter, str(worker["interpreter"]), text)
            self.assertEqual(kind, worker["kind"], text)
            self.assertEqual(state, worker["state"], text)
            self.assertEqual(done, str(worker["jobs_done"]), text)
            self.assertEqual(lease, "-", text)
            self.assertEqual(age, "-", text)
        kinds = [row[2] for row in rows]
        self.assertEqual(kinds.count("pool"), self.workers, text)
        self.assertEqual({row[4] for row in rows}, {"idle"}, text)

    def test_jobs_move_the_totals_and_jobs_done(self):
        before = self.settled_status()
        values = [self.client.run(jobs.add, n, 1) for n in range(5)]
        self.assertEqual(values, [1, 2, 3, 4, 5])
        with self.assertRaises(ZeroDivisionError):
            self.client.run(jobs.divide, 1, 0)

        after = self.status_json()
        text = self.ctl_ok("status")
        delta = {key: after["totals"][key] - before["totals"][key]
                 for key in TOTALS_KEYS}
        self.assertEqual(delta, {"submitted": 6, "completed": 5, "failed": 1,
                                 "dropped": 0, "cancelled": 0, "timeouts": 0})

        def pool_jobs_done(status):
            return sum(w["jobs_done"] for w in status["workers"]
                       if w["kind"] == "pool")
        self.assertEqual(pool_jobs_done(after) - pool_jobs_done(before), 6)
        self.assertGreaterEqual(after["latency_us"]["samples"],
                                min(1024, before["latency_us"]["samples"] + 6))
        self.assertIsInstance(after["latency_us"]["p50"], (int, float))
        self.assertIsInstance(after["latency_us"]["p99"], (int, float))

        # The text shows the same numbers (nothing ran in between).
        totals = after["totals"]
        self.assertEqual(
            parse_summary(text).get("jobs"),
            f"{totals['submitted']} submitted, {totals['completed']} "
            f"completed, {totals['failed']} failed, {totals['dropped']} "
            f"dropped; {totals['cancelled']} cancelled, {totals['timeouts']} "
            f"timed out", text)
        self.assertRegex(parse_summary(text).get("latency", ""),
                         r"^p50 [\d.]+ (us|ms|s), p99 [\d.]+ (us|ms|s) over the last "
                     r"\d+ jobs$")
        done_in_text = sum(int(row[5]) for row in parse_table(text)
                           if row[2] == "pool")
        self.assertEqual(done_in_text, pool_jobs_done(after), text)

    def test_a_held_lease_is_listed(self):
        with extrainterpreters.Interpreter(self.daemon.socket_path) as interp:
            self.assertEqual(interp.run(jobs.add, 2, 3), 5)
            status = self.status_json()
            text = self.ctl_ok("status")
            leased = [w for w in status["workers"]
                      if w["interpreter"] == interp.id]
            self.assertEqual(len(leased), 1, status["workers"])
            self.assertEqual(leased[0]["kind"], "lease")
            self.assertIsInstance(leased[0]["lease"], int)
            self.assertEqual(leased[0]["jobs_done"], 1)
            self.assertEqual(status["leases"]["active"], 1)

            rows = [row for row in parse_table(text)
                    if row[1] == str(interp.id)]
            self.assertEqual(len(rows), 1, text)
            self.assertEqual(rows[0][2], "lease", text)
            self.assertEqual(rows[0][3], str(leased[0]["lease"]), text)
            self.assertEqual(rows[0][5], "1", text)
            self.assertRegex(parse_summary(text).get("workers", ""),
                             r"^\d+ pool, 1 leased, ", text)

        # The client waits for the release reply, sent once the lease ended.
        status = self.status_json()
        self.assertEqual(status["leases"]["active"], 0)
        self.assertNotIn(interp.id,
                         [w["interpreter"] for w in status["workers"]])
        self.assertNotIn("lease", [w["kind"] for w in status["workers"]])

    def test_worker_processes_have_a_table_of_their_own(self):
        self.client.run(jobs.getpid, lane="process")
        status = json.loads(self.ctl_ok("status", "--json"))
        text = self.ctl_ok("status")
        self.assertIn("PROCESS", text)
        for worker in status["process_workers"]:
            self.assertRegex(text, rf"(?m)^{worker['id']}\s+{worker['pid']}\s+"
                                   rf"{worker['kind']}\s")
        self.assertRegex(parse_summary(text).get("lanes", ""),
                         r"^\d+ in sub-interpreters, [1-9]\d* in worker processes")

    def test_busy_worker_shows_busy_and_the_job_age(self):
        release = self.release_file()
        future = self.client.submit(jobs.wait_for_file, release, "released")

        def busy_workers():
            status = self.status_json()
            busy = [w for w in status["workers"] if w["state"] == "busy"]
            return busy or None
        busy = harness.wait_until(busy_workers, message="a busy worker")
        self.assertEqual(len(busy), 1, busy)
        self.assertEqual(busy[0]["kind"], "pool")
        first_age = busy[0]["current_job_age_seconds"]
        self.assertIsInstance(first_age, float)
        self.assertGreaterEqual(first_age, 0.0)

        text = self.ctl_ok("status")
        rows = [row for row in parse_table(text)
                if row[0] == str(busy[0]["id"])]
        self.assertEqual(len(rows), 1, text)
        self.assertEqual(rows[0][4], "busy", text)
        self.assertRegex(rows[0][6], r"^(\d+\.\ds|\d+m \d\ds|\d+h \d\dm)$",
                         text)
        # The age is of the job still running: it only grows.
        again = [w for w in self.status_json()["workers"]
                 if w["id"] == busy[0]["id"]][0]
        self.assertEqual(again["state"], "busy")
        self.assertGreaterEqual(again["current_job_age_seconds"], first_age)

        harness.touch(release)
        self.assertEqual(future.result(timeout=RUN_TIMEOUT), "released")
        after = [w for w in self.status_json()["workers"]
                 if w["id"] == busy[0]["id"]][0]
        self.assertEqual(after["state"], "idle")
        self.assertIsNone(after["current_job_age_seconds"])


class StatusJsonTest(CtlTestCase):

    def test_every_documented_key_is_there(self):
        self.client.run(jobs.add, 1, 1)  # so latency has a sample
        status = self.status_json()
        self.assertEqual(set(status), STATUS_KEYS)
        self.assertEqual(status["daemon_version"],
                         self.client.hello["daemon_version"])
        self.assertEqual(status["protocol"], 1)
        self.assertEqual(status["pid"], self.daemon.process.pid)
        self.assertEqual(status["python"], self.client.hello["python"])
        self.assertEqual(status["socket"], self.daemon.socket_path)
        self.assertEqual(status["state"], "ready")
        self.assertIsInstance(status["uptime_seconds"], float)
        self.assertGreater(status["uptime_seconds"], 0.0)
        self.assertIsInstance(status["queue_depth"], int)
        # At least this client and the CLI's own connection.
        self.assertGreaterEqual(status["connections"], 2)

        self.assertEqual(set(status["leases"]), LEASES_KEYS)
        self.assertEqual(status["leases"]["max"],
                         self.client.hello["limits"]["max_interpreters"])
        self.assertEqual(set(status["totals"]), TOTALS_KEYS)
        for key in TOTALS_KEYS:
            self.assertIsInstance(status["totals"][key], int)
        self.assertGreaterEqual(status["totals"]["completed"], 1)
        self.assertEqual(set(status["retired"]), RETIRED_KEYS)
        for key in RETIRED_KEYS:
            self.assertIsInstance(status["retired"][key], int)
        self.assertEqual(set(status["latency_us"]), LATENCY_KEYS)
        self.assertGreaterEqual(status["latency_us"]["samples"], 1)

        self.assertGreaterEqual(len(status["workers"]), self.workers)
        for worker in status["workers"]:
            self.assertEqual(set(worker), WORKER_KEYS, worker)
            self.assertIn(worker["kind"], WORKER_KINDS, worker)
            self.assertIn(worker["state"], WORKER_STATES, worker)
            self.assertIsInstance(worker["id"], int)
            self.assertIsInstance(worker["interpreter"], int)
            self.assertIsInstance(worker["jobs_done"], int)
        self.assertEqual(
            [w["kind"] for w in status["workers"]].count("pool"), self.workers)

    def test_same_document_as_the_protocol_reply(self):
        from_ctl = self.settled_status()
        from_client = self.client.status(timeout=RUN_TIMEOUT)
        self.assertEqual(set(from_ctl), set(from_client))
        for key in ("daemon_version", "protocol", "pid", "python", "socket",
                    "state", "leases"):
            self.assertEqual(from_ctl[key], from_client[key], key)
        self.assertEqual([(w["id"], w["kind"]) for w in from_ctl["workers"]],
                         [(w["id"], w["kind"])
                          for w in from_client["workers"]])


class PingAndUsageTest(CtlTestCase):

    def test_ping_exits_zero(self):
        out = self.ctl_ok("ping")
        self.assertTrue(out.startswith(f"pong from {self.daemon.socket_path}"),
                        out)

    def test_help_documents_every_flag_and_command(self):
        for flag in ("--help", "-h"):
            result = ctl(flag)
            self.assertEqual(result.returncode, 0, describe(result))
            self.assertEqual(result.stderr, "")
            for word in ("--socket", "--timeout", "--json", "--help",
                         "status", "ping", "Usage: extrainterpretersctl",
                         "Exit status"):
                self.assertIn(word, result.stdout, f"{flag}: {word}")

    def test_bad_usage_exits_2_with_a_one_line_message(self):
        cases = [
            ([], "no command"),
            (["bogus"], '"bogus"'),
            (["status", "extra"], '"extra"'),
            (["ping", "--json"], '"--json"'),
            (["--timeout", "soon", "status"], '"soon"'),
            (["--timeout", "-1", "ping"], '"-1"'),
            (["status", "--socket"], "--socket needs a value"),
        ]
        for args, named in cases:
            with self.subTest(args=args):
                # With the live daemon's socket, so a command that wrongly
                # ran would succeed instead of failing to connect.
                result = ctl(*args, socket_path=self.daemon.socket_path)
                self.assertEqual(result.returncode, 2, describe(result))
                self.assertEqual(result.stdout, "", describe(result))
                lines = result.stderr.splitlines()
                self.assertTrue(lines, describe(result))
                self.assertTrue(lines[0].startswith("extrainterpretersctl: "),
                                describe(result))
                self.assertIn(named, lines[0], describe(result))
                # At most a pointer to --help follows the message.
                self.assertLessEqual(len(lines), 2, describe(result))
                if len(lines) == 2:
                    self.assertIn("--help", lines[1], describe(result))
                self.assertNotIn("Traceback", result.stderr)


class RefusedTest(harness.DaemonTestCase):
    """The daemon refuses a connection before its hello, with "id": null."""

    def test_a_full_daemon_is_reported_with_its_reason(self):
        daemon = self.start_daemon(extra_args=("--max-connections", "1"))
        holder = daemon.client(self)
        holder.ping()  # holds the one connection it allows
        result = ctl("status", socket_path=daemon.socket_path)
        self.assertEqual(result.returncode, 1, describe(result))
        self.assertIn("max_connections", result.stderr, describe(result))
        self.assertNotIn("bad reply", result.stderr, describe(result))


class NoDaemonTest(unittest.TestCase):
    """The CLI with nobody answering: one line naming path and reason."""

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="ei-ctl-", dir="/tmp")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.tmpdir]))

    def assert_one_line_error(self, result, path, reason):
        self.assertEqual(result.returncode, 1, describe(result))
        self.assertEqual(result.stdout, "", describe(result))
        lines = result.stderr.splitlines()
        self.assertEqual(len(lines), 1, describe(result))
        self.assertTrue(lines[0].startswith("extrainterpretersctl: "),
                        describe(result))
        self.assertIn(path, lines[0])
        self.assertIn(reason, lines[0])
        self.assertNotIn("Traceback", result.stderr)

    def test_missing_socket_file(self):
        path = os.path.join(self.tmpdir, "missing.sock")
        for command in (["status"], ["status", "--json"], ["ping"]):
            with self.subTest(command=command):
                self.assert_one_line_error(
                    ctl(*command, socket_path=path), path,
                    "no such socket file")

    def test_stale_socket_file_nobody_listens_on(self):
        path = os.path.join(self.tmpdir, "stale.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(path)  # The file stays after the socket closes.
        self.assertTrue(os.path.exists(path))
        for command in (["status"], ["status", "--json"], ["ping"]):
            with self.subTest(command=command):
                self.assert_one_line_error(
                    ctl(*command, socket_path=path), path,
                    "no daemon is listening")

    def test_socket_from_the_environment(self):
        path = os.path.join(self.tmpdir, "from-env.sock")
        env = dict(os.environ, EXTRAINTERPRETERS_SOCKET=path)
        result = subprocess.run([ctl_binary(), "ping"], env=env,
                                stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=RUN_TIMEOUT)
        self.assert_one_line_error(result, path, "no such socket file")


class DaemonFlagsTest(unittest.TestCase):
    """extrainterpretersd's command line, without a running daemon."""

    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="ei-flags-", dir="/tmp")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.tmpdir]))
        self.socket_path = os.path.join(self.tmpdir, "ei.sock")

    def daemon(self, *args):
        """Run the daemon to its exit. A bad command line must exit at once;
        should one start a daemon instead, it is on a private socket and
        is stopped at the deadline."""
        argv = [harness.daemon_binary(), "--socket", self.socket_path, *args]
        with subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as process:
            try:
                out, err = process.communicate(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGTERM)
                out, err = process.communicate()
                self.fail(f"{argv} did not exit by itself:\n{err}")
        return subprocess.CompletedProcess(argv, process.returncode, out, err)

    def write_config(self, document, name="config.json"):
        path = os.path.join(self.tmpdir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(document if isinstance(document, str)
                    else json.dumps(document))
        return path

    def test_help_lists_every_flag(self):
        result = self.daemon("--help")
        self.assertEqual(result.returncode, 0, describe(result))
        self.assertTrue(result.stdout.startswith("Usage: extrainterpretersd"))
        for flag in DAEMON_FLAGS:
            self.assertRegex(result.stdout, rf"(?m)^\s+(-h, )?{flag}\b",
                             f"{flag} is not documented")
        for key in ("socket", "workers", "preload", "buffer_size",
                    "max_interpreters", "max_frame_bytes",
                    "max_header_bytes", "python_path"):
            self.assertIn(key, result.stdout, f"config key {key}")

    def test_version(self):
        result = self.daemon("--version")
        self.assertEqual(result.returncode, 0, describe(result))
        self.assertRegex(result.stdout,
                         r"^extrainterpretersd \d+\.\d+\.\d+ .*Python 3\.\d+")

    def test_bad_flags_exit_2_with_a_clear_message(self):
        bad_config = self.write_config({"workers": 2, "colour": "blue"},
                                       "unknown-key.json")
        cases = [
            (["--bogus"], "unknown flag --bogus"),
            (["--bogus=1"], "unknown flag --bogus"),
            (["positional"], '"positional"'),
            (["--workers"], "--workers needs a value"),
            (["--workers", "many"], "workers"),
            (["--workers", "0"], "workers"),
            (["--buffer-size", "10X"], "buffer_size"),
            (["--max-frame-bytes", "1"], "max_frame_bytes"),
            (["--workers", "4", "--max-interpreters", "2"],
             "max_interpreters"),
            (["--config", os.path.join(self.tmpdir, "none.json")],
             "none.json"),
            (["--config", bad_config], '"colour"'),
            (["--config", self.write_config("{not json", "broken.json")],
             "broken.json"),
        ]
        for args, named in cases:
            with self.subTest(args=args):
                result = self.daemon(*args)
                self.assertEqual(result.returncode, 2, describe(result))
                self.assertEqual(result.stdout, "", describe(result))
                lines = result.stderr.splitlines()
                self.assertTrue(lines, describe(result))
                self.assertTrue(lines[0].startswith("extrainterpretersd: "),
                                describe(result))
                self.assertIn(named, lines[0], describe(result))
                self.assertLessEqual(len(lines), 2, describe(result))
                self.assertFalse(os.path.exists(self.socket_path),
                                 "a bad command line created the socket")

    def test_config_file_is_honoured_and_flags_win(self):
        config = self.write_config({"workers": 3, "max_interpreters": 5,
                                    "buffer_size": "1M"})
        # The harness passes --workers 1: it must beat the file's 3.
        with harness.running_daemon(workers=1,
                                    extra_args=["--config", config]) as daemon:
            text = ctl("status", socket_path=daemon.socket_path)
            status = ctl("status", "--json", socket_path=daemon.socket_path)
            with extrainterpreters.Client(daemon.socket_path) as client:
                hello = client.hello
        self.assertEqual(text.returncode, 0, describe(text))
        self.assertEqual(status.returncode, 0, describe(status))
        status = json.loads(status.stdout)
        kinds = [w["kind"] for w in status["workers"]]
        self.assertEqual(kinds.count("pool"), 1, status["workers"])
        self.assertEqual(status["leases"]["max"], 5)
        self.assertEqual(hello["workers"], 1)
        self.assertEqual(hello["limits"]["max_interpreters"], 5)
        self.assertEqual(hello["limits"]["buffer_size"], 1 << 20)
        self.assertRegex(parse_summary(text.stdout).get("workers", ""),
                         r"^1 pool, 0 leased, max 5 interpreters$",
                         text.stdout)
        self.assertEqual(
            [row[2] for row in parse_table(text.stdout)].count("pool"), 1)

    def test_preload_of_a_missing_module_stops_the_daemon(self):
        module = "ei_no_such_module_for_preload"
        result = self.daemon("--workers", "1", "--preload", f"json,{module}")
        self.assertNotEqual(result.returncode, 0, describe(result))
        self.assertNotIn(result.returncode, (-signal.SIGABRT,
                                             -signal.SIGSEGV),
                         describe(result))
        named = [line for line in result.stderr.splitlines()
                 if module in line]
        self.assertTrue(named, describe(result))
        self.assertTrue(any("ERROR" in line and "preload" in line
                            for line in named), describe(result))
        self.assertNotRegex(result.stderr, r"(?m) INFO ready: ",
                            describe(result))
        self.assertFalse(os.path.exists(self.socket_path),
                         "the daemon left its socket file behind")


if __name__ == "__main__":
    unittest.main()
