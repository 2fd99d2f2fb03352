"""Clients that survive a daemon restart, through the real daemon: kill -9
and a segfaulting job with jobs in flight; each in-flight job fails with
JobLost at once, nothing runs twice, and the same Client, AsyncClient,
executor and module-level run() carry on with the new daemon on the same
socket."""

import asyncio
import os
import signal
import time
import unittest

import harness
import jobs

import extrainterpreters
from extrainterpreters import (AsyncClient, Client, DaemonConnectionError,
                               Interpreter, InterpreterPoolExecutor, JobLost,
                               Queue, RemoteError)

WAIT = 60.0
LOST_WITHIN = 10.0  # seconds for an in-flight job to fail once the daemon is gone


class RestartTest(unittest.TestCase):

    def setUp(self):
        self.daemon = harness.Daemon(workers=2)
        self.addCleanup(self.stop_all)
        self.daemons = [self.daemon.start()]
        self.marks = os.path.join(self.daemon.tmpdir, "marks")
        self.release = os.path.join(self.daemon.tmpdir, "release")

    def stop_all(self):
        for daemon in self.daemons:
            daemon.stop()

    def restart(self):
        """A new daemon on the same socket (and directory)."""
        daemon = harness.Daemon(workers=2)
        os.rmdir(daemon.tmpdir)
        daemon.tmpdir = self.daemon.tmpdir
        daemon.socket_path = self.daemon.socket_path
        daemon.log_path = os.path.join(self.daemon.tmpdir,
                                       f"daemon-{len(self.daemons)}.log")
        self.daemons.append(daemon.start())
        return daemon

    def kill(self, sig=signal.SIGKILL):
        self.daemon.process.send_signal(sig)
        self.daemon.process.wait(WAIT)

    def in_flight(self, client, count):
        """Jobs that mark a file, then wait for a release that never comes
        before the daemon dies."""
        futures = [client.submit(jobs.append_line, self.marks, f"job {i}")
                   for i in range(count)]
        for future in futures:
            future.result(WAIT)
        waiting = [client.submit(jobs.wait_for_file, self.release, i)
                   for i in range(count)]
        harness.wait_until(
            lambda: client.status()["queue_depth"] + sum(
                w["state"] == "busy" for w in client.status()["workers"]) >= count,
            WAIT, "the waiting jobs in the daemon")
        return waiting

    def assert_lost(self, futures):
        started = time.monotonic()
        for future in futures:
            with self.assertRaises(JobLost) as cm:
                future.result(WAIT)
            self.assertIsInstance(cm.exception, DaemonConnectionError)
            self.assertIn("it is not sent again", str(cm.exception))
        self.assertLess(time.monotonic() - started, LOST_WITHIN)

    def test_kill_9_then_the_same_client_carries_on(self):
        client = Client(self.daemon.socket_path)
        self.addCleanup(client.close)
        waiting = self.in_flight(client, 4)
        self.kill()
        self.assert_lost(waiting)
        self.restart()
        self.assertEqual(client.run(jobs.add, 2, 3), 5)
        self.assertEqual(client.hello["pid"], self.daemons[-1].process.pid)
        # Nothing was run twice: each marking job ran exactly once.
        self.assertEqual(sorted(jobs.read_lines(self.marks)),
                         [f"job {i}" for i in range(4)])

    def test_a_segfaulting_job_then_every_kind_of_client_carries_on(self):
        socket_path = self.daemon.socket_path
        client = Client(socket_path)
        self.addCleanup(client.close)
        executor = InterpreterPoolExecutor(2, socket_path=socket_path)
        self.addCleanup(executor.shutdown, wait=True, cancel_futures=True)
        self.assertEqual(executor.submit(jobs.add, 1, 1).result(WAIT), 2)
        loop = asyncio.new_event_loop()
        self.addCleanup(loop.close)
        aclient = AsyncClient(socket_path)
        self.assertEqual(loop.run_until_complete(aclient.run(jobs.add, 1, 2)), 3)
        os.environ["EXTRAINTERPRETERS_SOCKET"] = socket_path
        self.addCleanup(os.environ.pop, "EXTRAINTERPRETERS_SOCKET")
        self.assertEqual(extrainterpreters.run(jobs.add, 2, 2), 4)
        waiting = self.in_flight(client, 1)  # the other worker takes the crash
        crash = client.submit(jobs.segfault, lane="interpreter")
        self.daemon.process.wait(WAIT)  # the segfault ended the daemon
        self.assertEqual(self.daemon.process.returncode, -signal.SIGSEGV)
        self.assert_lost(waiting + [crash])
        self.restart()
        self.assertEqual(client.run(jobs.add, 3, 4), 7)
        # The workers' leases ended with the daemon: the map's chunks find
        # them lost and go out again on new ones.
        self.assertEqual(list(executor.map(jobs.add, range(20), range(20),
                                           chunksize=3)),
                         [2 * i for i in range(20)])
        self.assertEqual(executor.submit(jobs.add, 5, 5).result(WAIT), 10)
        self.assertEqual(loop.run_until_complete(aclient.run(jobs.add, 6, 6)), 12)
        self.assertEqual(extrainterpreters.run(jobs.add, 7, 7), 14)
        loop.run_until_complete(self.close_async(aclient))

    async def close_async(self, aclient):
        aclient.close()
        await aclient.wait_closed()

    def test_leases_and_queues_are_reported_gone(self):
        client = Client(self.daemon.socket_path)
        self.addCleanup(client.close)
        interp = Interpreter(client=client)
        anonymous = Queue(client=client)
        named = Queue.create("results", client=client)
        named.put("before")
        self.kill()
        self.restart()
        with self.assertRaises(RemoteError) as cm:
            interp.run(jobs.add, 1, 1)
        self.assertEqual(cm.exception.code, "lease_lost")
        interp.close()  # nothing to release: no error
        with self.assertRaises(RemoteError) as cm:
            anonymous.put("x")
        self.assertEqual(cm.exception.code, "queue_gone")
        with self.assertRaises(RemoteError) as cm:
            named.get(timeout=1)
        self.assertEqual(cm.exception.code, "unknown_queue")
        self.assertIn("'results'", str(cm.exception))
        # Made again by name, the same object finds it.
        again = Queue.create("results", client=client)
        again.put("after")
        self.assertEqual(named.get(timeout=WAIT), "after")
        # And a fresh lease works.
        with Interpreter(client=client) as fresh:
            self.assertEqual(fresh.run(jobs.add, 1, 1), 2)

    def test_a_daemon_that_stays_away_is_a_clear_error_in_time(self):
        client = Client(self.daemon.socket_path, reconnect_timeout=1)
        self.addCleanup(client.close)
        self.kill()
        started = time.monotonic()
        with self.assertRaises(DaemonConnectionError) as cm:
            client.run(jobs.add, 1, 1)
        took = time.monotonic() - started
        self.assertIn("trying to reconnect for 1 s", str(cm.exception))
        self.assertIn(self.daemon.socket_path, str(cm.exception))
        self.assertLess(took, 5)
        # Back later: the same client gets in.
        self.restart()
        self.assertEqual(client.run(jobs.add, 1, 1), 2)

    def test_a_closed_client_stays_closed(self):
        client = Client(self.daemon.socket_path)
        client.close()
        with self.assertRaises(DaemonConnectionError) as cm:
            client.run(jobs.add, 1, 1)
        self.assertIn("client closed", str(cm.exception))


