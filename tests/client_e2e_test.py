"""End-to-end tests: the Python client against the real daemon (pool jobs)."""

import concurrent.futures
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import unittest
import unittest.mock
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import jobs  # noqa: E402

import extrainterpreters  # noqa: E402
from extrainterpreters import _batch  # noqa: E402
from extrainterpreters import (  # noqa: E402
    DaemonConnectionError, ProtocolError, RemoteError)

# Single-phase-init extension modules in the standard library; an isolated
# sub-interpreter refuses to load them. Which exist depends on the build.
SINGLE_PHASE_MODULES = ["_testsinglephase", "readline", "_curses", "_tkinter"]

WAIT = 60.0  # seconds; a bound for waits that end at once when all is well


class ResultTest(harness.DaemonTestCase):

    def test_run_returns_the_value(self):
        self.assertEqual(self.client.run(jobs.add, 2, 3), 5)

    def test_args_and_kwargs_arrive_intact(self):
        value = self.client.run(jobs.echo, 1, "two", [3], key={"k": b"v"})
        self.assertEqual(value, ((1, "two", [3]), {"key": {"k": b"v"}}))

    def test_plain_results_keep_their_type_and_value(self):
        # The daemon pickles a short plain result with pickle.dumps; the
        # rest (longer, subclasses, containers) with its result pickler.
        values = [None, True, False, 0, -1, 2**63, 10**40, 1.5, -0.0,
                  float("nan"), float("inf"), "", "é", "\ud800 lone",
                  "x" * 65536, "x" * 65537, b"", b"y" * 65536, b"y" * 65537,
                  jobs.Text("sub"), (1, "a"), [None], {"k": 2.5}]
        for value in values:
            got = self.client.run(jobs.itself, value)
            self.assertIs(type(got), type(value))
            self.assertEqual(repr(got), repr(value))

    def test_submit_returns_a_future(self):
        future = self.client.submit(jobs.add, 20, 22)
        self.assertIsInstance(future, concurrent.futures.Future)
        self.assertEqual(future.result(timeout=60), 42)

    def test_large_payload_round_trips(self):
        # Bigger than the default 10 MiB buffer, so the daemon must grow it.
        blob = os.urandom(12 * 1024 * 1024)
        self.assertEqual(self.client.run(jobs.echo, blob), ((blob,), {}))

    def test_jobs_run_in_the_daemon_process(self):
        self.assertEqual(self.client.run(jobs.getpid),
                         self.daemon.process.pid)

    def test_module_level_run_uses_the_default_socket(self):
        with unittest.mock.patch.dict(
                os.environ,
                {"EXTRAINTERPRETERS_SOCKET": self.daemon.socket_path}):
            self.assertEqual(extrainterpreters.run(jobs.add, 1, 1), 2)
            # The shared client is reused, not reconnected per call.
            first = extrainterpreters._client._default_client()
            extrainterpreters.run(jobs.add, 1, 1)
            self.assertIs(extrainterpreters._client._default_client(), first)
        self.addCleanup(first.close)


