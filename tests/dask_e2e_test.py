"""extrainterpreters.dask with real Dask: a scheduler and two Dask workers,
each bound to a daemon of its own ($EXTRAINTERPRETERS_SOCKET), as two hosts
would be. As root, each worker is in a network namespace of its own, and
the scheduler, the client and the other worker are reached over TCP across
a bridge (dask_cluster.Network); otherwise all listen on 127.0.0.1.

dask, distributed and numpy come from the test-only environment ./test.sh
makes (tests/requirements.txt); the workers and the daemons see them on
their paths. Every process starts and stops inside the test, and the test
checks /proc that none is left.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

import harness

SITE = harness.test_site_packages()
sys.path.append(SITE)
import dask_cluster  # noqa: E402

# Each Dask worker is a host of its own in a network namespace, reaching the
# scheduler (in this process's namespace) over TCP; where namespaces cannot
# be made (not root), every process is on 127.0.0.1 instead and the tests
# say so. Made first: a namespace is per thread, and imports may start some.
try:
    NETWORK, NO_NETWORK = dask_cluster.Network.enter(), None
except OSError as exc:
    NETWORK, NO_NETWORK = None, str(exc)
    print(f"dask_e2e_test: no network namespaces ({exc}); every Dask "
          f"process listens on 127.0.0.1", file=sys.stderr)

import dask  # noqa: E402  (from the test-only environment)
import dask.bag  # noqa: E402
import distributed  # noqa: E402
import numpy  # noqa: E402

import dask_jobs  # noqa: E402
import jobs  # noqa: E402
import extrainterpreters  # noqa: E402
from extrainterpreters import _dask_calls, _dask_plan  # noqa: E402
from extrainterpreters.dask import ExtraInterpretersPlugin  # noqa: E402

WAIT = 120.0
DAEMON_ARGS = ("--python-path", f"{harness.TESTS_DIR}:{SITE}",
               "--process-workers", "1", "--max-process-workers", "1")


def cube_where(x):
    """Defined in __main__: Dask pickles it by value, and so does the
    executor when it sends it to the daemon."""
    return x ** 3, tuple(extrainterpreters.where())


class Hosts:
    """Two hosts' worth: each a daemon and a Dask worker bound to it, one
    scheduler, and a Dask client that registered the plugin once."""

    def __init__(self, reconnect_timeout=10.0):
        self.daemons = {}
        self.cluster = dask_cluster.DaskCluster(SITE, network=NETWORK)
        self.client = None
        self.reconnect_timeout = reconnect_timeout
        self.daemon_pids = set()

    def start(self):
        for name in ("host-a", "host-b"):
            daemon = harness.Daemon(workers=2, extra_args=DAEMON_ARGS)
            self.daemons[name] = daemon
            daemon.start()
            self.daemon_pids.add(daemon.process.pid)
        self.cluster.start_scheduler()
        for name, daemon in self.daemons.items():
            self.cluster.start_worker(
                name, env={"EXTRAINTERPRETERS_SOCKET": daemon.socket_path})
        self.client = distributed.Client(self.cluster.address, timeout=WAIT)
        self.cluster.wait_for_workers(self.client, 2)
        self.client.register_plugin(ExtraInterpretersPlugin(
            reconnect_timeout=self.reconnect_timeout))
        return self

    def daemon_of(self, pid):
        return next(d for d in self.daemons.values() if d.process.pid == pid)

    def stop(self):
        """Stop everything; return the processes left behind (none)."""
        marks = [self.cluster.tmpdir] + [d.tmpdir for d in self.daemons.values()]
        pids = set(self.cluster.pids()) | self.daemon_pids
        try:
            if self.client is not None:
                self.client.close()
        finally:
            try:
                self.cluster.stop()
            finally:
                for daemon in self.daemons.values():
                    daemon.stop()
        return dask_cluster.wait_gone(marks, pids)


def gather(client, futures):
    """The futures' results, waiting at most WAIT seconds for them all."""
    distributed.wait(futures, timeout=WAIT)
    return client.gather(futures)


def compute(client, collection):
    """A dask collection's value, computed in at most WAIT seconds."""
    return client.compute(collection).result(WAIT)


def lanes(placements):
    """{(daemon pid, lane)} of placement tuples."""
    return {(where[1], where[4]) for where in placements}