class LazyAsyncClientTest(harness.DaemonTestCase):

    def test_used_without_connect(self):
        async def main():
            client = AsyncClient(self.daemon.socket_path)
            try:
                self.assertEqual(client.hello, {})
                self.assertEqual(await client.run(abs, -1), 1)
                future = client.submit(jobs.add, 2, 3)
                self.assertEqual(await future, 5)
                self.assertEqual(client.hello["pid"], self.daemon.process.pid)
            finally:
                client.close()
                await client.wait_closed()

        asyncio.run(main())

    def test_submit_before_any_connection(self):
        async def main():
            client = AsyncClient(self.daemon.socket_path)
            futures = [client.submit(jobs.add, i, i) for i in range(5)]
            self.assertEqual(await asyncio.gather(*futures), [0, 2, 4, 6, 8])
            status = await client.status()
            client.close()
            await client.wait_closed()
            return status

        self.assertGreaterEqual(asyncio.run(main())["totals"]["completed"], 5)

    def test_no_daemon_is_a_clear_error(self):
        async def main():
            client = AsyncClient(os.path.join(self.daemon.tmpdir, "nobody.sock"))
            with self.assertRaises(DaemonConnectionError) as cm:
                await client.run(abs, -1)
            self.assertIn("no such socket file", str(cm.exception))

        asyncio.run(main())


if __name__ == "__main__":
    unittest.main()
