"""End-to-end attacks on the wire protocol, over raw sockets.

Malformed frames and random garbage each get a fatal ``error`` frame (or,
when the bytes stop mid-frame, just the close) and the connection closes;
thousands of clients vanishing mid-frame, mid-job and mid-result leave no
file descriptors, threads or interpreters behind; the daemon's memory stays
flat and the next client is served.
"""

import os
import pickle
import random
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import jobs  # noqa: E402

from extrainterpreters import _codec  # noqa: E402

WAIT = 10.0  # bound on a close; a generous one (this is not a speed test)
HELLO = {"type": "hello", "id": 1, "protocol": 1, "client": "attack-test"}
U32_MAX = 2 ** 32 - 1
RSS_GROWTH_LIMIT_KIB = 64 * 1024  # generous: allocator noise, not a leak
GARBAGE_STREAMS = 200
SEED = 20261125


def prefix(header_len, payload_len, *, magic=b"EIPC", version=1, flags=0,
           reserved=0):
    return struct.pack(">4sBBHII", magic, version, flags, reserved,
                       header_len, payload_len)


def raw_frame(header_bytes, payload=b"", **fields):
    return prefix(len(header_bytes), len(payload), **fields) + header_bytes + payload


def frame(header, payload=b""):
    return _codec.encode_frame(header, payload)


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


