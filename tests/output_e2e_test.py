"""What jobs print reaches the caller, through the real daemon.

The tests swap ``sys.stdout`` / ``sys.stderr`` for recorders, which the
client's reader thread writes to, and look at every write it made.
"""

import asyncio
import contextlib
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import jobs  # noqa: E402

import extrainterpreters  # noqa: E402

WAIT = 60.0


class Recorder:
    """A text stream that keeps each write and lets a test wait for text."""

    def __init__(self):
        self._writes = []
        self._changed = threading.Condition()

    def write(self, data):
        with self._changed:
            self._writes.append(data)
            self._changed.notify_all()
        return len(data)

    def flush(self):
        pass

    @property
    def writes(self):
        with self._changed:
            return list(self._writes)

    def text(self):
        return "".join(self.writes)

    def wait_for(self, text, timeout=WAIT):
        with self._changed:
            if not self._changed.wait_for(
                    lambda: text in "".join(self._writes), timeout):
                raise AssertionError(f"{text!r} was not written within "
                                     f"{timeout} s; got {self._writes!r}")


class OutputTest(harness.DaemonTestCase):

    workers = 2

    def setUp(self):
        super().setUp()
        self.out, self.err = Recorder(), Recorder()
        stack = contextlib.ExitStack()
        stack.enter_context(contextlib.redirect_stdout(self.out))
        stack.enter_context(contextlib.redirect_stderr(self.err))
        self.addCleanup(stack.close)

    def test_prints_reach_stdout_in_order(self):
        self.assertEqual(self.client.run(jobs.print_lines, 200), 200)
        self.assertEqual(self.out.text(),
                         "".join(f"line {i}\n" for i in range(200)))
        self.assertEqual(self.err.text(), "")

    def test_stderr_goes_to_stderr(self):
        self.client.run(jobs.print_lines, 3, "err", "stderr")
        self.assertEqual(self.err.text(), "err 0\nerr 1\nerr 2\n")
        self.assertEqual(self.out.text(), "")

    def test_progress_arrives_while_the_job_runs(self):
        release = self.release_file()
        future = self.client.submit(jobs.print_then_wait, "progress 40%",
                                    release)
        self.out.wait_for("progress 40%\n")
        self.assertFalse(future.done())  # Seen before the job could end.
        harness.touch(release)
        self.assertEqual(future.result(WAIT), "released")

    def test_output_false_turns_it_off(self):
        client = extrainterpreters.Client(self.daemon.socket_path,
                                          output=False)
        self.addCleanup(client.close)
        self.assertEqual(client.run(jobs.print_lines, 5), 5)
        self.assertEqual(self.out.text(), "")
        # Per job, either way.
        client.submit_with(jobs.print_lines, (1, "on"), output=True).result(
            WAIT)
        self.client.submit_with(jobs.print_lines, (1, "off"),
                                output=False).result(WAIT)
        self.assertEqual(self.out.text(), "on 0\n")

    def test_two_jobs_never_interleave_within_a_line(self):
        release = self.release_file()
        # Start both at once: each waits for the same release file first.
        futures = [self.client.submit(jobs.print_in_pieces_after, release,
                                      300, letter)
                   for letter in "AB"]
        harness.touch(release)
        for future in futures:
            self.assertEqual(future.result(WAIT), 300)
        for write in self.out.writes:
            self.assertTrue(write.endswith("\n"), write[-60:])
        lines = self.out.text().splitlines()
        self.assertCountEqual(set(lines), {"A" * 50, "B" * 50})
        self.assertEqual(len(lines), 600)

    def test_interpreter_and_executor_output(self):
        with extrainterpreters.Interpreter(client=self.client) as interp:
            interp.run(jobs.print_lines, 2, "interp")
        with extrainterpreters.InterpreterPoolExecutor(
                1, socket_path=self.daemon.socket_path) as executor:
            executor.submit(jobs.print_lines, 2, "pool").result(WAIT)
        self.assertEqual(self.out.text(),
                         "interp 0\ninterp 1\npool 0\npool 1\n")

    def test_async_client_output(self):
        async def main():
            async with extrainterpreters.AsyncClient(
                    self.daemon.socket_path) as client:
                return await client.run(jobs.print_lines, 3, "aio")
        self.assertEqual(asyncio.run(main()), 3)
        self.assertEqual(self.out.text(), "aio 0\naio 1\naio 2\n")


if __name__ == "__main__":
    unittest.main()
