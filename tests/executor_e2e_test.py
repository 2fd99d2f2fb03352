"""InterpreterPoolExecutor through the real daemon.

Covers what CPython's generic executor tests check (submit, map, shutdown,
wait, as_completed, initializer, done callbacks, cancel) plus what is ours:
leases per worker, cancelling running jobs, the leases given back.
Blocking jobs wait on files the test creates; nothing depends on speed.
"""

import collections
import concurrent.futures
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import jobs  # noqa: E402

import extrainterpreters  # noqa: E402
from extrainterpreters import _executor_map  # noqa: E402
from extrainterpreters import (  # noqa: E402
    BrokenInterpreterPool, InterpreterPoolExecutor)

WAIT = 60.0  # Upper bound on any wait; only reached when a test fails.


class ExecutorTestCase(harness.DaemonTestCase):

    workers = 2

    def executor(self, **kwargs):
        kwargs.setdefault("socket_path", self.daemon.socket_path)
        executor = InterpreterPoolExecutor(**kwargs)
        self.addCleanup(executor.shutdown, wait=True, cancel_futures=True)
        return executor

    def path(self, name):
        return os.path.join(self.tmp_path(), name)

    def wait_for_file(self, path):
        harness.wait_until(lambda: os.path.exists(path), WAIT, path)

    def assert_no_leases(self):
        harness.wait_until(
            lambda: self.client.status()["leases"]["active"] == 0, WAIT,
            "every lease to be given back")


