"""End-to-end tests of ``Interpreter``: leased interpreters and their state."""

import os
import sys
import threading
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import jobs  # noqa: E402

import extrainterpreters  # noqa: E402
from extrainterpreters import ExtraInterpretersError, RemoteError  # noqa: E402


def lease_workers(status):
    return [w for w in status["workers"] if w["kind"] == "lease"]


class StateTest(harness.DaemonTestCase):

    def interpreter(self):
        interp = extrainterpreters.Interpreter(client=self.client)
        self.addCleanup(interp.close)
        return interp

    def test_module_state_persists_between_runs(self):
        interp = self.interpreter()
        interp.run(jobs.set_global, "answer", 42)
        self.assertEqual(interp.run(jobs.get_global, "answer"), 42)

    def test_main_state_persists_between_runs(self):
        interp = self.interpreter()
        interp.run(jobs.set_main_attr, "ei_value", [1, 2])
        self.assertEqual(interp.run(jobs.get_main_attr, "ei_value"), [1, 2])

    def test_interpreters_do_not_share_state(self):
        first, second = self.interpreter(), self.interpreter()
        self.assertNotEqual(first.id, second.id)
        first.run(jobs.set_global, "who", "first")
        self.assertIsNone(second.run(jobs.get_global, "who"))
        self.assertEqual(first.run(jobs.interpreter_id), first.id)
        self.assertEqual(second.run(jobs.interpreter_id), second.id)

    def test_exceptions_and_failed_loads_keep_the_state(self):
        interp = self.interpreter()
        interp.run(jobs.set_global, "kept", True)
        with self.assertRaises(ZeroDivisionError):
            interp.run(jobs.divide, 1, 0)
        with self.assertRaises(SystemExit):
            interp.run(jobs.raise_system_exit, 1)
        with self.assertRaises(RemoteError) as cm:
            interp.run(jobs.return_lock)
        self.assertEqual(cm.exception.code, "result_not_picklable")
        self.assertTrue(interp.run(jobs.get_global, "kept"))

    def test_own_connection(self):
        with extrainterpreters.Interpreter(self.daemon.socket_path) as interp:
            interp.run(jobs.set_global, "x", 1)
            self.assertEqual(interp.run(jobs.get_global, "x"), 1)
            client = interp.client
        self.assertTrue(client.closed)

    def test_socket_path_and_client_together_is_an_error(self):
        with self.assertRaises(TypeError):
            extrainterpreters.Interpreter(self.daemon.socket_path,
                                          client=self.client)


class RunInThreadTest(harness.DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.interp = extrainterpreters.Interpreter(client=self.client)
        self.addCleanup(self.interp.close)
        self.release = self.release_file()

    def test_returns_at_once_then_result(self):
        self.interp.run(jobs.set_global, "n", 7)
        self.interp.run_in_thread(jobs.wait_for_file, self.release, "done")
        self.assertFalse(self.interp.done())
        with self.assertRaises(TimeoutError):
            self.interp.result(timeout=0.01)
        harness.touch(self.release)
        self.assertEqual(self.interp.result(timeout=60), "done")
        self.assertTrue(self.interp.done())
        self.assertEqual(self.interp.run(jobs.get_global, "n"), 7)

    def test_done_polls_until_finished(self):
        self.interp.run_in_thread(jobs.wait_for_file, self.release, 5)
        harness.touch(self.release)
        harness.wait_until(self.interp.done, message="done() to turn true")
        self.assertEqual(self.interp.result(), 5)

    def test_result_raises_the_jobs_exception(self):
        self.interp.run_in_thread(jobs.divide, 1, 0)
        with self.assertRaises(ZeroDivisionError):
            self.interp.result(timeout=60)

    def test_second_job_while_one_is_pending_is_refused(self):
        self.interp.run_in_thread(jobs.wait_for_file, self.release, 1)
        with self.assertRaises(ExtraInterpretersError) as cm:
            self.interp.run_in_thread(jobs.add, 1, 1)
        self.assertIn("still running", str(cm.exception))
        with self.assertRaises(ExtraInterpretersError):
            self.interp.run(jobs.add, 1, 1)
        harness.touch(self.release)
        self.assertEqual(self.interp.result(timeout=60), 1)
        self.assertEqual(self.interp.run(jobs.add, 1, 1), 2)

    def test_result_without_a_job_is_an_error(self):
        with self.assertRaises(ExtraInterpretersError):
            self.interp.done()
        with self.assertRaises(ExtraInterpretersError):
            self.interp.result()


class LeaseLifetimeTest(harness.DaemonTestCase):

    def lease_ids(self):
        return {w["lease"] for w in lease_workers(self.client.status())}

    def test_lease_shows_in_status_and_goes_on_close(self):
        interp = extrainterpreters.Interpreter(client=self.client)
        self.addCleanup(interp.close)
        status = self.client.status()
        mine = [w for w in lease_workers(status)
                if w["interpreter"] == interp.id]
        self.assertEqual(len(mine), 1)
        self.assertGreaterEqual(status["leases"]["active"], 1)
        lease = mine[0]["lease"]
        interp.close()
        interp.close()  # Idempotent.
        harness.wait_until(lambda: lease not in self.lease_ids(),
                           message=f"lease {lease} to leave the status")
        with self.assertRaises(ExtraInterpretersError):
            interp.run(jobs.add, 1, 1)

    def test_lease_ends_when_its_connection_drops(self):
        other = self.daemon.client()
        interp = extrainterpreters.Interpreter(client=other)
        interp.run(jobs.set_global, "gone", True)
        lease = next(w["lease"] for w in lease_workers(self.client.status())
                     if w["interpreter"] == interp.id)
        other.close()  # No release sent: the daemon must notice the drop.
        harness.wait_until(lambda: lease not in self.lease_ids(),
                           message=f"lease {lease} to end with its connection")
        interp.close()  # Does not raise: the lease is already gone.

    def test_close_answers_the_pending_job_first(self):
        interp = extrainterpreters.Interpreter(client=self.client)
        release = self.release_file()
        interp.run_in_thread(jobs.wait_for_file, release, "finished")
        closer = threading.Thread(target=interp.close)
        closer.start()
        harness.touch(release)
        closer.join(60)
        self.assertFalse(closer.is_alive(), "close() did not return")
        self.assertEqual(interp.result(timeout=0), "finished")

    def test_lease_limit(self):
        limit = self.client.hello["limits"]["max_interpreters"]
        interps = []
        self.addCleanup(lambda: [i.close() for i in interps])
        with self.assertRaises(RemoteError) as cm:
            # The pool's interpreters count toward the limit too.
            for _ in range(limit + 1):
                interps.append(
                    extrainterpreters.Interpreter(client=self.client))
        self.assertEqual(cm.exception.code, "lease_limit")
        self.assertLess(len(interps), limit)
        self.assertEqual(interps[0].run(jobs.add, 1, 2), 3)

    def test_unknown_lease(self):
        future = self.client._submit(jobs.add, (1, 2), {},
                                     lease=2**40 + uuid.uuid4().int % 1000)
        with self.assertRaises(RemoteError) as cm:
            future.result(timeout=60)
        self.assertEqual(cm.exception.code, "unknown_lease")


if __name__ == "__main__":
    unittest.main()
