"""What by-value shipping got wrong, one test per kind, through the real daemon.

Each case is written from what a user of cloudpickle-style shipping may
expect (its documented behaviour), both ways: from the client to a job,
and from a job back (a job's result may hold classes and functions made
in the job). ``FIXES_SOURCE`` stands for the user's ``__main__``; each
test gets a fresh copy, so the job is the first to ship what it uses.
Relative imports in shipped code are ``byvalue_modules_e2e_test``'s.
"""

import abc
import collections
import os
import sys
import types
import unittest
import uuid
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import byvalue_cases  # noqa: E402
import extrainterpreters  # noqa: E402
import harness  # noqa: E402

from extrainterpreters import RemoteError  # noqa: E402

FIXES_SOURCE = '''
import abc, collections, enum, types, typing


class Point:
    def __init__(self, x):
        self.x = x


def is_point(p):
    return isinstance(p, Point), type(p) is Point


def identity(value):
    return value


def odd_builtin_types():
    return (type(None), type(...), type(NotImplemented),
            types.MappingProxyType, types.MappingProxyType({"k": 1}))


T = typing.TypeVar("T")


class Box(typing.Generic[T]):
    def __init__(self, item: T):
        self.item = item

    def get(self) -> T:
        return self.item


def unbox(box: Box[int]) -> int:
    return box.get()


def box_parameters():
    return Box.__parameters__ == (T,), T.__name__, Box[int](7).get()


def move(p: Point, dx: int) -> Point:
    return Point(p.x + dx)


def hints():
    found = typing.get_type_hints(move)
    return found["p"] is Point, found["return"] is Point, found["dx"] is int


def make_reader():
    import xml.etree.ElementTree
    import http.cookiejar
    xml_package, http_package = xml, http

    def read(tag):
        # Parsing needs pyexpat, which 3.12 cannot load in a sub-interpreter.
        return (xml_package.etree.ElementTree.Element(tag).tag,
                http_package.cookiejar.CookieJar.__name__)
    return read


def module_result():
    import os.path
    return os.path, collections


def dynamic_module():
    made = types.ModuleType("made_in_the_job")
    exec("VALUE = 41\\ndef f():\\n    return VALUE + 1\\n", made.__dict__)
    return made


class Shape(abc.ABC):
    @abc.abstractmethod
    def area(self):
        ...


class Plain:
    def area(self):
        return 1


Shape.register(Plain)


def is_shape(obj):
    return isinstance(obj, Shape), issubclass(Plain, Shape)


class Factory(abc.ABC):
    @abc.abstractclassmethod
    def make(cls):
        ...


class Maker(Factory):
    @classmethod
    def make(cls):
        return cls.__name__


def use_factory():
    return Maker.make(), Factory.make.__isabstractmethod__, Factory.__abstractmethods__


def local_classes():
    Pair = collections.namedtuple("Pair", "a b")

    class Row(typing.NamedTuple):
        a: int
        b: str = "b"

    class Color(enum.Enum):
        RED = 1
        GREEN = 2
    return Pair(1, 2), Row(3), Color.GREEN, Pair


class Greeter:
    greet = lambda self, name: f"hi {name}"  # noqa: E731


def bound_lambda():
    return Greeter().greet
'''