class SubmitAndMapTest(ExecutorTestCase):

    def test_submit(self):
        executor = self.executor()
        future = executor.submit(pow, 2, 8)
        self.assertIsInstance(future, concurrent.futures.Future)
        self.assertEqual(future.result(WAIT), 256)

    def test_submit_keyword_arguments(self):
        executor = self.executor()
        future = executor.submit(jobs.echo, 1, fn=2, self=3)
        self.assertEqual(future.result(WAIT), ((1,), {"fn": 2, "self": 3}))
        with self.assertRaises(TypeError):
            executor.submit(fn=jobs.add)

    def test_submit_exception_is_reraised(self):
        future = self.executor().submit(jobs.divide, 1, 0)
        with self.assertRaises(ZeroDivisionError):
            future.result(WAIT)
        self.assertIsInstance(future.exception(), ZeroDivisionError)

    def test_unpicklable_job_fails_its_future(self):
        future = self.executor().submit(jobs.echo, threading.Lock())
        with self.assertRaises(Exception):
            future.result(WAIT)

    def test_map(self):
        executor = self.executor()
        self.assertEqual(list(executor.map(pow, range(10), range(10))),
                         list(map(pow, range(10), range(10))))
        self.assertEqual(list(executor.map(jobs.add, [], [])), [])

    def test_map_exception(self):
        results = self.executor().map(jobs.divide, [1, 1, 1], [1, 0, 1])
        self.assertEqual(next(results), 1.0)
        with self.assertRaises(ZeroDivisionError):
            next(results)

    def test_map_is_lazy_about_results(self):
        release = self.release_file()
        results = self.executor().map(jobs.wait_for_file, [release],
                                      ["done"])
        # map() returned although its job cannot have finished.
        harness.touch(release)
        self.assertEqual(list(results), ["done"])

    def test_map_timeout(self):
        release = self.release_file()
        results = self.executor().map(jobs.wait_for_file, [release],
                                      timeout=0.05)
        with self.assertRaises(TimeoutError):
            list(results)

    def test_map_chunksize(self):
        executor = self.executor()
        expected = [a + b for a, b in zip(range(23), range(100, 123))]
        for chunksize in (1, 2, 5, 23, 50):
            with self.subTest(chunksize=chunksize):
                self.assertEqual(
                    list(executor.map(jobs.add, range(23), range(100, 123),
                                      chunksize=chunksize)), expected)
        with self.assertRaises(ValueError):
            executor.map(jobs.add, [1], [2], chunksize=0)

    def test_map_chunks_too_large_to_send_from_a_reply_still_run(self):
        # Chunks of 64 KiB and more would make the thread that reads
        # replies wait for the socket: the worker thread sends them.
        executor = self.executor()
        blobs = [bytes([i]) * 70_000 for i in range(40)]
        self.assertEqual(list(executor.map(len, blobs, chunksize=2)),
                         [70_000] * 40)
        shared = [bytearray(300_000) for _ in range(6)]  # out of band
        self.assertEqual(list(executor.map(len, shared, chunksize=1)),
                         [300_000] * 6)

    def test_map_chunksize_sends_one_job_per_chunk(self):
        executor = self.executor()
        executor.submit(jobs.add, 0, 0).result(WAIT)  # Workers are up.
        before = self.client.status()["totals"]["submitted"]
        self.assertEqual(list(executor.map(jobs.add, range(20), range(20),
                                           chunksize=5)),
                         [2 * i for i in range(20)])
        after = self.client.status()["totals"]["submitted"]
        self.assertEqual(after - before, 4)

    def test_map_chunks_go_ahead_of_their_replies(self):
        # One worker: while its first chunk runs, the next chunks are
        # already sent on its lease (no idle round trip between chunks),
        # up to WINDOW of them.
        executor = self.executor(max_workers=1)
        executor.submit(jobs.add, 0, 0).result(WAIT)  # the worker is up
        release, log = self.path("release"), self.path("log")
        before = self.client.status()["totals"]["submitted"]
        count = 2 * (_executor_map.WINDOW + 6)
        results = executor.map(jobs.wait_then_append, [release] * count,
                               [log] * count, range(count), chunksize=2)
        sent = _executor_map.WINDOW
        harness.wait_until(
            lambda: self.client.status()["totals"]["submitted"] - before
            == sent, WAIT, f"the first chunk and {sent - 1} more to be sent")
        self.assertEqual(self.client.status()["totals"]["submitted"] - before,
                         sent)
        harness.touch(release)
        self.assertEqual(list(results), [str(i) for i in range(count)])
        self.assertEqual(jobs.read_lines(log),
                         [str(i) for i in range(count)])

    def test_map_chunks_sent_ahead_leave_a_share_for_the_others(self):
        # Two workers, 6 chunks: whichever worker gets its lease first
        # keeps at most its share of what is queued, not every chunk.
        executor = self.executor(max_workers=2)
        release, log = self.path("release"), self.path("log")
        results = executor.map(jobs.wait_then_interpreter, [release] * 12,
                               chunksize=2)
        harness.wait_until(lambda: self.client.status()["leases"]["active"]
                           == 2, WAIT, "both workers to lease")
        harness.touch(release)
        ran = collections.Counter(results)
        self.assertEqual(len(ran), 2, ran)
        self.assertGreaterEqual(min(ran.values()), 4, ran)  # 2 chunks each

    def test_map_stopped_early_withdraws_the_chunks_sent_ahead(self):
        executor = self.executor(max_workers=1)
        executor.submit(jobs.add, 0, 0).result(WAIT)
        first, rest = self.path("first"), self.path("rest")
        log = self.path("log")
        totals = self.client.status()["totals"]
        count = 2 * (_executor_map.WINDOW + 6)
        results = executor.map(jobs.wait_then_append,
                               [first] * 2 + [rest] * (count - 2),
                               [log] * count, range(count), chunksize=2)
        sent = _executor_map.WINDOW
        harness.wait_until(
            lambda: self.client.status()["totals"]["submitted"]
            - totals["submitted"] == sent, WAIT, f"{sent} chunks to be sent")
        harness.touch(first)
        self.assertEqual([next(results), next(results)], ["0", "1"])
        results.close()  # chunk 2 running, the next ones queued on the lease
        # The cancels are sent, not awaited: let them land (chunk 2 stopped
        # in its wait, the others taken off the lease's queue) before the
        # file that would let chunk 2 go on appears.
        def every_sent_chunk_ended():
            now = self.client.status()["totals"]
            ended = {key: now[key] - totals[key]
                     for key in ("submitted", "completed", "cancelled")}
            return (ended["cancelled"] >= 1 and ended["submitted"]
                    == ended["completed"] + ended["cancelled"])
        harness.wait_until(every_sent_chunk_ended, WAIT,
                           "the chunks sent ahead to be cancelled")
        harness.touch(rest)
        # Jobs on one lease run in order: this one runs after the chunks
        # sent ahead would have.
        self.assertEqual(executor.submit(jobs.add, 1, 2).result(WAIT), 3)
        self.assertEqual(jobs.read_lines(log), ["0", "1"])

    def test_map_chunks_see_the_initializer_state(self):
        executor = self.executor(max_workers=2, initializer=jobs.set_global,
                                 initargs=("kept", 7))
        self.assertEqual(list(executor.map(jobs.get_global, ["kept"] * 40,
                                           chunksize=3)), [7] * 40)

    def test_map_chunksize_timeout_counts_from_the_call(self):
        executor = self.executor(max_workers=1)
        release = self.release_file()
        results = executor.map(jobs.wait_for_file, [release] * 10,
                               ["done"] * 10, chunksize=2, timeout=0.05)
        with self.assertRaises(TimeoutError):
            list(results)
        harness.touch(release)
        self.assertEqual(executor.submit(jobs.add, 1, 2).result(WAIT), 3)

    def test_submit_queued_behind_a_map_runs(self):
        executor = self.executor(max_workers=1)
        release = self.release_file()
        results = executor.map(jobs.wait_for_file, [release] * 10,
                               range(10), chunksize=2)
        future = executor.submit(jobs.add, 1, 2)
        harness.touch(release)
        self.assertEqual(future.result(WAIT), 3)
        self.assertEqual(list(results), list(range(10)))

    def test_map_on_a_broken_pool(self):
        executor = self.executor(max_workers=2, initializer=jobs.failing_init)
        # Broken by the map's own first worker, or already when map is
        # called: either way no call runs.
        with self.assertRaises(BrokenInterpreterPool):
            list(executor.map(jobs.add, range(10), range(10), chunksize=2))
        with self.assertRaises(BrokenInterpreterPool):
            list(executor.map(jobs.add, range(10), range(10), chunksize=2))

    def test_map_chunk_exception(self):
        results = self.executor().map(jobs.divide, [1, 2, 3, 4], [1, 1, 0, 1],
                                      chunksize=2)
        self.assertEqual([next(results), next(results)], [1.0, 2.0])
        with self.assertRaises(ZeroDivisionError):
            next(results)

    def test_max_workers_defaults_to_the_daemon_workers(self):
        executor = self.executor()
        self.assertEqual(executor._max_workers, self.workers)
        with self.assertRaises(ValueError):
            InterpreterPoolExecutor(0, socket_path=self.daemon.socket_path)

    def test_workers_are_dedicated_interpreters(self):
        executor = self.executor(max_workers=2)
        release = self.release_file()
        blockers = [executor.submit(jobs.wait_for_file, release)
                    for _ in range(2)]
        harness.wait_until(lambda: self.client.status()["leases"]["active"]
                           == 2, WAIT, "two leases")
        harness.touch(release)
        concurrent.futures.wait(blockers, WAIT)
        ids = {executor.submit(jobs.interpreter_id).result(WAIT)
               for _ in range(10)}
        leased = {w["interpreter"] for w in self.client.status()["workers"]
                  if w["kind"] == "lease"}
        self.assertLessEqual(ids, leased)

    def test_thread_name_prefix(self):
        executor = self.executor(thread_name_prefix="eitest")
        executor.submit(jobs.add, 1, 1).result(WAIT)
        names = [t.name for t in threading.enumerate()]
        self.assertTrue(any(name.startswith("eitest") for name in names),
                        names)


