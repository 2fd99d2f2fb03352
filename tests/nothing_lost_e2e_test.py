"""Nothing lost, nothing run twice: several client processes keep jobs in
flight while the test SIGKILLs clients and the daemon (and starts the daemon
again on the same socket).

Every job a surviving client submitted must end on that client as a result,
an error, or a connection-loss error (``DaemonConnectionError``), never a
hang; no job may run twice, whoever submitted it. Each job appends its
unique id to one file with O_APPEND, which is how "ran" is counted.

Bounded by default (about 20 s); ``EI_SOAK_SECONDS`` runs the load longer.
"""

import collections
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

LOAD_SECONDS = float(os.environ.get("EI_SOAK_SECONDS", "10"))
CLIENTS = 4
CLIENT_SCRIPT = os.path.join(harness.TESTS_DIR, "nothing_lost_client.py")
CLIENT_KILL_EVERY = (0.5, 1.5)  # seconds between client kills
DAEMON_KILL_EVERY = (2.0, 4.0)  # seconds between daemon kills
EXIT_BOUND = 90.0  # a client's last answers are at most 30 s away


class NothingLostTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ei-lost-", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.run_file = os.path.join(self.dir, "ran")
        self.daemon = harness.Daemon(workers=2)
        self.addCleanup(self.daemon.stop)
        self.daemon.start()
        self.restarts = 0
        self.clients = {}  # name -> Popen
        self.killed = set()
        self.addCleanup(self.kill_clients)

    def kill_clients(self):
        for process in self.clients.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    def ledger(self, name):
        return os.path.join(self.dir, f"{name}.ledger")

    def start_client(self, seconds):
        name = f"c{len(self.clients)}"
        env = dict(os.environ, PYTHONPATH=harness.client_pythonpath())
        self.clients[name] = subprocess.Popen(
            [sys.executable, CLIENT_SCRIPT, self.daemon.socket_path,
             self.run_file, self.ledger(name), name, str(seconds)],
            env=env, stdin=subprocess.DEVNULL)

    def restart_daemon(self):
        self.daemon.process.kill()
        self.daemon.process.wait()
        self.restarts += 1
        # The new daemon replaces the dead one's socket file (nobody is
        # listening on it); it keeps its own log next to the old one.
        self.daemon.log_path = os.path.join(self.daemon.tmpdir,
                                            f"daemon.{self.restarts}.log")
        self.daemon.start()

    def read_ledger(self, name):
        events = collections.defaultdict(list)
        done = False
        with open(self.ledger(name)) as ledger:
            for line in ledger:
                line = line.strip()
                if line == "done":
                    done = True
                elif line:
                    kind, job_id = line.split(" ", 1)
                    events[kind].append(job_id)
        return events, done

    def test_every_job_ends_once(self):
        rng = random.Random(5)
        start = time.monotonic()
        end = start + LOAD_SECONDS
        for _ in range(CLIENTS):
            self.start_client(LOAD_SECONDS)
        next_client_kill = start + rng.uniform(*CLIENT_KILL_EVERY)
        next_daemon_kill = start + rng.uniform(*DAEMON_KILL_EVERY)
        while time.monotonic() < end - 1.0:
            now = time.monotonic()
            if now >= next_client_kill:
                alive = [n for n, p in self.clients.items()
                         if p.poll() is None and n not in self.killed]
                if alive:
                    victim = rng.choice(alive)
                    self.clients[victim].kill()
                    self.clients[victim].wait()
                    self.killed.add(victim)
                    self.start_client(max(1.0, end - now))
                next_client_kill = now + rng.uniform(*CLIENT_KILL_EVERY)
            if now >= next_daemon_kill:
                self.restart_daemon()
                next_daemon_kill = time.monotonic() + rng.uniform(*DAEMON_KILL_EVERY)
            time.sleep(0.05)

        for name, process in self.clients.items():
            if name not in self.killed:
                self.assertEqual(process.wait(EXIT_BOUND), 0, name)

        with open(self.run_file) as ran_file:
            ran = collections.Counter(ran_file.read().split())
        twice = {job_id: n for job_id, n in ran.items() if n > 1}
        self.assertEqual(twice, {}, "jobs that ran more than once")

        totals = collections.Counter()
        for name in self.clients:
            events, done = self.read_ledger(name)
            self.assertEqual(events["hung"], [], f"{name}: jobs never answered")
            self.assertEqual(events["wrong"], [], f"{name}: answers to other jobs")
            submitted = events["submit"]
            ended = events["ok"] + events["error"] + events["lost"]
            self.assertEqual(len(set(submitted)), len(submitted), name)
            self.assertEqual(len(set(ended)), len(ended), f"{name}: ended twice")
            self.assertLessEqual(set(ended), set(submitted), name)
            for job_id in events["ok"]:
                self.assertEqual(ran[job_id], 1, f"{job_id} answered but never ran")
            if name in self.killed:
                continue  # its last jobs had nobody left to answer
            self.assertTrue(done, f"{name} did not finish its ledger")
            self.assertEqual(len(submitted), len(ended),
                             f"{name}: submitted jobs without an ending: "
                             f"{sorted(set(submitted) - set(ended))[:10]}")
            totals.update(submitted=len(submitted), answered=len(events["ok"]),
                          errors=len(events["error"]), lost=len(events["lost"]))
        self.assertEqual(totals["submitted"],
                         totals["answered"] + totals["errors"] + totals["lost"], totals)
        self.assertGreater(totals["answered"], 0, totals)
        self.assertGreater(self.restarts, 0)
        self.assertTrue(self.killed)
        print(f"nothing lost: {dict(totals)}, {self.restarts} daemon restarts, "
              f"{len(self.killed)} clients killed, {sum(ran.values())} jobs ran",
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
