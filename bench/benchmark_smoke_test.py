"""Smoke check of the benchmark harness: every figure, sane types.

Runs ``benchmark --tiny`` against a real daemon (started as the end-to-end
tests start theirs, on a short socket path under /tmp, with ``bench/jobs``
on its ``--python-path``) and
checks that ``latest.json`` has every figure and target with numbers of
the right kind, and that ``latest.md`` was written. Never checks speed.

Issue 15's peers: the in-process sub-interpreter pool needs nothing from
PyPI and runs here; loky, mpire, Dask and Ray (and numpy, for the process
lane's figure) come from PyPI, which only ``bench/run.sh`` installs, so
here each must be reported as skipped with its reason, never dropped.
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

import bench_jobs
from bench import benchmark
from bench.peers import ALL as PEERS

BENCH_JOBS_DIR = os.path.dirname(os.path.abspath(bench_jobs.__file__))
STOP_TIMEOUT = 60


def daemon_binary():
    override = os.environ.get("EI_DAEMON")
    if override:
        return override
    return os.path.join(os.environ["TEST_SRCDIR"], "extrainterpreters",
                        "daemon", "extrainterpretersd")


class BenchDaemon:
    """``extrainterpretersd`` with 2 workers on a private socket."""

    def __init__(self):
        self.tmpdir = tempfile.mkdtemp(prefix="ei-bench-", dir="/tmp")
        self.socket_path = os.path.join(self.tmpdir, "ei.sock")
        self.log_path = os.path.join(self.tmpdir, "daemon.log")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [daemon_binary(), "--socket", self.socket_path,
                 "--workers", "2", "--python-path", BENCH_JOBS_DIR],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return log.read()

    def stop(self):
        """SIGTERM, a kill if ignored, then remove the directory."""
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class BenchmarkSmokeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.daemon = BenchDaemon()
        cls.addClassCleanup(cls.daemon.stop)
        cls.out = tempfile.mkdtemp(prefix="ei-bench-test-")
        cls.addClassCleanup(shutil.rmtree, cls.out, ignore_errors=True)
        cls.status = benchmark.main(["--socket", cls.daemon.socket_path,
                                     "--tiny", "--out", cls.out])
        with open(os.path.join(cls.out, "latest.json"), encoding="utf-8") as f:
            cls.doc = json.load(f)

    def assertLatency(self, value):
        for key in ("n", "min", "p10", "p50", "p90", "p99", "max"):
            self.assertTrue(number(value.get(key)), f"{key} in {value}")
        self.assertLessEqual(value["min"], value["p50"])
        self.assertLessEqual(value["p50"], value["max"])

    def assertSpread(self, value):
        for key in ("median", "min", "max"):
            self.assertTrue(number(value.get(key)), f"{key} in {value}")
        self.assertLessEqual(value["min"], value["median"])
        self.assertLessEqual(value["median"], value["max"])

    def test_no_measurement_failed(self):
        self.assertEqual(self.status, 0, json.dumps(self.doc["figures"],
                                                    indent=1)[:4000])
        self.assertIsNone(self.daemon.process.poll(), self.daemon.log())

    def test_machine_and_config(self):
        machine = self.doc["machine"]
        self.assertTrue(number(machine["cpu_count"]))
        self.assertIsInstance(machine["python_version"], str)
        self.assertIsInstance(machine["date"], str)
        self.assertEqual(self.doc["config"]["workers"], 2)
        self.assertEqual(self.doc["config"]["mode"], "tiny")

    def test_round_trip(self):
        figure = self.doc["figures"]["round_trip"]
        for variant in ("project_pool", "project_lease", "process_pool",
                        "raw_socket"):
            with self.subTest(variant):
                self.assertLatency(figure[variant])

    def test_throughput(self):
        figure = self.doc["figures"]["throughput"]
        for variant in ("project_1_client", "project_clients",
                        "process_pool_map"):
            with self.subTest(variant):
                self.assertSpread(figure[variant])

    def test_cpu_scaling(self):
        figure = self.doc["figures"]["cpu_scaling"]
        for variant in ("project", "process_pool", "threads"):
            for key in ("one_worker_s", "w_workers_s", "speedup"):
                with self.subTest(variant=variant, key=key):
                    self.assertSpread(figure[variant][key])

    def test_large_data(self):
        figure = self.doc["figures"]["large_data"]
        for variant in ("project_arg", "project_result", "process_pool_arg",
                        "process_pool_result", "raw_socket", "memcpy"):
            with self.subTest(variant):
                self.assertSpread(figure[variant])

    def test_cold_start(self):
        figure = self.doc["figures"]["cold_start"]
        for variant in ("project", "process_pool"):
            with self.subTest(variant):
                self.assertSpread(figure[variant])

    def test_memory(self):
        figure = self.doc["figures"]["memory"]
        self.assertSpread(figure["project"]["rss_kib_per_interpreter"])
        self.assertSpread(figure["project"]["pss_kib_per_interpreter"])
        worker = figure["process_pool_worker"]
        self.assertGreater(worker["rss_kib"], 0)
        self.assertTrue(number(worker["pss_kib"]))

    def test_queues(self):
        figure = self.doc["figures"]["queues"]
        for variant in ("project_queue", "project_job"):
            with self.subTest(variant):
                self.assertLatency(figure["round_trip"][variant])
        for variant in ("project_job_to_job", "multiprocessing_queue"):
            with self.subTest(variant):
                self.assertSpread(figure[variant])

    def test_targets(self):
        targets = self.doc["targets"]
        self.assertGreaterEqual(len(targets), 12)
        for row in targets:
            with self.subTest(row["label"], anchor=row["anchor_name"]):
                self.assertTrue(number(row["project"]))
                self.assertTrue(number(row["anchor"]))
                self.assertIn(row["verdict"], ("met", "missed", ""))

    def assertPeers(self, peers, check):
        """The sub-interpreter pool measured; every PyPI peer skipped."""
        self.assertEqual(set(peers), set(PEERS), peers)
        for name, value in peers.items():
            with self.subTest(peer=name):
                if name == "subinterpreters":
                    check(value)
                else:  # from PyPI, or no queue of its own
                    self.assertRegex(value["skipped"],
                                     "bench/requirements|no queue")

    def test_peers_round_trip_and_throughput(self):
        self.assertPeers(self.doc["figures"]["round_trip"]["peers"],
                         self.assertLatency)
        self.assertPeers(self.doc["figures"]["throughput"]["peers"],
                         lambda v: (self.assertSpread(v["submit"]),
                                    self.assertIn("chunksize",
                                                  v["map"]["skipped"])))
        for key in ("process_pool_submit", "process_pool_map_chunked",
                    "project_client_map", "project_map"):
            self.assertSpread(self.doc["figures"]["throughput"][key])

    def test_peers_cpu_data_cold_start_memory(self):
        f = self.doc["figures"]
        self.assertPeers(f["cpu_scaling"]["peers"],
                         lambda v: self.assertSpread(v["speedup"]))
        self.assertPeers(f["large_data"]["peers"],
                         lambda v: [self.assertSpread(v[k])
                                    for k in ("arg", "result")])
        self.assertPeers(f["cold_start"]["peers"], self.assertSpread)
        self.assertPeers(f["memory"]["peers"], lambda v: self.assertTrue(
            number(v["rss_kib_per_worker"]) and number(v["pss_kib_per_worker"])))

    def test_peers_queues(self):
        figure = self.doc["figures"]["queues"]
        self.assertLatency(figure["multiprocessing_round_trip"])
        self.assertPeers(figure["peers"], lambda v: (
            self.assertLatency(v["round_trip"]),
            self.assertSpread(v["job_to_job"])))

    def test_numpy_is_skipped_without_pypi(self):
        figure = self.doc["figures"]["numpy"]
        self.assertIn("bench/requirements.txt", figure["skipped"])

    def test_issue15_tables(self):
        rows = self.doc["targets_issue15"]
        self.assertGreaterEqual(len(rows), 15)
        for row in rows:
            with self.subTest(row["label"]):
                self.assertIn(row["verdict"], ("met", "missed", "not measured"))
        # The sub-interpreter pool ran, so this one has both numbers.
        second = rows[1]
        self.assertIn("sub-interpreters", second["label"])
        self.assertTrue(number(second["project"]) and number(second["anchor"]))
        self.assertEqual(len(self.doc["headline_runs"]), 1)
        self.assertEqual(len(self.doc["best_ratio_runs"]), 1)

    def test_markdown(self):
        with open(os.path.join(self.out, "latest.md"), encoding="utf-8") as f:
            text = f.read()
        self.assertIn("| figure |", text)
        self.assertIn("Targets met:", text)
        self.assertIn("## Against every peer (issue 15)", text)
        self.assertIn("## Issue 15's targets", text)


if __name__ == "__main__":
    unittest.main()