class ShutdownTest(ExecutorTestCase):

    def test_submit_after_shutdown_raises(self):
        executor = self.executor()
        executor.shutdown()
        with self.assertRaises(RuntimeError):
            executor.submit(pow, 2, 5)

    def test_shutdown_race_with_many_submits(self):
        executor = self.executor()
        futures = [executor.submit(jobs.add, i, 1) for i in range(50)]
        executor.shutdown(wait=True)
        self.assertEqual([f.result(0) for f in futures],
                         [i + 1 for i in range(50)])

    def test_shutdown_waits_for_running_jobs(self):
        executor = self.executor(max_workers=2)
        release = self.release_file()
        started = self.path("started")
        futures = [executor.submit(jobs.wait_for_file, release)
                   for _ in range(3)]
        futures.append(executor.submit(jobs.touch_file, started))
        self.wait_for_lease_count(2)
        threading.Timer(0, harness.touch, [release]).start()
        executor.shutdown(wait=True)
        self.assertTrue(all(f.done() for f in futures))
        self.assertTrue(os.path.exists(started))
        self.assert_no_leases()

    def wait_for_lease_count(self, n):
        harness.wait_until(lambda: self.client.status()["leases"]["active"]
                           == n, WAIT, f"{n} leases")

    def test_shutdown_no_wait(self):
        executor = self.executor(max_workers=1)
        release = self.release_file()
        future = executor.submit(jobs.wait_for_file, release, "late")
        executor.shutdown(wait=False)
        self.assertFalse(future.done())
        harness.touch(release)
        self.assertEqual(future.result(WAIT), "late")
        self.assert_no_leases()

    def test_shutdown_cancel_futures(self):
        executor = self.executor(max_workers=1)
        release = self.release_file()
        marks = self.path("marks")
        running = executor.submit(jobs.wait_for_file, release, "first")
        queued = [executor.submit(jobs.append_line, marks, str(i))
                  for i in range(5)]
        harness.wait_until(running.running, WAIT, "the first job to run")
        executor.shutdown(wait=False, cancel_futures=True)
        self.assertTrue(all(f.cancelled() for f in queued))
        done, not_done = concurrent.futures.wait(queued, 0)
        self.assertEqual(len(done), 5)
        harness.touch(release)
        self.assertEqual(running.result(WAIT), "first")
        self.assert_no_leases()
        self.assertEqual(jobs.read_lines(marks), [])

    def test_cancel_futures_cancels_only_jobs_not_started(self):
        # concurrent.futures' own contract for shutdown(cancel_futures=True)
        # (as CPython's test_cancel_futures checks it, with few workers and
        # many short jobs): pending jobs are cancelled, started ones finish
        # and at least one does. Twenty times, since it is about a race.
        for attempt in range(20):
            with self.subTest(attempt=attempt):
                executor = InterpreterPoolExecutor(
                    5, socket_path=self.daemon.socket_path)
                futures = [executor.submit(jobs.sleep, 0.1) for _ in range(50)]
                executor.shutdown(cancel_futures=True)
                cancelled = [f for f in futures if f.cancelled()]
                others = [f for f in futures if not f.cancelled()]
                self.assertGreater(len(cancelled), 20)
                self.assertGreater(len(others), 0)
                for future in others:
                    self.assertTrue(future.done())
                    self.assertIsNone(future.exception())
        self.assert_no_leases()

    def test_cancel_futures_cancels_the_map_chunks_not_sent(self):
        executor = self.executor(max_workers=1)
        executor.submit(jobs.add, 0, 0).result(WAIT)  # the worker is up
        release = self.release_file()
        before = self.client.status()["totals"]["submitted"]
        count = 2 * (_executor_map.WINDOW + 6)
        results = executor.map(jobs.wait_for_file, [release] * count,
                               range(count), chunksize=2)
        sent = _executor_map.WINDOW
        harness.wait_until(
            lambda: self.client.status()["totals"]["submitted"] - before
            == sent, WAIT, f"{sent} chunks to be sent")
        executor.shutdown(wait=False, cancel_futures=True)
        harness.touch(release)
        # The chunks sent run to the end; the others never start.
        self.assertEqual([next(results) for _ in range(2 * sent)],
                         list(range(2 * sent)))
        with self.assertRaises(concurrent.futures.CancelledError):
            next(results)
        executor.shutdown(wait=True)
        self.assertEqual(self.client.status()["totals"]["submitted"] - before,
                         sent)
        self.assert_no_leases()

    def test_context_manager(self):
        with InterpreterPoolExecutor(
                socket_path=self.daemon.socket_path) as executor:
            futures = [executor.submit(jobs.add, i, i) for i in range(8)]
        self.assertTrue(all(f.done() for f in futures))
        self.assertEqual([f.result() for f in futures],
                         [2 * i for i in range(8)])
        self.assertTrue(executor.client.closed)
        self.assert_no_leases()

    def test_leases_given_back_after_shutdown(self):
        executor = self.executor(max_workers=2)
        release = self.release_file()
        futures = [executor.submit(jobs.wait_for_file, release)
                   for _ in range(2)]
        self.wait_for_lease_count(2)
        harness.touch(release)
        concurrent.futures.wait(futures, WAIT)
        executor.shutdown(wait=True)
        self.assert_no_leases()

    def test_garbage_collected_executor_gives_leases_back(self):
        executor = InterpreterPoolExecutor(
            socket_path=self.daemon.socket_path)
        self.assertEqual(executor.submit(jobs.add, 1, 2).result(WAIT), 3)
        client = executor.client
        del executor
        harness.wait_until(lambda: client.closed, WAIT, "the client closed")
        self.assert_no_leases()


