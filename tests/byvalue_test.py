"""Unit tests of shipping functions by value, without a daemon.

Jobs are pickled by the client's ``_byvalue`` and unpickled in this process
by the daemon's own loader (``_function_loader.py``), which rebuilds every
function and class from its definition blob (new objects, own globals), as
a daemon interpreter does.
"""

import math
import os
import pickle
import sys
import threading
import unittest
import uuid
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import byvalue_cases  # noqa: E402
import harness  # noqa: E402,F401  (makes the client importable)

from extrainterpreters import _batch, _byvalue, _byvalue_code  # noqa: E402

loader = byvalue_cases.load_function_loader()


def load(job):
    """Unpickles a Job as the daemon does; returns (fn, args, kwargs)."""
    defs = {d.digest: d.blob for d in job.definitions} or None
    return loader.loads(memoryview(job.payload), defs)


def call(fn, *args, **kwargs):
    """Round-trips ``fn(*args, **kwargs)`` and calls the rebuilt function."""
    fn, args, kwargs = load(_byvalue.dump_job(fn, args, kwargs))
    return fn(*args, **kwargs)


def fresh_function():
    """A function no earlier test shipped (its code has a unique constant)."""
    return eval(f"lambda: {uuid.uuid4().int}")


class RoundTripTest(unittest.TestCase):

    def setUp(self):
        self.user = byvalue_cases.user_module()

    def test_lambda(self):
        self.assertEqual(call(lambda x: x * 2, 21), 42)

    def test_closure(self):
        self.assertEqual(call(self.user.make_adder(5), 1), 6)

    def test_nested_recursive_closure(self):
        self.assertEqual(call(self.user.make_counter(), 7), 7)

    def test_recursive_function(self):
        self.assertEqual(call(self.user.fact, 10), math.factorial(10))

    def test_mutually_recursive_helpers_share_one_group(self):
        job = _byvalue.dump_job(self.user.is_even, (10,), {})
        names = [d.qualname for d in job.definitions]
        self.assertEqual(sum(n.startswith("cycle of") for n in names), 1, names)
        fn, args, _ = load(job)
        self.assertTrue(fn(*args))
        self.assertFalse(fn(7))

    def test_defaults_and_keyword_only_arguments(self):
        self.assertEqual(call(self.user.with_defaults, 1),
                         (1, 2, 3, {}))
        self.assertEqual(call(self.user.with_defaults, 1, 5, c=6, d=7),
                         (1, 5, 6, {"d": 7}))

    def test_module_constant_and_imported_module(self):
        self.assertEqual(call(self.user.scaled_sqrt, 16.0), 12.0)

    def test_class_as_argument_and_result(self):
        point = self.user.Point(1, 2)
        result = call(self.user.move, point, 3)
        self.assertIsNot(type(result), self.user.Point)  # rebuilt, not shared
        self.assertEqual(type(result).__qualname__, "Point")
        self.assertEqual((result.x, result.y), (4, 2))
        self.assertEqual(call(lambda p: p.scaled(), point),
                         self.user.Point(3, 6))
        self.assertEqual(call(lambda p: (p.total, p.origin().x), point), (3, 0))

    def test_subclass_using_super(self):
        result = call(lambda p: (p.z, p.scaled().x), self.user.Point3(1, 2, 3))
        self.assertEqual(result, (3, 3))

    def test_classes_in_one_job_are_one_class(self):
        point, point3 = self.user.Point(1, 1), self.user.Point3(1, 2, 3)
        self.assertTrue(call(lambda a, b: type(a) is type(b), point, point))
        self.assertTrue(call(lambda a, b: isinstance(b, type(a)), point, point3))

    def test_importable_functions_go_by_reference(self):
        job = _byvalue.dump_job(os.path.join, ("a", "b"), {})
        self.assertEqual(job.definitions, ())
        self.assertEqual(pickle.loads(job.payload), (os.path.join, ("a", "b"), {}))
        self.assertFalse(_byvalue.needs_value(os.path.join))
        self.assertFalse(_byvalue.needs_value(unittest.TestCase))
        self.assertTrue(_byvalue.needs_value(self.user.helper))
        self.assertTrue(_byvalue.needs_value(lambda: 0))


