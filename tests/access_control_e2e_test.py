"""End-to-end tests of the daemon's SO_PEERCRED access check.

Two throwaway users are made with ``useradd``: one in a group the daemon
allows (as a supplementary group only), one in none. Their clients run
through ``setpriv`` with the system ``python3`` (the test's own Python
and the client package may live where other users cannot read), speaking
the wire protocol directly. The socket's file mode is opened to everyone,
so only the daemon's own check stands between them and a job. Skipped with
the reason when the sandbox does not allow making users.
"""

import json
import os
import shutil
import subprocess
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"

# Sends hello and a run whose job would create `marker` if it were ever
# unpickled, then prints the reply headers (at most 2) as a JSON list, or
# the socket error that ended the connection.
CLIENT = r"""
import json, socket, struct, sys
path, marker, name = sys.argv[1:4]
def frame(header, payload=b""):
    head = json.dumps(header).encode()
    return (b"EIPC" + bytes([1, 0, 0, 0]) + struct.pack(">II", len(head), len(payload)) +
            head + payload)
job = ("(cos\nmkdir\n(V%s\nt}t." % marker).encode()  # os.mkdir(marker)
s = socket.socket(socket.AF_UNIX)
s.connect(path)
try:
    s.sendall(frame({"type": "hello", "id": 1, "protocol": 1, "client": name}) +
              frame({"type": "run", "id": 2}, job))
except BrokenPipeError:
    pass  # refused and closed already; its error frame is still to be read
data, headers = b"", []
try:
    while len(headers) < 2:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        while len(data) >= 16:
            head, body = struct.unpack(">II", data[8:16])
            if len(data) < 16 + head + body:
                break
            headers.append(json.loads(data[16:16 + head]))
            data = data[16 + head + body:]
except OSError as exc:
    headers.append({"socket_error": str(exc)})
print(json.dumps(headers))
"""


def run(command):
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


class AccessControlTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("making test users needs root")
        # Bazel's test PATH leaves out the sbin directories.
        os.environ["PATH"] += os.pathsep + "/usr/sbin:/sbin"
        for tool in ("useradd", "groupadd", "userdel", "groupdel", "setpriv"):
            if shutil.which(tool) is None:
                raise unittest.SkipTest(f"{tool} is not installed")
        if not os.access(SYSTEM_PYTHON, os.X_OK):
            raise unittest.SkipTest(f"{SYSTEM_PYTHON} is missing")
        tag = uuid.uuid4().hex[:6]
        cls.group = f"eitg{tag}"
        cls.allowed = f"eita{tag}"
        cls.denied = f"eitd{tag}"
        made = run(["groupadd", cls.group])
        if made.returncode != 0:
            raise unittest.SkipTest(f"cannot make a test group here: {made.stderr.strip()}")
        cls.addClassCleanup(run, ["groupdel", cls.group])
        for user, groups in ((cls.allowed, ["-G", cls.group]), (cls.denied, [])):
            made = run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        *groups, user])
            if made.returncode != 0:
                raise unittest.SkipTest(f"cannot make a test user here: {made.stderr.strip()}")
            cls.addClassCleanup(run, ["userdel", user])
        cls.daemon = harness.Daemon(workers=1, extra_args=["--allow-groups", cls.group])
        cls.addClassCleanup(cls.daemon.stop)
        cls.daemon.start()
        # The file mode lets anyone connect: the daemon's check must hold.
        os.chmod(cls.daemon.tmpdir, 0o755)
        os.chmod(cls.daemon.socket_path, 0o666)

    def connect_as(self, user):
        """Runs CLIENT as `user` with their own groups; returns its replies."""
        marker = os.path.join(self.daemon.tmpdir, f"marker-{uuid.uuid4().hex}")
        result = run(["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
                      SYSTEM_PYTHON, "-c", CLIENT, self.daemon.socket_path, marker,
                      f"access-test-{user}"])
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout), marker

    def test_a_user_not_allowed_is_refused_before_the_job_is_read(self):
        replies, marker = self.connect_as(self.denied)
        # The error frame, then EOF or a reset (the unread job is discarded).
        self.assertTrue(all("socket_error" in r for r in replies[1:]), replies)
        reply = replies[0]
        self.assertEqual(reply["type"], "error", reply)
        self.assertEqual(reply["code"], "access_denied")
        self.assertIsNone(reply["id"])
        self.assertTrue(reply["fatal"])
        self.assertTrue(reply["message"].startswith(
            f"access denied: uid {self.uid(self.denied)} ({self.denied}) is not "
            "allowed to use this daemon"), reply["message"])
        self.assertFalse(os.path.exists(marker), "the refused client's job ran")
        log = harness.wait_until(
            lambda: "access denied: connection" in self.daemon.log() and self.daemon.log(),
            10, "the refusal in the log")
        self.assertRegex(log, rf"access denied: connection \d+ from uid "
                              rf"{self.uid(self.denied)} \({self.denied}\) pid \d+")
        self.assertNotIn(f"access-test-{self.denied}", log, "the refused client's hello was read")

    def test_a_member_of_an_allowed_group_gets_in(self):
        replies, marker = self.connect_as(self.allowed)
        self.assertEqual([r["type"] for r in replies], ["hello", "result"], replies)
        self.assertTrue(os.path.exists(marker), "the allowed client's job did not run")

    def test_the_daemons_own_user_and_root_get_in(self):
        with self.daemon.client() as client:
            client.ping(timeout=10)
            self.assertEqual(client.status(timeout=10)["state"], "ready")

    @staticmethod
    def uid(user):
        import pwd
        return pwd.getpwnam(user).pw_uid


if __name__ == "__main__":
    unittest.main()