class MapTest(harness.DaemonTestCase):
    """``Client.map``: lazy, ordered, each call failing on its own; a
    chunk of calls is one job."""

    def test_values_come_back_in_order(self):
        expected = [a + b for a, b in zip(range(37), range(100, 137))]
        for chunksize in (1, 3, 37, 100):
            with self.subTest(chunksize=chunksize):
                self.assertEqual(list(self.client.map(
                    jobs.add, range(37), range(100, 137),
                    chunksize=chunksize)), expected)

    def test_shortest_iterable_ends_the_calls(self):
        self.assertEqual(list(self.client.map(jobs.add, [1, 2, 3], [10, 20],
                                              chunksize=2)), [11, 22])

    def test_a_chunk_is_one_job(self):
        before = self.client.status()["totals"]["submitted"]
        self.assertEqual(list(self.client.map(jobs.add, range(20), range(20),
                                              chunksize=6)),
                         [2 * i for i in range(20)])
        after = self.client.status()["totals"]["submitted"]
        self.assertEqual(after - before, 4)  # 6 + 6 + 6 + 2

    def test_a_failing_call_raises_at_its_place_and_others_run(self):
        for chunksize in (1, 4):
            with self.subTest(chunksize=chunksize):
                results = self.client.map(jobs.divide, [1, 2, 3, 4],
                                          [1, 1, 0, 1], chunksize=chunksize)
                self.assertEqual([next(results), next(results)], [1.0, 2.0])
                with self.assertRaises(ZeroDivisionError) as caught:
                    next(results)
                # The remote traceback names the job's own frame.
                self.assertIn("divide", str(caught.exception.__cause__))

    def test_one_iterable_goes_as_plain_items(self):
        # One iterable: a chunk is a list of items and each call fn(item).
        items = list(range(1, 41))
        for chunksize in (1, 6, 40):
            with self.subTest(chunksize=chunksize):
                self.assertEqual(list(self.client.map(jobs.reciprocal, items,
                                                      chunksize=chunksize)),
                                 [1 / i for i in items])

    def test_calls_after_a_failing_one_still_run_in_its_chunk(self):
        # The failing call is the second of the chunk; the calls after it
        # run and come back in place, for both forms of a chunk.
        chunk = [2, 0, 4, 5]
        for form, call in (("items", (_batch.run_chunk, jobs.reciprocal,
                                      chunk, False)),
                           ("args", (_batch.run_chunk, jobs.divide,
                                     [(1, a) for a in chunk], True))):
            with self.subTest(form=form):
                values, failures = self.client.run(*call)
                self.assertEqual(values, [0.5, None, 0.25, 0.2])
                self.assertEqual(list(failures), [1])
                error, text = failures[1]
                self.assertIsInstance(error, ZeroDivisionError)
                self.assertIn("ZeroDivisionError", text)

    def test_a_call_raising_stopiteration_fails_rather_than_ends_the_map(self):
        results = self.client.map(jobs.stop_iteration_at_zero, [1, 0, 2],
                                  chunksize=3)
        self.assertEqual(next(results), 1)
        # Raised inside the map's generator, StopIteration becomes the
        # RuntimeError of PEP 479 (as in the standard map), never a silent
        # end after the first value.
        with self.assertRaises(RuntimeError) as caught:
            next(results)
        self.assertIsInstance(caught.exception.__cause__, StopIteration)

    def test_the_batch_form_of_older_clients_still_runs(self):
        outcomes = self.client.run(_batch.run_batch, jobs.divide,
                                   ((1, 2), (1, 0), (3, 1)))
        self.assertEqual([outcome[:2] for outcome in outcomes[::2]],
                         [(True, 0.5), (True, 3.0)])
        self.assertEqual(outcomes[1][0], False)
        self.assertIsInstance(outcomes[1][1], ZeroDivisionError)
        self.assertIn("ZeroDivisionError", outcomes[1][2])

    def test_an_exception_that_does_not_pickle_says_so(self):
        results = self.client.map(jobs.raise_unpicklable, ["bad"], chunksize=2)
        with self.assertRaisesRegex(RuntimeError, "does not pickle"):
            next(results)

    def test_timeout_counts_from_the_call(self):
        results = self.client.map(jobs.sleep, [0, 30], chunksize=1,
                                  timeout=0.5)
        next(results)
        with self.assertRaises(TimeoutError):
            next(results)

    def test_chunksize_must_be_positive(self):
        with self.assertRaises(ValueError):
            self.client.map(jobs.add, [1], [2], chunksize=0)


class BatchedSendsTest(harness.DaemonTestCase):
    """Requests made while others are in flight go out together, in order."""

    def test_requests_queued_behind_a_send_go_out_in_one(self):
        outbox = self.client._connection._outbox
        real = outbox._sock
        held, release, sends = threading.Event(), threading.Event(), []

        class HeldSocket:
            """Holds the writer's first send until every request is queued."""

            def sendall(self, data):
                sends.append(data)
                if len(sends) == 1:
                    held.set()
                    release.wait(WAIT)
                real.sendall(data)

        outbox._sock = HeldSocket()
        flag = self.release_file()
        # In flight until the flag file appears: every later request is
        # queued behind it.
        waiting = self.client.submit(jobs.wait_for_file, flag, "first")
        first = self.client.submit(jobs.add, 0, 1)
        self.assertTrue(held.wait(WAIT), "the writer never sent")
        # By value: each needs a define, which must reach the daemon first.
        futures = [self.client.submit(lambda n: n * 2, n) for n in range(100)]
        release.set()
        self.assertEqual([f.result(WAIT) for f in futures],
                         [n * 2 for n in range(100)])
        self.assertEqual(first.result(WAIT), 1)
        harness.touch(flag)
        self.assertEqual(waiting.result(WAIT), "first")
        # The writer's first send had one frame; the 100 runs (and the
        # define) queued behind it went out in the second.
        self.assertEqual(len(sends), 2, [len(data) for data in sends])


