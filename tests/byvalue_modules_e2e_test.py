"""The user's own modules travel by value, through the real daemon.

A project of a script, a sibling module and a package (``byvalue_project``)
runs as ``python script.py`` from its folder and from elsewhere, and at a
REPL, against a daemon started with no flag naming it: the client sees
that the daemon's ``sys.path`` (in its ``hello``) does not lead to those
files, and ships them. Edited modules arrive edited; two clients with a
``helpers`` of their own each get theirs; ``ship_by_value`` and
``ship_by_reference`` override the choice.
"""

import os
import subprocess
import sys
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import byvalue_cases  # noqa: E402
import byvalue_project  # noqa: E402
import harness  # noqa: E402
import repl  # noqa: E402

import extrainterpreters  # noqa: E402

TIMEOUT = 120
# Where the client package is: the only entry these programs add to sys.path.
CLIENT_PATH = os.path.dirname(os.path.dirname(os.path.abspath(
    extrainterpreters.__file__)))


def client_env(socket_path):
    """The environment of a user's program: the client package, the socket."""
    return dict(os.environ, PYTHONPATH=CLIENT_PATH, PYTHONDONTWRITEBYTECODE="1",
                EXTRAINTERPRETERS_SOCKET=socket_path)


class ProjectTest(harness.DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.project = byvalue_project.write_project(self.tmp_path())

    def run_python(self, args, cwd, socket_path=None):
        """Runs this Python on ``args`` with only the client package on
        its path; returns its stdout, failing the test if it failed."""
        env = client_env(socket_path or self.daemon.socket_path)
        done = subprocess.run([sys.executable, *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(done.returncode, 0,
                         f"{args} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def assert_every_call_ran(self, output):
        self.assertEqual([line for line in output.splitlines()
                          if line.startswith("R")], byvalue_project.EXPECTED)

    def test_the_daemon_does_not_have_the_project_on_its_path(self):
        sys_path = self.client.hello["sys_path"]
        self.assertEqual(sys_path[0], harness.TESTS_DIR)  # --python-path first
        self.assertNotIn(self.project, sys_path)
        self.assertIn(os.path.dirname(os.__file__), sys_path)

    def test_script_run_from_its_folder(self):
        self.assert_every_call_ran(self.run_python(["script.py"], self.project))

    def test_script_run_from_elsewhere(self):
        script = os.path.join(self.project, "script.py")
        self.assert_every_call_ran(self.run_python([script], "/"))

    def test_a_module_is_sent_once_per_connection(self):
        sys.path.insert(0, self.project)
        self.addCleanup(sys.path.remove, self.project)
        for name in ("helpers", "shop", "shop.prices"):
            self.addCleanup(sys.modules.pop, name, None)
        import helpers
        sent = byvalue_cases.record_requests(self, self.client)
        self.assertEqual(self.client.run(helpers.price_of, "apple"), 3)
        self.assertIn("define", sent)
        del sent[:]
        self.assertEqual([self.client.run(helpers.price_of, "pear")
                          for _ in range(3)], [5, 5, 5])
        self.assertEqual(sent, ["run"] * 3)

    def test_package_module_run_with_dash_m(self):
        output = self.run_python(["-m", "shop.cli"], self.project)
        self.assertEqual(output.strip(), "R apple")

    def test_typed_at_a_repl_in_the_project_folder(self):
        lines = [f"import os; os.environ['EXTRAINTERPRETERS_SOCKET'] = "
                 f"{self.daemon.socket_path!r}"] + byvalue_project.REPL_LINES
        output = repl.run_repl(self, lines, byvalue_project.EXPECTED,
                               cwd=self.project, pythonpath=CLIENT_PATH)
        for line in byvalue_project.EXPECTED:
            self.assertIn(line, output)

    def test_edited_module_reaches_the_daemon_as_edited(self):
        # One client: the module is edited and reloaded between two runs.
        script = textwrap.dedent("""
            import importlib, extrainterpreters
            def write(version):
                with open("edited.py", "w") as f:
                    f.write(f"VERSION = {version!r}\\n"
                            f"def which():\\n    return '{version}', VERSION\\n")
            write("one")
            import edited
            print("R1", extrainterpreters.run(edited.which))
            write("two, edited")
            importlib.reload(edited)
            print("R2", extrainterpreters.run(edited.which))
            """)
        output = self.run_python(["-c", script], self.project)
        self.assertIn("R1 ('one', 'one')", output)
        self.assertIn("R2 ('two, edited', 'two, edited')", output)
        # Two runs of one script, the file edited in between: the daemon's
        # interpreters still hold the first run's definitions.
        self.run_python(["script.py"], self.project)
        path = os.path.join(self.project, "helpers.py")
        with open(path) as file:
            text = file.read()
        with open(path, "w") as file:
            file.write(text.replace("FACTOR = 3", "FACTOR = 10"))
        output = self.run_python(["script.py"], self.project)
        self.assertIn("R1 50", output)

    def test_two_clients_each_get_their_own_helpers(self):
        # One interpreter runs the jobs of both, in turns; each job must see
        # its own client's helpers in sys.modules.
        daemon = self.start_daemon(workers=1)
        other = byvalue_project.write_project(self.tmp_path())
        with open(os.path.join(other, "helpers.py"), "a") as file:
            file.write("\ndef triple(x):\n    return -x\n")
        script = ("import extrainterpreters, helpers\n"
                  "def in_job(x):\n"
                  "    import helpers\n"
                  "    return helpers.triple(x)\n"
                  "print('R', [extrainterpreters.run(in_job, 2)"
                  " for _ in range(20)])\n")
        mine = subprocess.Popen([sys.executable, "-c", script], cwd=self.project,
                                env=client_env(daemon.socket_path),
                                stdout=subprocess.PIPE, text=True)
        theirs = self.run_python(["-c", script], other, daemon.socket_path)
        self.assertEqual(mine.communicate(timeout=TIMEOUT)[0].strip(),
                         "R " + str([6] * 20))
        self.assertEqual(theirs.strip(), "R " + str([-2] * 20))


class OverrideTest(harness.DaemonTestCase):
    """A module the daemon imports from its own ``--python-path`` (a twin
    of the client's, or the very same file) and the two overrides."""

    workers = 1

    def setUp(self):
        super().setUp()
        self.daemon_dir, self.client_dir = self.tmp_path(), self.tmp_path()
        for folder, whose in ((self.daemon_dir, "daemon"),
                              (self.client_dir, "client")):
            with open(os.path.join(folder, "ei_twin.py"), "w") as file:
                file.write(f"def whose():\n    return {whose!r}\n")
        with open(os.path.join(self.daemon_dir, "ei_shared.py"), "w") as file:
            file.write("VALUE = 'as imported'\n"
                       "def value():\n    return VALUE\n")
        self.twin_daemon = self.start_daemon(
            extra_args=["--python-path", self.daemon_dir])

    def run_script(self, body):
        script = textwrap.dedent(f"""
            import sys, extrainterpreters
            sys.path[:0] = [{self.client_dir!r}, {self.daemon_dir!r}]
            client = extrainterpreters.Client({self.twin_daemon.socket_path!r})
            """) + textwrap.dedent(body)
        env = client_env(self.twin_daemon.socket_path)
        done = subprocess.run([sys.executable, "-c", script], env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout.split()

    def test_a_twin_goes_by_value_unless_shipped_by_reference(self):
        self.assertEqual(self.run_script("""
            import ei_twin
            print(client.run(ei_twin.whose))
            extrainterpreters.ship_by_reference(ei_twin)
            print(client.run(ei_twin.whose))
            """), ["client", "daemon"])

    def test_the_daemons_own_file_goes_by_name_unless_shipped_by_value(self):
        self.assertEqual(self.run_script("""
            import ei_shared
            ei_shared.VALUE = 'set in the client'
            print(client.run(ei_shared.value).replace(' ', '_'))
            extrainterpreters.ship_by_value("ei_shared")
            print(client.run(ei_shared.value).replace(' ', '_'))
            """), ["as_imported", "set_in_the_client"])


if __name__ == "__main__":
    unittest.main()