class WaitTest(ExecutorTestCase):

    def setUp(self):
        super().setUp()
        self.pool = self.executor(max_workers=2)
        self.release = self.release_file()  # Touched before the shutdown.

    def blocked(self):
        return self.pool.submit(jobs.wait_for_file, self.release)

    def test_first_completed(self):
        blocked = self.blocked()
        quick = self.pool.submit(jobs.add, 1, 2)
        done, not_done = concurrent.futures.wait(
            [blocked, quick], WAIT,
            return_when=concurrent.futures.FIRST_COMPLETED)
        self.assertEqual((done, not_done), ({quick}, {blocked}))

    def test_first_completed_some_already_done(self):
        quick = self.pool.submit(jobs.add, 1, 2)
        quick.result(WAIT)
        blocked = self.blocked()
        done, not_done = concurrent.futures.wait(
            [quick, blocked], WAIT,
            return_when=concurrent.futures.FIRST_COMPLETED)
        self.assertEqual((done, not_done), ({quick}, {blocked}))

    def test_first_exception(self):
        ok = self.pool.submit(jobs.add, 1, 2)
        ok.result(WAIT)
        raising = self.pool.submit(jobs.divide, 1, 0)
        blocked = self.blocked()
        done, not_done = concurrent.futures.wait(
            [ok, raising, blocked], WAIT,
            return_when=concurrent.futures.FIRST_EXCEPTION)
        self.assertEqual((done, not_done), ({ok, raising}, {blocked}))

    def test_first_exception_when_one_already_raised(self):
        raising = self.pool.submit(jobs.divide, 1, 0)
        raising.exception(WAIT)
        blocked = self.blocked()
        done, not_done = concurrent.futures.wait(
            [raising, blocked], WAIT,
            return_when=concurrent.futures.FIRST_EXCEPTION)
        self.assertEqual((done, not_done), ({raising}, {blocked}))

    def test_all_completed(self):
        futures = {self.pool.submit(jobs.add, i, 1) for i in range(6)}
        futures.add(self.pool.submit(jobs.divide, 1, 0))
        done, not_done = concurrent.futures.wait(
            futures, WAIT, return_when=concurrent.futures.ALL_COMPLETED)
        self.assertEqual((done, not_done), (futures, set()))

    def test_timeout(self):
        quick = self.pool.submit(jobs.add, 1, 2)
        quick.result(WAIT)
        blocked = self.blocked()
        done, not_done = concurrent.futures.wait([quick, blocked], 0.05)
        self.assertEqual((done, not_done), ({quick}, {blocked}))

    def test_cancelling_a_running_job_wakes_wait(self):
        blocked = self.blocked()
        harness.wait_until(blocked.running, WAIT, "the job to run")
        threading.Timer(0, blocked.cancel).start()
        done, not_done = concurrent.futures.wait([blocked], WAIT)
        self.assertEqual(done, {blocked})
        self.assertTrue(blocked.cancelled())