class FrameLimitTest(harness.DaemonTestCase):

    daemon_args = ("--max-frame-bytes", "1M", "--buffer-size", "256k")

    def test_announced_limit_is_adopted(self):
        self.assertEqual(self.client.hello["limits"]["max_frame_bytes"],
                         1024 * 1024)

    def test_request_over_the_limit_is_refused_before_sending(self):
        with self.assertRaises(ProtocolError) as cm:
            self.client.submit(jobs.echo, bytes(2 * 1024 * 1024))
        self.assertEqual(cm.exception.code, "too_large")
        self.assertEqual(self.client.run(jobs.add, 1, 1), 2)

    def test_result_over_the_limit_is_an_error(self):
        with self.assertRaises(RemoteError) as cm:
            self.client.run(jobs.make_bytes, 2 * 1024 * 1024)
        self.assertEqual(cm.exception.code, "result_too_large")
        self.assertEqual(len(self.client.run(jobs.make_bytes, 1000)), 1000)

    def test_results_at_the_limit_fit_or_fail_whole(self):
        # Around the last bytes a frame may hold: each result comes back
        # whole or fails with result_too_large, never as a frame over the
        # limit (which would cost the connection).
        limit = self.client.hello["limits"]["max_frame_bytes"]
        outcomes = set()
        for size in range(limit - 400, limit - 20, 9):
            try:
                self.assertEqual(len(self.client.run(jobs.make_bytes, size)), size)
                outcomes.add("fits")
            except RemoteError as exc:
                self.assertEqual(exc.code, "result_too_large")
                outcomes.add("too large")
        self.assertEqual(outcomes, {"fits", "too large"})
        self.assertEqual(self.client.run(jobs.add, 1, 1), 2)


class InfoTest(harness.DaemonTestCase):

    def test_hello_reports_python_and_limits(self):
        hello = self.client.hello
        self.assertEqual(hello["protocol"], 1)
        self.assertEqual(hello["pid"], self.daemon.process.pid)
        self.assertEqual(hello["workers"], self.workers)
        self.assertEqual(hello["limits"]["max_header_bytes"], 65536)
        self.assertEqual(hello["limits"]["max_frame_bytes"], 268435456)
        self.assertIsInstance(hello["python"], str)
        self.assertNotIn("id", hello)

    def test_ping(self):
        self.assertIsNone(self.client.ping())

    def test_status_document(self):
        status = self.client.status()
        self.assertEqual(status["state"], "ready")
        self.assertEqual(status["pid"], self.daemon.process.pid)
        self.assertEqual(status["socket"], self.daemon.socket_path)
        self.assertEqual(status["protocol"], 1)
        self.assertEqual(len(harness.pool_workers(status)), self.workers)
        for key in ("leases", "queue_depth", "connections", "totals",
                    "latency_us", "uptime_seconds", "daemon_version",
                    "python"):
            self.assertIn(key, status)
        self.assertGreaterEqual(status["connections"], 1)

    def test_status_totals_count_jobs(self):
        before = self.client.status()["totals"]
        self.client.run(jobs.add, 1, 2)
        with self.assertRaises(ZeroDivisionError):
            self.client.run(jobs.divide, 1, 0)
        after = self.client.status()["totals"]
        self.assertGreaterEqual(after["submitted"] - before["submitted"], 2)
        self.assertGreaterEqual(after["completed"] - before["completed"], 1)
        self.assertGreaterEqual(after["failed"] - before["failed"], 1)