class DaskClusterTest(unittest.TestCase):
    """One cluster for these tests; none of them breaks it."""

    @classmethod
    def setUpClass(cls):
        cls.hosts = Hosts()
        cls.addClassCleanup(cls._stop_hosts)
        cls.hosts.start()
        cls.client = cls.hosts.client

    @classmethod
    def _stop_hosts(cls):
        # Every task ran cleanly: no daemon died, and none retired an
        # interpreter (a job that left a thread behind, as importing dask
        # in a sub-interpreter does).
        trouble = {name: daemon.log() for name, daemon in
                   cls.hosts.daemons.items()
                   if daemon.process is not None
                   and (daemon.process.poll() is not None
                        or "interpreter retired" in daemon.log())}
        left = cls.hosts.stop()
        if left:
            raise AssertionError(f"processes left behind: {left}")
        if trouble:
            raise AssertionError(f"a daemon exited or retired an "
                                 f"interpreter; their logs: {trouble}")

    def test_each_worker_is_a_host_of_its_own(self):
        if NETWORK is None:
            self.skipTest(f"no network namespaces here: {NO_NETWORK}")
        scheduler = self.client.scheduler_info()
        self.assertTrue(scheduler["address"].startswith(
            f"tcp://{NETWORK.HOST}:"), scheduler["address"])
        hosts = {info["name"]: info["host"]
                 for info in scheduler["workers"].values()}
        self.assertEqual(set(hosts), {"host-a", "host-b"})
        self.assertEqual(len(set(hosts.values())), 2, hosts)
        self.assertNotIn(NETWORK.HOST, hosts.values())
        # Each worker's process sees only its own address.
        own = self.client.run(_addresses)
        for address, seen in own.items():
            host = address.split("//")[1].rsplit(":", 1)[0]
            self.assertEqual(seen, [host], own)

    def test_1000_tasks_through_map_run_in_both_daemons(self):
        futures = self.client.map(dask_jobs.square_where, range(1000))
        results = gather(self.client, futures)
        self.assertEqual([value for value, _ in results],
                         [x * x for x in range(1000)])
        self.assertEqual(lanes(where for _, where in results),
                         {(pid, "interpreter")
                          for pid in self.hosts.daemon_pids})

    def test_1000_delayed_tasks_and_a_total_over_all(self):
        parts = [dask.delayed(dask_jobs.add_where)(i, 1000)
                 for i in range(1000)]
        value, placements = compute(
            self.client, dask.delayed(dask_jobs.total)(parts))
        self.assertEqual(value, sum(range(1000, 2000)))
        self.assertEqual(lanes(placements),
                         {(pid, "interpreter")
                          for pid in self.hosts.daemon_pids})

    def test_a_bag_runs_dask_functions_in_the_process_lane(self):
        # dask.bag's own chunk functions call the user's: those tasks go to
        # the process lane (importing dask in a sub-interpreter crashed the
        # daemon on CPython 3.12.1).
        bag = dask.bag.from_sequence(range(100), npartitions=4)
        results = compute(self.client, bag.map(dask_jobs.square_where))
        self.assertEqual([value for value, _ in results],
                         [x * x for x in range(100)])
        self.assertEqual({lane for _, (_, _, _, _, lane) in results},
                         {"process"})
        self.assertLessEqual({where[1] for _, where in results},
                             self.hosts.daemon_pids)
        self.assertEqual(
            compute(self.client, bag.map(dask_jobs.square_where).pluck(0).sum()),
            sum(x * x for x in range(100)))

    def test_a_numpy_task_runs_in_the_process_lane(self):
        value, where = self.client.submit(
            dask_jobs.numpy_where, numpy.arange(10)).result(WAIT)
        self.assertEqual(value, 45)
        self.assertEqual(where[4], "process")
        self.assertIn(where[1], self.hosts.daemon_pids)
        self.assertNotEqual(where[2], where[1])  # a worker process

    def test_a_main_function_runs_by_value(self):
        self.assertEqual(cube_where.__module__, "__main__")
        value, where = self.client.submit(cube_where, 3).result(WAIT)
        self.assertEqual(value, 27)
        self.assertEqual(where[4], "interpreter")
        self.assertIn(where[1], self.hosts.daemon_pids)

    def test_an_exception_keeps_its_type_and_remote_traceback(self):
        future = self.client.submit(dask_jobs.fail, "boom")
        with self.assertRaises(ValueError) as cm:
            future.result(WAIT)
        self.assertEqual(str(cm.exception), "boom")
        remote = str(cm.exception.__cause__)
        self.assertIn("dask_jobs.py", remote)
        self.assertIn("in fail", remote)
        self.assertEqual(future.status, "error")

    def test_cancel_stops_the_job_in_the_daemon(self):
        tmp = tempfile.mkdtemp(prefix="ei-cancel-", dir="/tmp")
        started, release = (os.path.join(tmp, name)
                            for name in ("started", "release"))
        self.addCleanup(harness.touch, release)
        future = self.client.submit(dask_jobs.spin_until, started, release)
        pid = int(harness.wait_until(lambda: _first_line(started), WAIT,
                                     "the job to start"))
        with self.hosts.daemon_of(pid).client(self) as daemon:
            before = daemon.status()["totals"]["cancelled"]
            future.cancel()
            harness.wait_until(
                lambda: daemon.status()["totals"]["cancelled"] > before,
                30, "the daemon to cancel the job")
            harness.wait_until(lambda: not any(
                w["state"] == "busy" for w in daemon.status()["workers"]),
                30, "the interpreter to be free")
        self.assertEqual(future.status, "cancelled")

    def test_an_opt_in_executor_by_annotation(self):
        self.client.register_plugin(ExtraInterpretersPlugin(
            executor_name="ei"))
        with dask.annotate(executor="ei"):
            future = self.client.submit(dask_jobs.square_where, 5, pure=False)
        value, where = future.result(WAIT)
        self.assertEqual((value, where[4]), (25, "interpreter"))
        self.assertIn(where[1], self.hosts.daemon_pids)

    def test_the_worker_threads_stay_available_by_annotation(self):
        with dask.annotate(executor="threads"):
            future = self.client.submit(dask_jobs.square_where, 4, pure=False)
        value, where = future.result(WAIT)
        self.assertEqual((value, where[4], where[1]), (16, None, None))


