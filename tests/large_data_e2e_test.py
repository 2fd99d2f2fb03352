"""Large arguments and results travel through shared memory (memfd passed
with SCM_RIGHTS; PROTOCOL.md, "Large data"), arrive intact, and leak
nothing: no descriptors in the client, no memory in the daemon when a
client dies mid-transfer."""

import asyncio
import gc
import hashlib
import os
import subprocess
import sys
import unittest

import harness
import jobs

import extrainterpreters

MIB = 1 << 20


def sha(data):
    return hashlib.sha256(data).hexdigest()


def open_fds():
    """This process's open descriptors: {fd: what it points to}."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:
            pass  # listdir's own descriptor, closed already
    return fds


def results_mappings():
    """How many mappings of the daemon's result file this process has."""
    with open("/proc/self/maps") as maps:
        return sum("extrainterpreters-results" in line for line in maps)


class LargeDataTest(harness.DaemonTestCase):

    def received_with_fd(self):
        """Records, per result frame from now on, whether a memfd came with
        it (the client maps it before it dispatches the frame)."""
        seen = []
        receiver = self.client._connection._receiver
        dispatch = receiver._dispatch

        def recording(frame):
            if frame.header.get("type") == "result":
                seen.append(frame.views is not None)
            return dispatch(frame)
        receiver._dispatch = recording
        return seen

    def test_large_results_come_through_shared_memory(self):
        seen = self.received_with_fd()
        self.client.run(jobs.pattern, 2 * MIB)
        self.client.run(jobs.pattern, 1000)
        self.assertEqual(seen, [True, False])

    def test_large_results_arrive_intact(self):
        data = self.client.run(jobs.pattern, 64 * MIB, 3)
        self.assertIs(type(data), bytes)
        self.assertEqual(sha(data), sha(jobs.pattern(64 * MIB, 3)))
        array = self.client.run(jobs.big_bytearray, 3 * MIB, 5)
        self.assertIs(type(array), bytearray)
        self.assertEqual(array, jobs.pattern(3 * MIB, 5))
        # Containers of large buffers too, next to small values.
        mixed = self.client.run(jobs.echo, [jobs.pattern(2 * MIB, 1), "small"])
        self.assertEqual(mixed, (([jobs.pattern(2 * MIB, 1), "small"],), {}))

    def test_large_arguments_arrive_intact(self):
        data = jobs.pattern(64 * MIB, 7)
        self.assertEqual(self.client.run(jobs.describe_buffer, data),
                         ("bytes", 64 * MIB, sha(data)))
        array = bytearray(jobs.pattern(2 * MIB, 8))
        self.assertEqual(self.client.run(jobs.describe_buffer, array),
                         ("bytearray", 2 * MIB, sha(array)))
        view = memoryview(jobs.pattern(2 * MIB, 9))
        self.assertEqual(self.client.run(jobs.describe_buffer, view),
                         ("bytes", 2 * MIB, sha(view)))

    def test_no_descriptor_leaks_in_the_client(self):
        # Warm up: the connection keeps one file (and its mapping's
        # descriptor) for large arguments from the first one on.
        self.client.run(jobs.pattern, 2 * MIB)
        self.client.run(jobs.describe_buffer, jobs.pattern(2 * MIB))
        # Without the garbage collector, garbage of earlier tests cannot
        # close its descriptors in the middle, and one this loop left to
        # the collector (in a reference cycle) counts as a leak.
        gc.disable()
        self.addCleanup(gc.enable)
        before = open_fds()
        for seed in range(20):
            self.client.run(jobs.describe_buffer, jobs.pattern(2 * MIB, seed))
            self.client.run(jobs.pattern, 2 * MIB, seed)
        self.assertEqual(open_fds(), before)

    def test_async_client_gets_large_results_in_the_frame(self):
        async def main():
            async with extrainterpreters.AsyncClient(
                    self.daemon.socket_path) as client:
                return await client.run(jobs.pattern, 4 * MIB, 2)
        self.assertEqual(asyncio.run(main()), jobs.pattern(4 * MIB, 2))

    def replies(self, client=None):
        """Records the header of every result frame from now on."""
        client = client or self.client
        seen = []
        receiver = client._connection._receiver
        dispatch = receiver._dispatch

        def recording(frame):
            if frame.header.get("type") == "result":
                seen.append(frame.header)
            return dispatch(frame)
        receiver._dispatch = recording
        return seen

    def test_large_arguments_reuse_one_file_per_connection(self):
        seen = self.replies()
        regions = self.client._connection._regions
        for seed in range(3):
            data = jobs.pattern(8 * MIB, seed)
            self.assertEqual(self.client.run(jobs.describe_buffer, data),
                             ("bytes", 8 * MIB, sha(data)))
            if seed == 0:
                region, = regions._free
        # The daemon was done with the file after each job, so the client
        # wrote the next argument into the same one.
        self.assertEqual([h.get("oob_done") for h in seen], [True] * 3)
        self.assertEqual(regions._free, [region])

    def test_jobs_sent_at_once_each_take_a_file_and_reuse_them(self):
        seen = self.replies()
        regions = self.client._connection._regions
        files = []
        for _ in range(2):
            release = self.release_file()
            data = [jobs.pattern(2 * MIB, seed) for seed in range(4)]
            futures = [self.client.submit(jobs.wait_for_file, release, d)
                       for d in data]
            # All four wait for their reply: each has a file of its own.
            files.append({os.fstat(r.fd).st_ino for r in regions._lent.values()})
            harness.touch(release)
            for future, expected in zip(futures, data):
                self.assertEqual(future.result(60), expected)
        self.assertEqual(len(files[0]), 4)
        self.assertEqual(files[1], files[0])  # written again, not new ones
        self.assertEqual([h.get("oob_done") for h in seen], [True] * 8)

    def test_an_argument_a_job_keeps_is_never_overwritten(self):
        seen = self.replies()
        first = jobs.pattern(2 * MIB, 1)
        with extrainterpreters.Interpreter(client=self.client) as interp:
            # The Keeper's buffer travels out of band next to a large bytes,
            # and the job keeps a view of it in the interpreter.
            self.assertEqual(interp.run(jobs.keep, jobs.Keeper(first),
                                        jobs.pattern(2 * MIB, 2)), sha(first))
            for seed in range(3, 6):
                data = jobs.pattern(2 * MIB, seed)
                self.assertEqual(interp.run(jobs.describe_buffer, data)[2], sha(data))
            self.assertEqual(interp.run(jobs.kept_sha), sha(first))
        self.assertNotIn("oob_done", seen[0])  # the client dropped that file
        self.assertEqual([h.get("oob_done") for h in seen[1:4]], [True] * 3)

    def test_large_results_reuse_the_daemons_file(self):
        seen = self.replies()
        for seed in range(3):
            data = self.client.run(jobs.pattern, 8 * MIB, seed)
            self.assertEqual(sha(data), sha(jobs.pattern(8 * MIB, seed)))
        self.assertEqual([(h.get("fd"), h.get("region")) for h in seen],
                         [(True, True)] * 3)

    def test_a_result_the_client_keeps_is_never_overwritten(self):
        seen = self.replies()
        kept, data = self.client.run(jobs.keeper_and_bytes, 2 * MIB, 1)
        self.assertEqual(bytes(kept.data), jobs.pattern(2 * MIB, 1))
        # The client still uses the daemon's file, so it never says it is
        # free: later results come in new files, and the kept view holds.
        for seed in range(2, 5):
            self.assertEqual(self.client.run(jobs.pattern, 2 * MIB, seed),
                             jobs.pattern(2 * MIB, seed))
        self.assertEqual(bytes(kept.data), jobs.pattern(2 * MIB, 1))
        self.assertEqual(data, jobs.pattern(2 * MIB, 1))
        self.assertEqual([h.get("region") for h in seen], [True, None, None, None])

    def test_a_kept_result_lets_go_of_the_file_when_dropped(self):
        # Reference counting alone unmaps what a result kept: nothing in
        # the client (a Future in a reference cycle, say) holds on to it
        # until the garbage collector happens to run.
        gc.disable()
        self.addCleanup(gc.enable)
        before = open_fds()
        kept, data = self.client.run(jobs.keeper_and_bytes, 2 * MIB, 1)
        self.assertEqual(results_mappings(), 1)  # the kept view's
        self.assertEqual(bytes(kept.data), data)
        del kept, data
        self.assertEqual(results_mappings(), 0)
        self.assertEqual(open_fds(), before)

    def test_the_result_region_stays_mapped_between_results(self):
        sizes = [2 * MIB, 8 * MIB, 3 * MIB, 64 * MIB, 1 * MIB, 64 * MIB]
        for seed, size in enumerate(sizes):
            self.assertEqual(sha(self.client.run(jobs.pattern, size, seed)),
                             sha(jobs.pattern(size, seed)))
            # One mapping of the daemon's result file, however many results
            # came through it (a new one when the file grew); before 3.13,
            # none between results.
            self.assertEqual(results_mappings(),
                             1 if sys.version_info >= (3, 13) else 0)

    def test_large_results_of_the_process_lane(self):
        seen = self.replies()
        for seed, size in enumerate([2 * MIB, 16 * MIB, 2 * MIB]):
            self.assertEqual(sha(self.client.submit_with(
                jobs.pattern, (size, seed), lane="process").result()),
                sha(jobs.pattern(size, seed)))
        self.assertEqual([h.get("fd") for h in seen], [True] * 3)

    def test_a_buffer_result_is_a_view_of_the_region_until_dropped(self):
        seen = self.replies()
        for seed in range(3):
            view = self.client.run(jobs.pattern_buffer, 4 * MIB, seed)
            self.assertIs(type(view), memoryview)
            self.assertEqual(sha(view), sha(jobs.pattern(4 * MIB, seed)))
            del view  # the region is free again for the next result
        self.assertEqual([h.get("region") for h in seen], [True] * 3)

    def test_concurrent_large_results_arrive_intact(self):
        futures = [self.client.submit(jobs.pattern, (1 + seed % 4) * MIB, seed)
                   for seed in range(16)]
        for seed, future in enumerate(futures):
            self.assertEqual(sha(future.result()),
                             sha(jobs.pattern((1 + seed % 4) * MIB, seed)))

    def test_a_dropped_result_gives_the_region_back(self):
        seen = self.replies()
        kept, data = self.client.run(jobs.keeper_and_bytes, 2 * MIB, 3)
        self.assertEqual(self.client.run(jobs.pattern, 2 * MIB, 4),
                         jobs.pattern(2 * MIB, 4))
        del kept, data
        for seed in range(5, 7):
            self.assertEqual(self.client.run(jobs.pattern, 2 * MIB, seed),
                             jobs.pattern(2 * MIB, seed))
        # Kept, a new file meanwhile; dropped, the region again.
        self.assertEqual([h.get("region") for h in seen],
                         [True, None, True, True])

    def test_a_view_made_from_a_kept_result_keeps_the_region(self):
        # The kept object holds no reference to what pickle was given, only
        # a memoryview made from it: that still counts as using the region.
        seen = self.replies()
        kept, _ = self.client.run(jobs.keeper_and_bytes, 2 * MIB, 7)
        view = memoryview(kept.data)
        del kept
        for seed in range(3):
            self.assertEqual(self.client.run(jobs.pattern, 2 * MIB, seed),
                             jobs.pattern(2 * MIB, seed))
        self.assertEqual(bytes(view), jobs.pattern(2 * MIB, 7))
        self.assertEqual([h.get("region") for h in seen],
                         [True, None, None, None])

    def test_daemon_memory_returns_after_a_client_dies_mid_transfer(self):
        daemon = self.start_daemon()
        client = daemon.client(self)
        baseline = client.run(jobs.rss_kib)
        child = subprocess.run(
            [sys.executable, "-c", _DYING_CLIENT, daemon.socket_path],
            env=dict(os.environ, PYTHONPATH=harness.client_pythonpath()),
            capture_output=True, text=True, timeout=120)
        self.assertEqual(child.returncode, 0, child.stderr)

        def settled():
            status = client.status()
            return (status["connections"] == 1
                    and status["totals"]["submitted"]
                    == status["totals"]["completed"] + status["totals"]["failed"]
                    + status["totals"]["dropped"])
        harness.wait_until(settled, 60, "the dead client's jobs to end")
        after = client.run(jobs.rss_kib)
        self.assertLess(after - baseline, 64 * 1024,
                        f"daemon RSS grew from {baseline} to {after} KiB")


# Sends large arguments and asks for large results, then dies without
# reading the replies.
_DYING_CLIENT = """
import os, sys
import extrainterpreters, jobs
client = extrainterpreters.Client(sys.argv[1])
for seed in range(4):
    client.submit(jobs.describe_buffer, jobs.pattern(32 << 20, seed))
    client.submit(jobs.pattern, 64 << 20, seed)
os._exit(0)
"""


if __name__ == "__main__":
    unittest.main()
