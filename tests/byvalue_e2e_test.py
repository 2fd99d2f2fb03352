"""End-to-end tests of functions shipped by value, through the real daemon.

Functions and classes of ``byvalue_cases.user_module()`` (a stand-in for a
script's ``__main__``, which the daemon cannot import) travel as definitions;
the REPL test types them at a real interactive prompt under a pseudo-terminal.
"""

import asyncio
import os
import subprocess
import sys
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import byvalue_cases  # noqa: E402
import harness  # noqa: E402
import jobs  # noqa: E402
import repl  # noqa: E402

import extrainterpreters  # noqa: E402
from extrainterpreters import RemoteError, _byvalue  # noqa: E402

OLD_PYTHON = "/usr/bin/python3.11"


class ByValueTest(harness.DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.user = byvalue_cases.user_module()

    def test_lambda(self):
        self.assertEqual(self.client.run(lambda x: x * 2, 21), 42)

    def test_closure_and_nested_function(self):
        self.assertEqual(self.client.run(self.user.make_adder(5), 1), 6)
        self.assertEqual(self.client.run(self.user.make_counter(), 9), 9)

    def test_recursive_function(self):
        self.assertEqual(self.client.run(self.user.fact, 20), 2432902008176640000)

    def test_mutually_recursive_helpers(self):
        self.assertEqual([self.client.run(self.user.is_even, n) for n in (10, 7)],
                         [True, False])

    def test_defaults_and_keyword_only_arguments(self):
        self.assertEqual(self.client.run(self.user.with_defaults, 1), (1, 2, 3, {}))
        self.assertEqual(self.client.run(self.user.with_defaults, 1, 5, c=6, d=7),
                         (1, 5, 6, {"d": 7}))

    def test_module_constant_and_imported_module(self):
        self.assertEqual(self.client.run(self.user.scaled_sqrt, 16.0), 12.0)

    def test_class_as_argument_and_result(self):
        point = self.user.Point(1, 2)
        moved = self.client.run(self.user.move, point, 3)
        self.assertIs(type(moved), self.user.Point)  # the client's own class
        self.assertEqual(moved, self.user.Point(4, 2))
        self.assertEqual(self.client.run(lambda p: p.scaled(), point),
                         self.user.Point(3, 6))
        sub = self.client.run(lambda p: p, self.user.Point3(1, 2, 3))
        self.assertIs(type(sub), self.user.Point3)
        self.assertEqual(vars(sub), {"x": 1, "y": 2, "z": 3})

    def test_dataclasses_enums_and_decorated_functions(self):
        for name, expected in self.user.EXPECTED_CHECKS.items():
            with self.subTest(name):
                self.assertEqual(self.client.run(getattr(self.user, name)),
                                 expected)
        self.assertIs(self.client.run(lambda c: c, self.user.Color.RED),
                      self.user.Color.RED)
        self.assertEqual(self.client.run(lambda i: i, self.user.Item("a")),
                         self.user.Item("a"))

    def test_importable_functions_go_by_reference(self):
        self.assertEqual(_byvalue.dump_job(jobs.add, (1, 2), {}).definitions, ())
        sent = byvalue_cases.record_requests(self, self.client)
        self.assertEqual(self.client.run(jobs.add, 1, 2), 3)
        self.assertEqual(sent, ["run"])

    def test_second_call_sends_no_definition(self):
        sent = byvalue_cases.record_requests(self, self.client)
        fn = self.user.make_adder(1)
        self.assertEqual(self.client.run(fn, 1), 2)
        self.assertEqual(sent.count("define"), 2)  # add, and helper
        del sent[:]
        self.assertEqual(self.client.run(fn, 2), 3)
        with extrainterpreters.Interpreter(client=self.client) as interp:
            self.assertEqual(interp.run(fn, 3), 4)  # same connection
        self.assertEqual(sent.count("define"), 0)

    def test_changed_global_is_sent_again(self):
        sent = byvalue_cases.record_requests(self, self.client)
        self.assertEqual(self.client.run(self.user.helper, 2), 6)
        self.user.SCALE = 10
        del sent[:]
        self.assertEqual(self.client.run(self.user.helper, 2), 20)
        self.assertEqual(sent, ["define", "run"])

    def test_module_state_between_functions_on_a_lease(self):
        with extrainterpreters.Interpreter(client=self.client) as interp:
            interp.run(self.user.set_state, {"set": "remotely"})
            self.assertEqual(interp.run(self.user.get_state), {"set": "remotely"})
        self.assertIsNone(self.user.STATE)

    def test_many_threads_share_definitions(self):
        fn = self.user.make_adder(100)
        futures = [self.client.submit(fn, n) for n in range(50)]
        self.assertEqual([f.result() for f in futures],
                         [n + 100 for n in range(50)])

    @unittest.skipUnless(hasattr(extrainterpreters, "AsyncClient"),
                         "no AsyncClient")
    def test_async_client(self):
        adder = self.user.make_adder(2)

        async def main():
            async with extrainterpreters.AsyncClient(
                    self.daemon.socket_path) as client:
                sent = byvalue_cases.record_requests(self, client)
                results = [await client.run(adder, 1),
                           await client.run(adder, 2),
                           await client.run(lambda p: p.scaled(),
                                            self.user.Point(1, 1))]
                return results, sent

        results, sent = asyncio.run(main())
        self.assertEqual(results, [3, 4, self.user.Point(3, 3)])
        self.assertEqual(sent.count("define"), 4)  # add, helper; <lambda>, Point

    def test_version_mismatch_is_refused_at_submit(self):
        major, minor = sys.version_info[:2]
        other = f"{major}.{minor + 1}.0"
        with mock.patch.dict(self.client._hello, {"python": other}):
            with self.assertRaises(_byvalue.VersionMismatch) as cm:
                self.client.submit(self.user.fact, 3)
            self.assertEqual(self.client.run(jobs.add, 1, 2), 3)
        message = str(cm.exception)
        self.assertIn(f"cannot ship fact by value: this client runs Python "
                      f"{major}.{minor} and the daemon runs {major}.{minor + 1}",
                      message)
        self.assertIsInstance(cm.exception, extrainterpreters.ExtraInterpretersError)

    @unittest.skipUnless(os.path.exists(OLD_PYTHON), f"no {OLD_PYTHON}")
    def test_older_python_client(self):
        script = (
            "import sys, extrainterpreters, jobs\n"
            "client = extrainterpreters.Client(sys.argv[1])\n"
            "print('add', client.run(jobs.add, 2, 3))\n"
            "try:\n"
            "    client.run(lambda: 1)\n"
            "except extrainterpreters.ExtraInterpretersError as exc:\n"
            "    print('refused:', exc)\n")
        env = dict(os.environ, PYTHONPATH=harness.client_pythonpath())
        done = subprocess.run([OLD_PYTHON, "-c", script, self.daemon.socket_path],
                              env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("add 5", done.stdout)
        daemon = ".".join(self.client.hello["python"].split(".")[:2])
        self.assertIn(f"this client runs Python 3.11 and the daemon runs {daemon}",
                      done.stdout)


class PerCallPartsTest(harness.DaemonTestCase):
    """Closures and default arguments made in a loop share one definition.

    The daemon accepts only 16 definitions per connection here, so one
    definition per call would fail with ``define_limit`` long before the end.
    """

    daemon_args = ("--max-definitions", "16")
    COUNT = 10_000

    def setUp(self):
        super().setUp()
        self.user = byvalue_cases.user_module()
        self.expected = [i * 3 for i in range(self.COUNT)]

    def test_ten_thousand_lambdas_through_one_client(self):
        sent = byvalue_cases.record_requests(self, self.client)
        for fns in (self.user.default_lambdas(self.COUNT),
                    self.user.closures(self.COUNT)):
            futures = [self.client.submit(fn) for fn in fns]
            self.assertEqual([f.result() for f in futures], self.expected)
        self.assertLessEqual(sent.count("define"), 3)  # 2 lambdas, work

    def test_ten_thousand_closures_through_the_executor(self):
        with extrainterpreters.InterpreterPoolExecutor(
                max_workers=2, socket_path=self.daemon.socket_path) as pool:
            sent = byvalue_cases.record_requests(self, pool.client)
            closures = self.user.closures(self.COUNT)
            self.assertEqual(list(pool.map(self.user.apply, closures)),
                             self.expected)
            futures = [pool.submit(fn)
                       for fn in self.user.default_lambdas(self.COUNT)]
            self.assertEqual([f.result() for f in futures], self.expected)
        # apply, make_worker.<locals>.<lambda>, work, default_lambdas' lambda
        self.assertLessEqual(sent.count("define"), 4)

    def test_closures_over_mutable_cells(self):
        get, put = self.user.make_box([1])
        self.assertEqual(self.client.run(lambda g, p: (p(5), g()), get, put),
                         (5, 5))
        sent = byvalue_cases.record_requests(self, self.client)
        self.assertEqual(self.client.run(get), [1])
        get()[0] = 2
        self.assertEqual(self.client.run(get), [2])
        put("rebound")
        self.assertEqual(self.client.run(get), "rebound")
        self.assertEqual(sent.count("define"), 0)

    def test_recursive_closures(self):
        sent = byvalue_cases.record_requests(self, self.client)
        counters = [self.user.make_counter() for _ in range(20)]
        self.assertEqual([self.client.run(fn, n) for n, fn in
                          enumerate(counters)], list(range(20)))
        self.assertEqual(sent.count("define"), 1)
        self.assertEqual(self.client.run(self.user.make_ping_pong(), 5), "pong")

    def test_one_function_twice_in_a_job_is_one_object(self):
        adder = self.user.make_adder(1)
        self.assertTrue(self.client.run(lambda a, b: a is b, adder, adder))


class RefusedDefinitionTest(harness.DaemonTestCase):
    daemon_args = ("--max-definitions", "1")

    def test_refused_definition_fails_the_job(self):
        user = byvalue_cases.user_module()
        with self.assertRaisesRegex(RemoteError, "refused the definition") as cm:
            self.client.run(user.make_adder(1), 1)
        self.assertEqual(cm.exception.code, "define_limit")
        self.assertEqual(self.client.run(jobs.add, 1, 2), 3)  # still usable


class ReplTest(harness.DaemonTestCase):
    """Types functions at an interactive ``python -i`` prompt and runs them."""

    def test_functions_typed_at_the_prompt(self):
        lines = [
            "import extrainterpreters",
            f"client = extrainterpreters.Client({self.daemon.socket_path!r})",
            "def cube(x): return x ** 3",
            "",
            "square = lambda x: x * x",
            "print('R1', client.run(cube, 3))",
            "print('R2', client.submit(square, 12).result())",
            "interp = extrainterpreters.Interpreter(client=client)",
            "print('R3', interp.run(cube, 4), interp.run(square, 5))",
        ]
        expected = ["R1 27", "R2 144", "R3 64 25"]
        if hasattr(extrainterpreters, "InterpreterPoolExecutor"):
            lines.append(
                "pool = extrainterpreters.InterpreterPoolExecutor("
                f"max_workers=2, socket_path={self.daemon.socket_path!r})")
            lines.append("print('R4', list(pool.map(square, range(5))), "
                         "pool.submit(cube, 5).result())")
            expected.append("R4 [0, 1, 4, 9, 16] 125")
        output = repl.run_repl(self, lines, expected)
        for text in expected:
            self.assertIn(text, output)


if __name__ == "__main__":
    unittest.main()
