"""Every Python example in README.md runs, as written, against the real
daemon (each in its own process, as a user would paste it into a file)."""

import os
import re
import subprocess
import sys
import unittest

import harness


def _readme_path():
    srcdir = os.environ.get("TEST_SRCDIR")
    if srcdir:
        return os.path.join(srcdir, "extrainterpreters", "README.md")
    return os.path.join(os.path.dirname(harness.TESTS_DIR), "README.md")


def python_examples():
    """(line number, code) of each ```python block in README.md."""
    with open(_readme_path(), encoding="utf-8") as f:
        text = f.read()
    for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        yield text.count("\n", 0, match.start()) + 1, match.group(1)


class ReadmeExamplesTest(harness.DaemonTestCase):
    # numpy for the examples of the process lane, as a user has it
    # installed: the daemon sees it through --python-path.
    SITE = harness.test_site_packages()
    daemon_args = ("--python-path", f"{harness.TESTS_DIR}:{SITE}")

    def test_every_python_example_runs(self):
        examples = list(python_examples())
        self.assertGreaterEqual(len(examples), 5, "README lost its examples")
        env = dict(os.environ, EXTRAINTERPRETERS_SOCKET=self.daemon.socket_path,
                   PYTHONPATH=os.pathsep.join([harness.client_pythonpath(),
                                               self.SITE]))
        for line, code in examples:
            with self.subTest(readme_line=line):
                ran = subprocess.run([sys.executable, "-c", code], env=env,
                                     capture_output=True, text=True, timeout=120)
                self.assertEqual(ran.returncode, 0,
                                 f"README.md line {line}:\n{code}\n{ran.stderr}")
                self.assertTrue(ran.stdout.strip(), f"line {line} printed nothing")


if __name__ == "__main__":
    unittest.main()