class PlainJobTest(unittest.TestCase):
    """Jobs that plain ``pickle`` writes (``_byvalue._plain_job``) are
    written exactly as the long way would, and only those."""

    def test_plain_jobs_pickle_as_the_long_way_would(self):
        cases = {
            "numbers": (os.path.join, ("a", "b"), {}),
            "a map chunk of items": (_batch.run_chunk,
                                     (abs, [-1] * 100, False), {}),
            "a function by reference as an argument": (
                _batch.run_chunk, (os.path.join, ["a"], False),
                {"unused": None}),
        }
        for name, (fn, args, kwargs) in cases.items():
            with self.subTest(name):
                self.assertTrue(_byvalue._plain_job(fn, args, kwargs, None))
                self.assertEqual(
                    _byvalue.dump_job(fn, args, kwargs).payload,
                    _byvalue.dump((fn, args, kwargs)).payload)

    def test_what_plain_pickle_cannot_write_takes_the_long_way(self):
        user = byvalue_cases.user_module()
        cases = {
            "a function by value as an argument": (user.helper, [1, 2]),
            "a lambda in a list": ([lambda: 0], [1]),
            "a list too long to look at": (abs, [-1] * (_byvalue._PLAIN_SCAN + 1)),
            "a dict too long to look at": (
                abs, dict.fromkeys(range(_byvalue._PLAIN_SCAN + 1), 0)),
            "an object in a chunk": (abs, [1, user.Point(1, 2)]),
            "a bound builtin method": ([].append, [1]),
            # Containers in containers are not looked into.
            "a map chunk of argument tuples": (os.path.join, [("a", "b")], True),
        }
        for name, args in cases.items():
            with self.subTest(name):
                self.assertFalse(_byvalue._plain_job(
                    _batch.run_chunk, args, {}, None))

    def test_a_function_argument_by_value_is_still_defined(self):
        user = byvalue_cases.user_module()
        job = _byvalue.dump_job(_batch.run_chunk, (user.helper, [1, 2], False),
                                {})
        self.assertIn("helper", [d.qualname for d in job.definitions])
        fn, args, kwargs = load(job)
        self.assertEqual(fn(*args, **kwargs),
                         ([user.helper(1), user.helper(2)], None))


class SpecialClassesTest(unittest.TestCase):
    """Dataclasses, enums, lru_cache, ABCs, __slots__, NamedTuple..."""

    def test_checks(self):
        user = byvalue_cases.user_module()
        for name, expected in user.EXPECTED_CHECKS.items():
            with self.subTest(name):
                self.assertEqual(call(getattr(user, name)), expected)

    def test_enum_and_dataclass_arguments(self):
        user = byvalue_cases.user_module()
        self.assertEqual(call(lambda c: c.lower(), user.Color.GREEN), "green")
        self.assertEqual(call(lambda i: i.tags, user.Item("a", [1])), [1])


class CacheTest(unittest.TestCase):

    def setUp(self):
        self.user = byvalue_cases.user_module()

    def test_second_pickling_reuses_the_definitions(self):
        fn = self.user.make_adder(1)
        first = _byvalue.dump_job(fn, (1,), {})
        with mock.patch.object(_byvalue_code.marshal, "dumps") as dumps:
            second = _byvalue.dump_job(fn, (2,), {})
        dumps.assert_not_called()
        self.assertEqual([id(d) for d in first.definitions],
                         [id(d) for d in second.definitions])

    def test_rebound_global_makes_a_new_digest(self):
        fn = self.user.helper
        before = _byvalue.dump_job(fn, (2,), {}).definitions[-1].digest
        self.user.SCALE = 4
        job = _byvalue.dump_job(fn, (2,), {})
        self.assertNotEqual(job.definitions[-1].digest, before)
        fn, args, _ = load(job)
        self.assertEqual(fn(*args), 8)

    def test_global_changed_back_is_assigned_again(self):
        # The first definition is cached in the loader when SCALE returns to
        # 3, while the shared namespace holds 10: it must be set back.
        user = byvalue_cases.user_module(f"ei_back_{uuid.uuid4().hex}")
        results = []
        for scale in (3, 10, 3):
            user.SCALE = scale
            results.append(call(user.helper, 2))
        self.assertEqual(results, [6, 20, 6])

    def test_mutated_global_makes_a_new_digest(self):
        namespace = {"__name__": "ei_mutable"}
        exec("ITEMS = [1]\ndef total():\n    return sum(ITEMS)\n", namespace)
        fn = namespace["total"]
        before = _byvalue.dump_job(fn, (), {}).definitions[-1].digest
        namespace["ITEMS"].append(2)
        job = _byvalue.dump_job(fn, (), {})
        self.assertNotEqual(job.definitions[-1].digest, before)
        self.assertEqual(load(job)[0](), 3)

    def test_changed_helper_changes_its_callers(self):
        adder = self.user.make_adder(1)
        before = _byvalue.dump_job(adder, (3,), {}).definitions[-1].digest
        exec("def helper(x):\n    return -1\n", self.user.__dict__)
        job = _byvalue.dump_job(adder, (3,), {})
        self.assertNotEqual(job.definitions[-1].digest, before)
        self.assertEqual(load(job)[0](3), 3)

    def test_loader_rebuilds_once_then_uses_its_cache(self):
        fn = fresh_function()
        job = _byvalue.dump_job(fn, (), {})
        first = load(job)[0]
        again = loader.loads(memoryview(job.payload), {})[0]  # no blobs needed
        self.assertIs(first, again)