class AsCompletedTest(ExecutorTestCase):

    def test_yields_every_future_once(self):
        executor = self.executor()
        futures = [executor.submit(jobs.add, i, i) for i in range(10)]
        seen = list(concurrent.futures.as_completed(futures, WAIT))
        self.assertCountEqual(seen, futures)

    def test_duplicates(self):
        executor = self.executor()
        future = executor.submit(jobs.add, 2, 2)
        seen = list(concurrent.futures.as_completed([future, future], WAIT))
        self.assertEqual(seen, [future])

    def test_timeout(self):
        executor = self.executor()
        release = self.release_file()
        quick = executor.submit(jobs.add, 1, 1)
        quick.result(WAIT)
        blocked = executor.submit(jobs.wait_for_file, release)
        seen = []
        with self.assertRaises(TimeoutError):
            for future in concurrent.futures.as_completed([quick, blocked],
                                                          0.05):
                seen.append(future)
        self.assertEqual(seen, [quick])


class InitializerTest(ExecutorTestCase):

    def test_runs_once_per_worker_and_its_state_is_seen(self):
        log = self.path("inits")
        executor = self.executor(max_workers=2, initializer=jobs.record_init,
                                 initargs=(log,))
        release = self.release_file()
        blockers = [executor.submit(jobs.wait_for_file, release)
                    for _ in range(2)]
        harness.wait_until(lambda: len(jobs.read_lines(log)) == 2, WAIT,
                           "both initializers")
        harness.touch(release)
        concurrent.futures.wait(blockers, WAIT)
        states = [executor.submit(jobs.init_state).result(WAIT)
                  for _ in range(10)]
        for initialized_in, calls, here in states:
            self.assertEqual((initialized_in, calls), (here, 1))
        inits = jobs.read_lines(log)
        self.assertEqual(len(inits), 2)
        self.assertEqual(len(set(inits)), 2)
        self.assertLessEqual({str(s[2]) for s in states}, set(inits))

    def test_failing_initializer_breaks_the_executor(self):
        executor = self.executor(max_workers=2, initializer=jobs.failing_init)
        # The first submit starts a worker; once its initializer has failed,
        # later submits raise at once (as ThreadPoolExecutor's do). Either
        # way every job fails with the broken pool.
        futures, refused = [], []
        for i in range(4):
            try:
                futures.append(executor.submit(jobs.add, i, 1))
            except BrokenInterpreterPool as exc:
                refused.append(exc)
        self.assertTrue(futures, "the first submit precedes any failure")
        errors = refused
        for future in futures:
            with self.assertRaises(BrokenInterpreterPool) as cm:
                future.result(WAIT)
            errors.append(cm.exception)
        for error in errors:
            self.assertIsInstance(error, concurrent.futures.BrokenExecutor)
            self.assertIsInstance(error.__cause__, ValueError)
        with self.assertRaises(BrokenInterpreterPool):
            executor.submit(jobs.add, 1, 1)
        executor.shutdown(wait=True)
        self.assert_no_leases()