class DaemonLossTest(unittest.TestCase):

    def test_killing_a_daemon_mid_computation(self):
        hosts = Hosts(reconnect_timeout=3.0)
        try:
            hosts.start()
            client = hosts.client
            futures = client.map(dask_jobs.busy_square, range(1000))
            done = 0
            for _ in distributed.as_completed(futures, timeout=WAIT):
                done += 1
                if done == 200:
                    break
            victim = hosts.daemons["host-a"]
            victim.process.kill()
            victim.process.wait()
            results = gather(client, futures)
            self.assertEqual([value for value, _ in results],
                             [x * x for x in range(1000)])
            survivor = hosts.daemons["host-b"].process.pid
            self.assertIn(survivor, {where[1] for _, where in results})
            # The worker whose daemon died left the cluster by itself.
            worker = hosts.cluster.workers["host-a"]
            self.assertIsNotNone(_wait_exit(worker, 60),
                                 hosts.cluster.log("host-a"))
            self.assertEqual(len(client.scheduler_info()["workers"]), 1)
        finally:
            left = hosts.stop()
        self.assertEqual(left, {})


class PlanTest(unittest.TestCase):
    """_dask_plan on dask's task nodes, without a cluster: what goes to the
    daemon is the user's call, and evaluate() computes what dask would."""

    spec = dask._task_spec

    def check(self, task, values):
        fn, args, kwargs = _dask_plan.job_for(task, values)
        self.assertEqual(fn(*args, **kwargs), task(values))
        return fn, args, kwargs

    def test_a_plain_call_is_the_job_itself(self):
        spec = self.spec
        task = spec.Task("k", divmod, spec.TaskRef("a"), 3)
        self.assertEqual(self.check(task, {"a": 17}), (divmod, (17, 3), {}))
        task = spec.Task("k", sorted, spec.List(spec.TaskRef("a"), 1),
                         reverse=spec.Alias("b"))
        self.assertEqual(self.check(task, {"a": 5, "b": True}),
                         (sorted, ([5, 1],), {"reverse": True}))

    def test_nested_calls_and_containers_go_as_a_tree(self):
        spec = self.spec
        inner = spec.Task(None, pow, spec.TaskRef("a"), 2)
        fn, args, _ = self.check(
            spec.Task("k", dict, spec.Dict({"p": inner, "q": 1})), {"a": 3})
        self.assertIs(fn, _dask_calls.evaluate)
        self.assertIsInstance(args[0], _dask_calls.Call)
        self.check(spec.Task("k", sorted, spec.Set(inner, spec.TaskRef("b")),
                             reverse=True), {"a": 3, "b": 4})
        self.check(spec.Task("k", max, spec.List(inner, spec.Tuple(inner, 1)),
                             key=repr), {"a": 3})

    def test_a_fused_chain_becomes_a_graph(self):
        spec = self.spec
        a = spec.Task("a", pow, spec.TaskRef("x"), 2)
        b = spec.Task("b", divmod, spec.TaskRef("a"), spec.TaskRef("y"))
        c = spec.Task("c", list, spec.TaskRef("b"))
        fused = spec.GraphNode.fuse(a, b, c)
        fn, args, _ = self.check(fused, {"x": 7, "y": 5})
        self.assertIsInstance(args[0], _dask_calls.Graph)

    def test_jobs_calling_dask_go_to_the_process_lane(self):
        spec, apply = self.spec, dask.utils.apply
        tasks = {
            "auto": spec.Task("k", abs, -1),
            "process": spec.Task("k", apply, abs, spec.List(-1)),
        }
        nested = spec.Task("k", sorted, spec.List(
            spec.Task(None, apply, abs, spec.List(spec.TaskRef("a")))))
        tasks["process (nested)"] = nested
        for expected, task in tasks.items():
            fn, args, _ = self.check(task, {"a": -2})
            self.assertEqual(_dask_plan.lane_for(fn, args, "auto"),
                             expected.split()[0], expected)
            self.assertEqual(_dask_plan.lane_for(fn, args, "interpreter"),
                             "interpreter")

    def test_a_legacy_tuple_of_results(self):
        spec = self.spec
        task = spec.convert_legacy_task("k", (list, ("a", "b")), {"a", "b"})
        self.assertEqual(self.check(task, {"a": 1, "b": 2})[0],
                         _dask_calls.evaluate)