class PerCallPartsTest(unittest.TestCase):
    """Cells and defaults travel with each job; the definition is shared."""

    def setUp(self):
        self.user = byvalue_cases.user_module(f"ei_parts_{uuid.uuid4().hex}")

    @staticmethod
    def digests(jobs):
        return {d.digest for job in jobs for d in job.definitions}

    def check_many(self, fns, expected):
        first = _byvalue.dump_job(fns[0], (), {})
        with mock.patch.object(_byvalue_code.marshal, "dumps") as dumps:
            jobs = [first] + [_byvalue.dump_job(fn, (), {}) for fn in fns[1:]]
        dumps.assert_not_called()  # every later one hit the memo
        names = sorted(d.qualname for d in first.definitions)
        self.assertEqual(len(self.digests(jobs)), len(names), names)
        self.assertEqual([load(job)[0]() for job in jobs], expected)

    def test_ten_thousand_default_arguments_share_one_definition(self):
        self.check_many(self.user.default_lambdas(10_000),
                        [i * 3 for i in range(10_000)])

    def test_ten_thousand_closures_over_a_loop_variable(self):
        self.check_many(self.user.closures(10_000),
                        [i * 3 for i in range(10_000)])

    def test_closure_and_default_of_a_local_lambda(self):
        work, k = self.user.work, 1
        fns = [lambda i=i: work(i) + k for i in range(100)]
        self.check_many(fns, [i * 3 + 1 for i in range(100)])

    def test_comprehension_closures_share_their_cell_as_locally(self):
        fns = [lambda: i for i in range(3)]  # noqa: B023 (late binding)
        self.assertEqual([call(fn) for fn in fns], [fn() for fn in fns])

    def test_each_job_gets_its_own_function(self):
        adders = [self.user.make_adder(k) for k in (1, 2)]
        loaded = [load(_byvalue.dump_job(fn, (), {}))[0] for fn in adders]
        self.assertIsNot(loaded[0], loaded[1])
        self.assertEqual([fn(10) for fn in loaded], [11, 12])

    def test_one_function_twice_in_a_job_is_one_object(self):
        adder = self.user.make_adder(1)
        self.assertTrue(call(lambda a, b: a is b, adder, adder))
        fn, args, _ = load(_byvalue.dump_job(adder, (adder,), {}))
        self.assertIs(fn, args[0])

    def test_closures_sharing_a_cell_share_it_in_a_job(self):
        get, put = self.user.make_box(1)
        self.assertEqual(call(lambda g, p: (p(5), g()), get, put), (5, 5))
        self.assertEqual(get(), 1)  # the client's cell is untouched

    def test_a_changed_cell_is_sent_without_a_new_definition(self):
        get, put = self.user.make_box([1])
        before = _byvalue.dump_job(get, (), {})
        self.assertEqual(load(before)[0](), [1])
        get()[0] = 2  # mutated
        self.assertEqual(call(get), [2])
        put("rebound")
        job = _byvalue.dump_job(get, (), {})
        self.assertEqual(self.digests([job]), self.digests([before]))
        self.assertEqual(load(job)[0](), "rebound")

    def test_a_global_closure_carries_its_cells(self):
        # read_box's blob holds BOX_GET's cell: a new value is a new digest.
        before = _byvalue.dump_job(self.user.read_box, (), {})
        self.assertEqual(load(before)[0](), "initial")
        self.user.BOX_PUT("changed")
        job = _byvalue.dump_job(self.user.read_box, (), {})
        self.assertNotEqual(job.definitions[-1].digest,
                            before.definitions[-1].digest)
        self.assertEqual(load(job)[0](), "changed")

    def test_recursive_closures(self):
        counters = [self.user.make_counter() for _ in range(3)]
        jobs = [_byvalue.dump_job(fn, (5,), {}) for fn in counters]
        self.assertEqual(len(self.digests(jobs)), 1)
        self.assertEqual([fn(*args) for fn, args, _ in map(load, jobs)],
                         [5, 5, 5])
        self.assertEqual(call(self.user.make_ping_pong(), 3), "pong")
        self.assertEqual(call(self.user.make_ping_pong(), 4), "ping")

    def test_defaults_that_are_not_atoms(self):
        fn = lambda me=None: me  # noqa: E731
        fn.__defaults__ = (fn,)
        loaded = load(_byvalue.dump_job(fn, (), {}))[0]
        self.assertIs(loaded(), loaded)
        self.assertEqual(call(lambda items=[1, 2], *, k={"a": 1}: (items, k)),
                         ([1, 2], {"a": 1}))
        self.assertEqual(call(self.user.call_with_defaults), (0, 2, 3, {}))

    def test_class_whose_methods_close_over_values(self):
        classes = [self.user.make_scaled_class(k) for k in (2, 5)]
        self.assertEqual([call(lambda c: c().value(3), cls) for cls in classes],
                         [6, 15])

    def test_unpicklable_cell_or_default_is_named(self):
        lock = threading.Lock()
        with self.assertRaisesRegex(pickle.PicklingError,
                                    "closure variable 'lock'"):
            _byvalue.dump_job(lambda: lock.locked(), (), {})
        with self.assertRaisesRegex(pickle.PicklingError, "default 0"):
            _byvalue.dump_job(lambda held=lock: held.locked(), (), {})