class ExceptionTest(harness.DaemonTestCase):

    def test_exception_is_reraised_as_its_type(self):
        with self.assertRaises(ZeroDivisionError) as cm:
            self.client.run(jobs.divide, 1, 0)
        cause = cm.exception.__cause__
        self.assertIsNotNone(cause)
        self.assertIn("Traceback", str(cause))
        self.assertIn("divide", str(cause))  # The remote frame is named.
        self.assertIn("ZeroDivisionError", str(cause))

    def test_unpicklable_exception_becomes_remote_error(self):
        with self.assertRaises(RemoteError) as cm:
            self.client.run(jobs.raise_unpicklable, "the message")
        error = cm.exception
        self.assertEqual(error.type_name, "jobs.UnpicklableError")
        self.assertEqual(error.message, "the message")
        self.assertIsNone(error.code)
        self.assertIn("raise_unpicklable", error.traceback_text)
        self.assertIn("jobs.UnpicklableError: the message", str(error))
        self.assertIn("Remote traceback", str(error))

    def test_system_exit_comes_back_and_daemon_serves_on(self):
        with self.assertRaises(SystemExit) as cm:
            self.client.run(jobs.raise_system_exit, 3)
        self.assertEqual(cm.exception.code, 3)
        self.assert_every_worker_serves()

    def test_keyboard_interrupt_comes_back_and_daemon_serves_on(self):
        with self.assertRaises(KeyboardInterrupt) as cm:
            self.client.run(jobs.raise_keyboard_interrupt)
        self.assertIn("Traceback", str(cm.exception.__cause__))
        self.assert_every_worker_serves()

    def test_unpicklable_result_says_so(self):
        with self.assertRaises(RemoteError) as cm:
            self.client.run(jobs.return_lock)
        self.assertEqual(cm.exception.code, "result_not_picklable")
        self.assertIn("_thread.lock", str(cm.exception))
        self.assert_every_worker_serves()

    def test_job_that_does_not_unpickle_names_the_module(self):
        module = self.client_only_module()
        with self.assertRaises(RemoteError) as cm:
            self.client.run(module.f)
        self.assertEqual(cm.exception.code, "job_load_failed")
        self.assertIn(module.__name__, str(cm.exception))
        self.assert_every_worker_serves()

    def test_argument_that_does_not_unpickle_names_the_module(self):
        module = self.client_only_module()
        with self.assertRaises(RemoteError) as cm:
            self.client.run(jobs.echo, module.Thing())
        self.assertEqual(cm.exception.code, "job_load_failed")
        self.assertIn(module.__name__, str(cm.exception))

    def test_single_phase_extension_import_error_reaches_caller(self):
        name = next((m for m in SINGLE_PHASE_MODULES
                     if self.client.run(jobs.has_module, m)), None)
        if name is None:
            self.skipTest(f"the daemon's Python has none of "
                          f"{SINGLE_PHASE_MODULES}")
        # In the interpreter lane (auto would run it again in a worker
        # process: process_lane_e2e_test).
        with self.assertRaises(ImportError) as cm:
            self.client.run(jobs.import_module, name, lane="interpreter")
        self.assertIn(name, str(cm.exception))
        self.assertIn("subinterpreter", str(cm.exception))
        self.assert_every_worker_serves()

    def test_unpicklable_job_fails_at_submit(self):
        with self.assertRaises(pickle.PicklingError) as cm:
            self.client.submit(jobs.echo, threading.Lock())
        self.assertIn("jobs.echo", str(cm.exception))
        self.assertIsInstance(cm.exception.__cause__, TypeError)
        with self.assertRaises(pickle.PicklingError):  # lambdas do pickle
            self.client.submit(lambda: 1, (n for n in range(3)))
        self.assertEqual(self.client.run(jobs.add, 1, 1), 2)

    def test_non_callable_is_refused(self):
        with self.assertRaises(TypeError):
            self.client.submit(42)

    def client_only_module(self):
        """Import a new module that exists only on the client's sys.path,
        and make it go by name (it would go by value by default), so that
        the daemon fails to import it."""
        name = f"ei_client_only_{uuid.uuid4().hex}"
        directory = self.tmp_path()
        with open(os.path.join(directory, name + ".py"), "w") as source:
            source.write("def f():\n    return 1\n\n"
                         "class Thing:\n    pass\n")
        sys.path.insert(0, directory)
        self.addCleanup(sys.path.remove, directory)
        self.addCleanup(sys.modules.pop, name, None)
        extrainterpreters.ship_by_reference(name)
        return __import__(name)

    def assert_every_worker_serves(self):
        """Every pool worker takes a job at the same time, and answers."""
        release = self.release_file()
        futures = [self.client.submit(jobs.wait_for_file, release, n)
                   for n in range(self.workers)]
        harness.wait_until(
            lambda: all(w["state"] == "busy"
                        for w in harness.pool_workers(self.client.status())),
            message="every pool worker to take a job")
        harness.touch(release)
        self.assertEqual([f.result(timeout=60) for f in futures],
                         list(range(self.workers)))