class PackageTest(unittest.TestCase):

    def test_import_extrainterpreters_never_imports_dask(self):
        probe = subprocess.run(
            [sys.executable, "-c",
             "import sys, extrainterpreters; print(extrainterpreters.where()); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('dask', 'distributed')))"],
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                [harness.client_pythonpath(), SITE])),
            capture_output=True, text=True, timeout=60)
        self.assertEqual(probe.returncode, 0, probe.stderr)
        placement, modules = probe.stdout.splitlines()
        self.assertEqual(modules, "[]")
        self.assertIn("lane=None", placement)

    def test_the_wheel_declares_the_dask_extra(self):
        backend = os.path.join(_client_source_dir(), "build_backend")
        out = tempfile.mkdtemp(prefix="ei-wheel-", dir="/tmp")
        self.addCleanup(shutil.rmtree, out, ignore_errors=True)
        sys.path.insert(0, backend)
        try:
            import extrainterpreters_build
            wheel = extrainterpreters_build.build_wheel(out)
        finally:
            sys.path.remove(backend)
        with zipfile.ZipFile(os.path.join(out, wheel)) as archive:
            name = next(n for n in archive.namelist()
                        if n.endswith(".dist-info/METADATA"))
            metadata = archive.read(name).decode()
            self.assertIn("extrainterpreters/dask.py", archive.namelist())
        self.assertIn("Provides-Extra: dask\n", metadata)
        self.assertIn('Requires-Dist: distributed>=2025.1.0; extra == "dask"\n',
                      metadata)
        self.assertNotIn("Requires-Dist: distributed>=2025.1.0\n", metadata)


def _addresses():
    """The IPv4 addresses of this process's network namespace, but
    loopback's (run on each worker by Client.run)."""
    import socket
    addresses = []
    for _, name in socket.if_nameindex():
        if name == "lo":
            continue
        ran = subprocess.run([dask_cluster._tool("ip"), "-4", "-o", "addr",
                              "show", "dev", name], capture_output=True,
                             text=True, check=True)
        addresses += [line.split()[3].split("/")[0]
                      for line in ran.stdout.splitlines()]
    return addresses


def _first_line(path):
    """The first line of ``path``, or None while it has none."""
    lines = jobs.read_lines(path)
    return lines[0] if lines else None


def _client_source_dir():
    """client/python in the runfiles (or the source tree outside Bazel)."""
    srcdir = os.environ.get("TEST_SRCDIR")
    if srcdir:
        return os.path.join(srcdir, "extrainterpreters", "client", "python")
    return harness.CLIENT_DIR


def _wait_exit(process, timeout):
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


if __name__ == "__main__":
    unittest.main()