class FixesTest(harness.DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.user = byvalue_cases.user_module(
            f"ei_fixes_{uuid.uuid4().hex}", FIXES_SOURCE)
        self.run = self.client.run

    def test_main_class_as_argument_type_and_global_is_one_class(self):
        self.assertEqual(self.run(self.user.is_point, self.user.Point(1)),
                         (True, True))

    def test_types_not_named_in_builtins(self):
        odd = (type(None), type(...), type(NotImplemented),
               types.MappingProxyType, types.FunctionType, types.CellType)
        for kind in odd:
            with self.subTest(kind=kind):
                self.assertIs(self.run(self.user.identity, kind), kind)
        back = self.run(self.user.odd_builtin_types)
        self.assertEqual(back[:4], odd[:4])
        self.assertEqual(dict(back[4]), {"k": 1})
        self.assertEqual(self.run(dict, types.MappingProxyType({"a": 2})),
                         {"a": 2})

    def test_typevar_and_generic_class(self):
        self.assertEqual(self.run(self.user.unbox, self.user.Box[int](5)), 5)
        self.assertEqual(self.run(self.user.box_parameters), (True, "T", 7))
        box = self.run(self.user.Box, 3)
        self.assertIs(type(box), self.user.Box)
        self.assertIs(self.run(self.user.identity, self.user.T), self.user.T)

    def test_a_typevar_comes_back_as_itself_from_any_interpreter(self):
        # Whichever interpreter a job lands on, and whatever ran there
        # before: one that rebuilt the module's globals, or a fresh one.
        used, fresh = (extrainterpreters.Interpreter(client=self.client)
                       for _ in range(2))
        self.addCleanup(used.close)
        self.addCleanup(fresh.close)
        self.assertEqual(used.run(self.user.box_parameters), (True, "T", 7))
        self.assertIs(used.run(self.user.identity, self.user.T), self.user.T)
        self.assertIs(fresh.run(self.user.identity, self.user.T), self.user.T)
        self.assertIs(fresh.run(self.user.identity, [self.user.T])[0],
                      self.user.T)

    @unittest.skipIf(sys.version_info < (3, 13),
                     "TypeVar defaults (PEP 696) are new in Python 3.13")
    def test_typevar_with_a_default(self):
        user = byvalue_cases.user_module(
            f"ei_default_{uuid.uuid4().hex}",
            "import typing\nD = typing.TypeVar('D', default=int)\n"
            "def default():\n    return D.__default__\n")
        self.assertIs(self.run(user.default), int)

    def test_pep_695_generic_class(self):
        user = byvalue_cases.user_module(
            f"ei_pep695_{uuid.uuid4().hex}",
            "class Stack[T]:\n"
            "    def __init__(self):\n        self.items: list[T] = []\n"
            "    def push(self, item: T) -> 'Stack[T]':\n"
            "        self.items.append(item)\n        return self\n"
            "def parameter_names():\n"
            "    return [p.__name__ for p in Stack.__type_params__]\n")
        self.assertEqual(self.run(user.parameter_names), ["T"])
        stack = self.run(lambda s: s.push(2), user.Stack().push(1))
        self.assertEqual(stack.items, [1, 2])

    def test_annotations_naming_main_classes_are_kept(self):
        self.assertEqual(self.run(self.user.hints), (True, True, True))

    def test_package_in_a_closure_cell_brings_its_submodules(self):
        daemon = self.start_daemon(workers=1)  # Fresh interpreters.
        with daemon.client(self) as client:
            self.assertFalse(client.run(lambda: "xml.etree" in sys.modules))
            self.assertEqual(client.run(self.user.make_reader(), "root"),
                             ("root", "CookieJar"))

    def test_module_objects_go_by_name(self):
        self.assertEqual(self.run(lambda m: m.__name__, collections),
                         "collections")
        self.assertEqual(self.run(self.user.module_result),
                         (os.path, collections))

    def test_dynamic_modules_go_by_value(self):
        made = types.ModuleType(f"ei_dynamic_{uuid.uuid4().hex}")
        exec("VALUE = 1\ndef f():\n    return VALUE + 1\n", made.__dict__)
        self.assertEqual(self.run(lambda m: (m.__name__, m.f()), made),
                         (made.__name__, 2))
        back = self.run(self.user.dynamic_module)
        self.assertEqual((back.__name__, back.VALUE, back.f()),
                         ("made_in_the_job", 41, 42))

    def test_abc_registrations_are_kept(self):
        self.assertEqual(self.run(self.user.is_shape, self.user.Plain()),
                         (True, True))

    def test_abstractclassmethod(self):
        made, abstract, names = self.run(self.user.use_factory)
        self.assertEqual((made, abstract, names), ("Maker", True, {"make"}))
        self.assertTrue(issubclass(self.run(self.user.identity,
                                            self.user.Maker), abc.ABC))

    def test_classes_made_in_a_job_come_back(self):
        pair, row, color, pair_class = self.run(self.user.local_classes)
        self.assertIs(type(pair), pair_class)
        self.assertEqual((pair.a, pair.b, pair._fields), (1, 2, ("a", "b")))
        self.assertEqual((row, row.b), ((3, "b"), "b"))
        self.assertEqual((color.name, color.value), ("GREEN", 2))
        self.assertIs(type(color)(2), color)
        self.assertEqual(self.run(lambda p: p.a + p.b, pair), 3)  # and back

    def test_bound_method_of_a_lambda(self):
        self.assertEqual(self.run(self.user.bound_lambda)("you"), "hi you")
        self.assertEqual(self.run(lambda m: m("there"),
                                  self.user.Greeter().greet), "hi there")

    def test_code_from_a_job_needs_the_same_minor_version(self):
        from extrainterpreters import _byvalue_result
        with mock.patch.object(_byvalue_result, "_PYTHON", "3.99"):
            with self.assertRaises(RemoteError) as cm:
                self.run(self.user.local_classes)
        daemon = ".".join(self.client.hello["python"].split(".")[:2])
        self.assertIn(f"this client runs Python 3.99 and the daemon runs "
                      f"{daemon}", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