class ConcurrencyTest(harness.DaemonTestCase):

    def test_threads_share_one_client(self):
        threads, per_thread = 8, 50
        errors = []

        def worker(t):
            try:
                for i in range(per_thread):
                    value = self.client.run(jobs.echo, t, i)
                    if value != ((t, i), {}):
                        errors.append(f"thread {t} job {i} got {value!r}")
            except BaseException as exc:
                errors.append(f"thread {t}: {exc!r}")

        pool = [threading.Thread(target=worker, args=(t,))
                for t in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        self.assertEqual(errors, [])

    def test_many_jobs_in_flight_on_one_connection(self):
        futures = {self.client.submit(jobs.add, i, i): i for i in range(500)}
        for future in concurrent.futures.as_completed(futures, timeout=120):
            self.assertEqual(future.result(), 2 * futures[future])

    def test_quick_ping_overtakes_a_long_job(self):
        release = self.release_file()
        slow = self.client.submit(jobs.wait_for_file, release, "slow")
        self.client.ping()
        self.assertFalse(slow.done())
        harness.touch(release)
        self.assertEqual(slow.result(timeout=60), "slow")

    def test_several_client_processes(self):
        script = textwrap.dedent("""
            import json, sys
            import extrainterpreters, jobs
            n = int(sys.argv[1])
            with extrainterpreters.Client() as client:
                futures = [client.submit(jobs.add, n, i) for i in range(40)]
                print(json.dumps([f.result() for f in futures]))
        """)
        env = dict(os.environ,
                   EXTRAINTERPRETERS_SOCKET=self.daemon.socket_path,
                   PYTHONPATH=harness.client_pythonpath())
        processes = [subprocess.Popen([sys.executable, "-c", script, str(n)],
                                      env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
                     for n in range(4)]
        for n, process in enumerate(processes):
            out, err = process.communicate(timeout=120)
            self.assertEqual(process.returncode, 0, err)
            self.assertEqual(json.loads(out), [n + i for i in range(40)])


class ConnectionTest(harness.DaemonTestCase):

    def test_disconnect_mid_job_leaves_daemon_serving(self):
        release = self.release_file()
        before = self.client.status()
        done_before = sum(w["jobs_done"]
                          for w in harness.pool_workers(before))
        leaving = self.daemon.client()
        pending = leaving.submit(jobs.wait_for_file, release, "orphan")
        harness.wait_until(
            lambda: any(w["state"] == "busy"
                        for w in harness.pool_workers(self.client.status())),
            message="a worker to run the orphaned job")
        leaving.close()
        with self.assertRaises(DaemonConnectionError):
            pending.result(timeout=60)
        # Other clients are served while the orphaned job still runs.
        self.assertEqual(self.client.run(jobs.add, 2, 2), 4)
        harness.wait_until(
            lambda: self.client.status()["connections"]
            <= before["connections"],
            message="the daemon to notice the closed connection")
        self.assertTrue(any(w["state"] == "busy" for w in
                            harness.pool_workers(self.client.status())))
        harness.touch(release)
        # The orphaned job finishes and its result is discarded.
        harness.wait_until(
            lambda: all(w["state"] == "idle"
                        for w in harness.pool_workers(self.client.status())),
            message="the orphaned job to finish")
        after = self.client.status()
        self.assertGreaterEqual(
            sum(w["jobs_done"] for w in harness.pool_workers(after)),
            done_before + 2)
        self.assertEqual(self.client.run(jobs.add, 3, 3), 6)

    def test_closed_client_refuses_new_work(self):
        client = self.daemon.client()
        client.close()
        client.close()  # Idempotent.
        self.assertTrue(client.closed)
        with self.assertRaises(DaemonConnectionError) as cm:
            client.submit(jobs.add, 1, 1)
        self.assertEqual(cm.exception.socket_path, self.daemon.socket_path)
        self.assertIn("closed", str(cm.exception))

    def test_daemon_death_fails_pending_jobs(self):
        daemon = self.start_daemon()
        client = daemon.client(self)
        release = os.path.join(self.tmp_path(), "never")
        pending = [client.submit(jobs.wait_for_file, release)
                   for _ in range(4)]
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait()
        for future in pending:
            with self.assertRaises(DaemonConnectionError) as cm:
                future.result(timeout=60)
            self.assertIn(daemon.socket_path, str(cm.exception))
        with self.assertRaises(DaemonConnectionError):
            client.run(jobs.add, 1, 1)

    def test_protocol_error_reply_raises_protocol_error(self):
        # A run without a payload is a bad_request; only reachable with the
        # private request method, as the public API always sends one.
        future = self.client._request({"type": "run"}, lambda frame: None)
        with self.assertRaises(ProtocolError) as cm:
            future.result(timeout=60)
        self.assertEqual(cm.exception.code, "bad_request")
        self.assertEqual(self.client.run(jobs.add, 1, 1), 2)

    def test_unknown_type_is_a_protocol_error(self):
        future = self.client._request({"type": "no_such_type"},
                                      lambda frame: None)
        with self.assertRaises(ProtocolError) as cm:
            future.result(timeout=60)
        self.assertEqual(cm.exception.code, "unknown_type")
        self.client.ping()


if __name__ == "__main__":
    unittest.main()