class DoneCallbackTest(ExecutorTestCase):

    def test_callback_gets_the_future(self):
        executor = self.executor()
        called = []
        done = threading.Event()

        def callback(future):
            called.append(future.result())
            done.set()
        executor.submit(jobs.add, 20, 22).add_done_callback(callback)
        self.assertTrue(done.wait(WAIT))
        self.assertEqual(called, [42])

    def test_raising_callback_does_not_stop_the_others(self):
        executor = self.executor()
        done = threading.Event()

        def bad(future):
            raise RuntimeError("callback failed on purpose")
        future = executor.submit(jobs.add, 1, 1)
        with self.assertLogs("concurrent.futures", "ERROR"):
            future.add_done_callback(bad)
            future.add_done_callback(lambda f: done.set())
            self.assertTrue(done.wait(WAIT))

    def test_callback_added_after_done_runs_at_once(self):
        future = self.executor().submit(jobs.add, 1, 1)
        future.result(WAIT)
        called = []
        future.add_done_callback(called.append)
        self.assertEqual(called, [future])

    def test_callback_of_a_cancelled_future(self):
        executor = self.executor(max_workers=1)
        release = self.release_file()
        executor.submit(jobs.wait_for_file, release)
        queued = executor.submit(jobs.add, 1, 1)
        called = []
        queued.add_done_callback(called.append)
        self.assertTrue(queued.cancel())
        self.assertEqual(called, [queued])


class CancelTest(ExecutorTestCase):

    def test_cancel_pending_future(self):
        executor = self.executor(max_workers=1)
        release = self.release_file()
        marks = self.path("marks")
        first = executor.submit(jobs.wait_for_file, release, "first")
        queued = executor.submit(jobs.append_line, marks, "ran")
        self.assertTrue(queued.cancel())
        self.assertTrue(queued.cancelled())
        with self.assertRaises(concurrent.futures.CancelledError):
            queued.result(0)
        harness.touch(release)
        self.assertEqual(first.result(WAIT), "first")
        self.assertEqual(executor.submit(jobs.add, 1, 1).result(WAIT), 2)
        self.assertEqual(jobs.read_lines(marks), [])

    def test_cancel_running_job_and_the_worker_carries_on(self):
        executor = self.executor(max_workers=1)
        started = self.path("started")
        running = executor.submit(jobs.spin, started)
        self.wait_for_file(started)
        interp = executor.submit(jobs.interpreter_id)
        self.assertTrue(running.cancel())
        self.assertTrue(running.cancelled())
        with self.assertRaises(concurrent.futures.CancelledError):
            running.result(0)
        # The next job runs on the same worker interpreter: it survived.
        first_id = interp.result(WAIT)
        self.assertEqual(executor.submit(jobs.interpreter_id).result(WAIT),
                         first_id)

    def test_cancel_after_done_returns_false(self):
        future = self.executor().submit(jobs.add, 1, 1)
        future.result(WAIT)
        self.assertFalse(future.cancel())
        self.assertFalse(future.cancelled())

    def test_job_timeout_default(self):
        executor = self.executor(max_workers=1, timeout=0.2)
        started = self.path("started")
        with self.assertRaises(extrainterpreters.JobTimeout):
            executor.submit(jobs.spin, started).result(WAIT)
        self.assertEqual(executor.submit(jobs.add, 1, 1).result(WAIT), 2)


if __name__ == "__main__":
    unittest.main()
