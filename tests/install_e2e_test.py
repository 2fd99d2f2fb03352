"""``pip install ./client/python`` works offline, and the installed package
talks to the real daemon."""

import os
import subprocess
import sys
import unittest

import harness


def _client_source_dir():
    """client/python in the runfiles (or the source tree outside Bazel)."""
    srcdir = os.environ.get("TEST_SRCDIR")
    if srcdir:
        return os.path.join(srcdir, "extrainterpreters", "client", "python")
    return harness.CLIENT_DIR


_PROGRAM = """
import importlib.metadata, operator, sys
import extrainterpreters
assert extrainterpreters.__file__.startswith(sys.prefix), extrainterpreters.__file__
assert importlib.metadata.version("extrainterpreters") == extrainterpreters.__version__
print(extrainterpreters.run(operator.mul, 6, 7))
"""


class InstallTest(harness.DaemonTestCase):

    def _venv(self):
        venv = os.path.join(self.tmp_path(), "venv")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        return os.path.join(venv, "bin", "python")

    def _run(self, python, *args):
        env = dict(os.environ, EXTRAINTERPRETERS_SOCKET=self.daemon.socket_path)
        env.pop("PYTHONPATH", None)  # only what pip installed may be found
        return subprocess.run([python, *args], env=env, capture_output=True,
                              text=True, timeout=300)

    def test_pip_install_offline_then_run_a_job(self):
        python = self._venv()
        installed = self._run(python, "-m", "pip", "install", "--no-index",
                              "--no-cache-dir", "--quiet", _client_source_dir())
        self.assertEqual(installed.returncode, 0, installed.stderr)
        ran = self._run(python, "-c", _PROGRAM)
        self.assertEqual(ran.returncode, 0, ran.stderr)
        self.assertEqual(ran.stdout.strip(), "42")


class SystemPythonInstallTest(harness.DaemonTestCase):
    """Debian's Python 3.11, as deploy/install.sh uses it, takes the client."""

    SYSTEM_PYTHON = "/usr/bin/python3"

    def test_pip_install_into_the_system_python(self):
        if not os.path.exists(self.SYSTEM_PYTHON):
            self.skipTest(f"{self.SYSTEM_PYTHON} is not installed")
        env = dict(os.environ, EXTRAINTERPRETERS_SOCKET=self.daemon.socket_path)
        env.pop("PYTHONPATH", None)
        target = self.tmp_path()
        installed = subprocess.run(
            [self.SYSTEM_PYTHON, "-m", "pip", "install", "--quiet", "--no-index",
             "--no-deps", "--no-build-isolation", "--target", target,
             _client_source_dir()],
            env=env, capture_output=True, text=True, timeout=300)
        if "No module named pip" in installed.stderr:
            self.skipTest(f"{self.SYSTEM_PYTHON} has no pip")
        self.assertEqual(installed.returncode, 0, installed.stderr)
        ran = subprocess.run(
            [self.SYSTEM_PYTHON, "-c",
             "import operator, extrainterpreters; "
             "print(extrainterpreters.run(operator.mul, 6, 7))"],
            env=dict(env, PYTHONPATH=target), capture_output=True, text=True,
            timeout=120)
        self.assertEqual(ran.returncode, 0, ran.stderr)
        self.assertEqual(ran.stdout.strip(), "42")


if __name__ == "__main__":
    unittest.main()