class MalformedInputTest(harness.DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.pid = self.daemon.process.pid
        self.limits = self.client.hello["limits"]

    def connect(self, hello=True):
        conn = harness.RawConnection(self.daemon.socket_path, timeout=WAIT)
        self.addCleanup(conn.close)
        if hello:
            conn.hello()
        return conn

    def assert_fatal_error(self, data, code, *, hello=True):
        conn = self.connect(hello)
        conn.send_bytes(data)
        frames = conn.read_until_eof()
        self.assertEqual(len(frames), 1, [f.header for f in frames])
        header = frames[0].header
        self.assertEqual((header["type"], header["code"], header["fatal"]),
                         ("error", code, True), header)
        conn.close()

    def assert_served(self):
        self.assertIsNone(self.daemon.process.poll(), self.daemon.log())
        with self.daemon.client() as fresh:
            self.assertEqual(fresh.run(jobs.add, 40, 2, timeout=WAIT), 42)

    def malformed_cases(self):
        ping = b'{"type":"ping","id":2}'
        max_header = self.limits["max_header_bytes"]
        max_frame = self.limits["max_frame_bytes"]
        return {
            "bad magic": (raw_frame(ping, magic=b"GET "), "bad_frame"),
            "zero magic": (bytes(16), "bad_frame"),
            "bad version 0": (raw_frame(ping, version=0), "unsupported_version"),
            "bad version 255": (raw_frame(ping, version=255), "unsupported_version"),
            "non-zero flags": (raw_frame(ping, flags=0x80), "bad_frame"),
            "header length 0": (prefix(0, 0), "too_large"),
            "header length 0 with payload": (prefix(0, 5) + b"hello", "too_large"),
            "header length limit+1": (prefix(max_header + 1, 0), "too_large"),
            "header length 2^32-1": (prefix(U32_MAX, 0), "too_large"),
            "frame length limit+1": (
                prefix(len(ping), max_frame - 16 - len(ping) + 1) + ping, "too_large"),
            "payload length 2^32-1": (prefix(len(ping), U32_MAX) + ping, "too_large"),
            "both lengths 2^32-1": (prefix(U32_MAX, U32_MAX), "too_large"),
            "invalid JSON": (raw_frame(b"{not json"), "bad_header"),
            "truncated JSON": (raw_frame(b'{"type":"ping","id":'), "bad_header"),
            "invalid UTF-8": (raw_frame(b'{"type":"\xff","id":2}'), "bad_header"),
            "JSON not an object": (raw_frame(b'[1,2]'), "bad_header"),
            "JSON null": (raw_frame(b'null'), "bad_header"),
            "no type": (raw_frame(b'{"id":2}'), "bad_header"),
            "no id": (raw_frame(b'{"type":"ping"}'), "bad_header"),
            "negative id": (raw_frame(b'{"type":"ping","id":-2}'), "bad_header"),
            "id past 2^53-1": (raw_frame(b'{"type":"ping","id":9007199254740992}'),
                               "bad_header"),
            "id 2^64-1": (raw_frame(b'{"type":"ping","id":18446744073709551615}'),
                          "bad_header"),
            # Parsed and freed without recursing off the stack, then refused.
            "deep nesting, no type": (raw_frame(b'{"id":2,"x":' + b"[" * 30000
                                                + b"]" * 30000 + b"}"), "bad_header"),
        }

    def test_each_malformed_frame_gets_its_error_and_close(self):
        for name, (data, code) in self.malformed_cases().items():
            for hello in (True, False):
                with self.subTest(name, after_hello=hello):
                    self.assert_fatal_error(data, code, hello=hello)
        self.assert_served()

    def test_payload_length_at_the_limit_is_not_an_error(self):
        # The boundary itself is allowed: the daemon waits for the bytes and
        # lets the connection go when it closes, keeping nothing.
        ping = b'{"type":"ping","id":2}'
        conn = self.connect()
        conn.send_bytes(prefix(len(ping), self.limits["max_frame_bytes"] - 16 - len(ping)) + ping)
        conn.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(conn.read_until_eof(), [])
        self.assert_served()

    def test_truncated_prefix_header_or_payload_then_close(self):
        whole = frame({"type": "run", "id": 2}, b"x" * 100)
        for cut in (1, 4, 8, 15, 16, 17, 30, len(whole) - 1):
            for hello in (True, False):
                with self.subTest(cut=cut, after_hello=hello):
                    conn = self.connect(hello)
                    conn.send_bytes(whole[:cut])
                    conn.sock.shutdown(socket.SHUT_WR)
                    frames = conn.read_until_eof()  # the close comes
                    for f in frames:
                        self.assertEqual(f.header["type"], "error", f.header)
                    conn.close()
        self.assert_served()

    def test_garbage_streams(self):
        rng = random.Random(SEED)
        rss_before = proc_status(self.pid, "VmRSS")
        for i in range(GARBAGE_STREAMS):
            kind = i % 4
            body = rng.randbytes(rng.randrange(1, 4096))
            if kind == 1:  # a valid prefix, then garbage as the header
                body = prefix(rng.randrange(2, 512), rng.randrange(0, 512)) + body
            elif kind == 2:  # a valid prefix with random lengths
                body = prefix(rng.getrandbits(32), rng.getrandbits(32)) + body
            elif kind == 3:  # a good hello, then garbage
                body = frame(HELLO) + body
            with self.subTest(stream=i, kind=kind):
                conn = self.connect(hello=False)
                conn.send_bytes(body)
                # Bytes that stop mid-frame get no error: end the stream.
                try:
                    conn.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                frames = conn.read_until_eof()
                errors = [f.header for f in frames if f.header["type"] == "error"]
                others = [f.header for f in frames if f.header["type"] != "error"]
                self.assertLessEqual(len(errors), 1, errors)
                for header in errors:
                    self.assertIs(header["fatal"], True, header)
                for header in others:  # only a reply to a real hello
                    self.assertEqual((kind, header["type"]), (3, "hello"), header)
                conn.close()
        self.assert_served()
        rss_after = proc_status(self.pid, "VmRSS")
        self.assertLess(rss_after - rss_before, RSS_GROWTH_LIMIT_KIB,
                        f"VmRSS grew from {rss_before} to {rss_after} KiB")


class VanishingClientTest(harness.DaemonTestCase):
    """Clients that disappear at the worst moments leave nothing behind."""

    MID_FRAME = 1500
    MID_JOB = 500
    MID_RESULT = 64
    RESULT_BYTES = 8 * 1024 * 1024
    THREADS = 8

    def baseline(self):
        status = self.client.status(timeout=WAIT)
        return {
            "fds": fd_count(self.pid),
            "threads": thread_count(self.pid),
            "workers": len(status["workers"]),
            "leases": status["leases"]["active"],
            "connections": status["connections"],
        }

    def settled(self, base):
        status = self.client.status(timeout=WAIT)
        now = {
            "fds": fd_count(self.pid),
            "threads": thread_count(self.pid),
            "workers": len(status["workers"]),
            "leases": status["leases"]["active"],
            "connections": status["connections"],
        }
        busy = [w for w in status["workers"] if w["state"] != "idle"]
        self.last = (now, busy, status["queue_depth"])
        return (all(now[k] <= base[k] for k in base) and not busy
                and status["queue_depth"] == 0)

    def in_threads(self, count, attack):
        errors = []

        def loop(n):
            try:
                for i in range(n):
                    attack(i)
            except BaseException as exc:  # reported below, not lost
                errors.append(exc)

        share = count // self.THREADS
        threads = [threading.Thread(target=loop, args=(share,))
                   for _ in range(self.THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def connect_hello(self, fds=False):
        conn = harness.RawConnection(self.daemon.socket_path, timeout=WAIT)
        conn.send_bytes(frame(dict(HELLO, fds=fds)))
        return conn

    def test_disconnects_leak_nothing(self):
        self.pid = self.daemon.process.pid
        self.client.run(jobs.add, 1, 1)  # everything warmed up
        base = self.baseline()
        submitted = self.client.status(timeout=WAIT)["totals"]["submitted"]
        rss_before = proc_status(self.pid, "VmRSS")
        run = frame({"type": "run", "id": 2},
                    pickle.dumps((jobs.sleep, (0.01,), {}), protocol=5))

        def mid_frame(i):
            conn = self.connect_hello()
            conn.send_bytes(run[:16 + i % (len(run) - 16)])
            conn.close()

        def mid_job(i):
            conn = self.connect_hello()
            conn.send_bytes(run)
            if i % 2:
                time.sleep(0.005)  # sometimes running, sometimes queued
            conn.close()

        big = pickle.dumps((jobs.make_bytes, (self.RESULT_BYTES,), {}), protocol=5)

        def mid_result(i):
            conn = harness.RawConnection(self.daemon.socket_path, timeout=WAIT)
            conn.hello()  # read whole: the next byte is the result's
            conn.send_bytes(frame({"type": "run", "id": 2}, big))
            conn.sock.recv(1)  # the reply has started; never read the rest
            conn.close()

        self.in_threads(self.MID_FRAME, mid_frame)
        self.in_threads(self.MID_JOB, mid_job)
        self.in_threads(self.MID_RESULT, mid_result)
        self.last = None
        try:
            harness.wait_until(lambda: self.settled(base), timeout=60,
                               message="fds, threads, workers back to baseline")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: baseline {base}, now {self.last}")
        rss_after = proc_status(self.pid, "VmRSS")
        self.assertLess(rss_after - rss_before, RSS_GROWTH_LIMIT_KIB,
                        f"VmRSS grew from {rss_before} to {rss_after} KiB")
        # Every mid-result client really had a job read (its reply started).
        totals = self.client.status(timeout=WAIT)["totals"]
        self.assertGreaterEqual(totals["submitted"] - submitted, self.MID_RESULT, totals)
        with self.daemon.client() as fresh:
            self.assertEqual(fresh.run(jobs.add, 40, 2, timeout=WAIT), 42)


if __name__ == "__main__":
    unittest.main()