class ModuleStateTest(unittest.TestCase):

    def setUp(self):
        self.user = byvalue_cases.user_module(f"ei_state_{uuid.uuid4().hex}")

    def test_state_set_by_one_function_is_seen_by_another(self):
        call(self.user.set_state, "set in the interpreter")
        self.assertEqual(call(self.user.get_state), "set in the interpreter")

    def test_a_value_changed_in_the_client_replaces_it(self):
        call(self.user.set_state, "set in the interpreter")
        self.user.STATE = "changed in the client"
        self.assertEqual(call(self.user.get_state), "changed in the client")


class ErrorTest(unittest.TestCase):

    def test_missing_definition_names_the_digest(self):
        job = _byvalue.dump_job(fresh_function(), (), {})
        digest = job.definitions[-1].digest
        with self.assertRaisesRegex(loader.DefinitionError, digest):
            loader.loads(memoryview(job.payload), {})
        with self.assertRaisesRegex(loader.DefinitionError, digest):
            loader.loads(memoryview(job.payload), None)

    def test_blob_with_the_wrong_digest_is_refused(self):
        job = _byvalue.dump_job(fresh_function(), (), {})
        digest = job.definitions[-1].digest
        defs = {digest: job.definitions[-1].blob + b"."}
        with self.assertRaisesRegex(loader.DefinitionError, "refusing"):
            loader.loads(memoryview(job.payload), defs)

    def test_check_sees_by_value_functions_only(self):
        seen = []
        _byvalue.dump_job(os.path.join, ("a",), {}, check=seen.append)
        self.assertEqual(seen, [])
        fn = lambda: 0  # noqa: E731
        with self.assertRaises(_byvalue.VersionMismatch):
            _byvalue.dump_job(fn, (), {}, check=self._refuse)

    @staticmethod
    def _refuse(obj):
        raise _byvalue.VersionMismatch(f"refused {obj.__qualname__}")

    def test_unpicklable_global_is_named(self):
        namespace = {"__name__": "ei_unpicklable"}
        exec("import threading\nLOCK = threading.Lock()\n"
             "def locked():\n    return LOCK.locked()\n", namespace)
        with self.assertRaisesRegex(pickle.PicklingError, "'LOCK'"):
            _byvalue.dump_job(namespace["locked"], (), {})


if __name__ == "__main__":
    unittest.main()
