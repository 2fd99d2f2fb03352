"""The client on the system's older Python (Debian's /usr/bin/python3) talks
to a daemon that embeds a newer one: jobs that name importable functions
run, through Client, InterpreterPoolExecutor and AsyncClient."""

import os
import subprocess
import sys
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"

SCRIPT = textwrap.dedent("""
    import asyncio, sys
    import extrainterpreters, jobs

    path = sys.argv[1]
    with extrainterpreters.Client(path) as client:
        print("run", client.run(jobs.add, 2, 3))
        print("raised", type(client.submit(jobs.divide, 1, 0).exception())
              .__name__)
    with extrainterpreters.InterpreterPoolExecutor(
            1, socket_path=path) as executor:
        print("map", list(executor.map(jobs.add, [1, 2], [10, 20])))

    async def main():
        async with extrainterpreters.AsyncClient(path) as client:
            return await client.run(jobs.add, 4, 5)
    print("aio", asyncio.run(main()))
    print("python", "%d.%d" % sys.version_info[:2])
""")


def _version(python):
    """``"3.11"`` for a Python 3.11 executable."""
    out = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip()


class OldPythonTest(harness.DaemonTestCase):

    workers = 1

    def setUp(self):
        super().setUp()
        if not os.path.exists(SYSTEM_PYTHON):
            self.skipTest(f"{SYSTEM_PYTHON} is not installed")
        version = _version(SYSTEM_PYTHON)
        if version == "%d.%d" % sys.version_info[:2]:
            self.skipTest(f"{SYSTEM_PYTHON} is Python {version}, the same "
                          f"minor version as this test's Python")
        self.version = version

    def test_client_runs_importable_jobs(self):
        env = dict(os.environ, PYTHONPATH=harness.client_pythonpath(),
                   PYTHONDONTWRITEBYTECODE="1")
        result = subprocess.run(
            [SYSTEM_PYTHON, "-c", SCRIPT, self.daemon.socket_path],
            capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), [
            "run 5",
            "raised ZeroDivisionError",
            "map [11, 22]",
            "aio 9",
            f"python {self.version}",
        ])
        daemon_minor = ".".join(self.client.hello["python"].split(".")[:2])
        self.assertNotEqual(self.version, daemon_minor)


if __name__ == "__main__":
    unittest.main()
