"""A stand-in for a user's ``__main__`` module, for the by-value tests.

``user_module()`` executes ``USER_SOURCE`` (or other source) in a fresh
module that is in ``sys.modules`` (so results naming its classes unpickle
here) but has no ``__spec__``: like ``__main__`` of a script, the daemon
cannot import it, so its functions and classes travel by value however the
tests are run.
"""

import importlib.util
import os
import sys
import types
from unittest import mock

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

USER_SOURCE = '''
import math

SCALE = 3
STATE = None


def helper(x):
    return x * SCALE


def scaled_sqrt(x):
    return math.sqrt(x) * SCALE


def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)


def is_even(n):
    return True if n == 0 else is_odd(n - 1)


def is_odd(n):
    return False if n == 0 else is_even(n - 1)


def with_defaults(a, b=2, *, c=3, **extra):
    return a, b, c, extra


def make_adder(k):
    def add(x):
        return x + k + helper(0)
    return add


def make_counter():
    def count(n):
        return 0 if n == 0 else 1 + count(n - 1)
    return count


class Point:
    """A point; its methods use the class and a module global."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def scaled(self):
        return Point(self.x * SCALE, self.y * SCALE)

    @staticmethod
    def origin():
        return Point(0, 0)

    @property
    def total(self):
        return self.x + self.y

    def __eq__(self, other):
        return type(other).__name__ == type(self).__name__ and vars(self) == vars(other)

    def __repr__(self):
        return f"{type(self).__name__}{tuple(vars(self).values())}"


class Point3(Point):
    def __init__(self, x, y, z):
        super().__init__(x, y)
        self.z = z


def move(p, dx):
    return Point(p.x + dx, p.y)


def set_state(value):
    global STATE
    STATE = value


def get_state():
    return STATE


# Functions whose cells and defaults vary per call, while their definitions
# (code, globals) stay the same.
def work(i):
    return i * SCALE


def default_lambdas(n):
    return [lambda i=i: work(i) for i in range(n)]


def make_worker(i):
    return lambda: work(i)


def closures(n):
    return [make_worker(i) for i in range(n)]


def apply(fn, *args):
    return fn(*args)


def make_box(value):
    """A getter and a setter sharing one cell."""
    def get():
        return value

    def put(new):
        nonlocal value
        value = new
        return get()
    return get, put


BOX_GET, BOX_PUT = make_box("initial")


def read_box():
    return BOX_GET()


def call_with_defaults():
    return with_defaults(0)


def make_ping_pong():
    def ping(n):
        return "ping" if n == 0 else pong(n - 1)

    def pong(n):
        return "pong" if n == 0 else ping(n - 1)
    return ping


def make_scaled_class(k):
    class Scaled:
        def value(self, x):
            return x * k
    return Scaled


# Classes and functions that plain rebuilding would get wrong; each check_*
# returns what the tests compare.
import abc
import asyncio
import dataclasses
import enum
import functools
import typing


@dataclasses.dataclass
class Item:
    name: str
    tags: list = dataclasses.field(default_factory=list)


class Color(enum.Enum):
    RED = 1
    GREEN = 2

    def lower(self):
        return self.name.lower()


class Perm(enum.IntFlag):
    R = 4
    W = 2


@functools.lru_cache
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


class Shape(abc.ABC):
    @abc.abstractmethod
    def area(self):
        ...


class Square(Shape):
    __slots__ = ("side", "__secret")

    def __init__(self, side):
        self.side = side
        self.__secret = 0

    def area(self):
        return self.side ** 2 + self.__secret


class Pair(typing.NamedTuple):
    a: int
    b: str = "b"


def countdown(n):
    yield from range(n, 0, -1)


async def later(value):
    await asyncio.sleep(0)
    return value


def check_dataclass():
    item = Item("x")
    return dataclasses.asdict(item), dataclasses.replace(item, name="y").name


def check_enum():
    return Color.RED.lower(), Color(2) is Color.GREEN, int(Perm.R | Perm.W)


def check_lru_cache():
    return fib(60), fib.cache_info().hits > 0


def check_abc_and_slots():
    try:
        Shape()
    except TypeError:
        return Square(3).area()


def check_namedtuple():
    return tuple(Pair(1)._replace(a=2))


def check_generator_and_coroutine():
    return list(countdown(3)), asyncio.run(later(5))


EXPECTED_CHECKS = {
    "check_dataclass": ({"name": "x", "tags": []}, "y"),
    "check_enum": ("red", True, 6),
    "check_lru_cache": (1548008755920, True),
    "check_abc_and_slots": 9,
    "check_namedtuple": (2, "b"),
    "check_generator_and_coroutine": ([3, 2, 1], 5),
}
'''


def user_module(name="ei_user_module", source=USER_SOURCE):
    """A fresh module made from ``source``, registered as ``name``."""
    module = types.ModuleType(name)
    module.__spec__ = None
    sys.modules[name] = module
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def load_function_loader():
    """Import the daemon's loader (``_function_loader.py`` of the client
    package) as ``_extrainterpreters_loader``, fresh, as the daemon does.

    The daemon embeds that file; tests without a daemon read it from
    Bazel's runfiles or the source tree.
    """
    name = "_extrainterpreters_loader"
    if name in sys.modules:
        return sys.modules[name]
    candidates = [os.path.join(TESTS_DIR, os.pardir, "client", "python",
                               "extrainterpreters", "_function_loader.py")]
    srcdir = os.environ.get("TEST_SRCDIR")
    if srcdir:
        candidates.insert(0, os.path.join(srcdir, "extrainterpreters", "client",
                                          "python", "extrainterpreters",
                                          "_function_loader.py"))
    path = next((p for p in candidates if os.path.exists(p)), None)
    if path is None:
        raise RuntimeError(f"cannot find _function_loader.py in {candidates}")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def record_requests(test_case, client):
    """Make ``client`` log the type of every request it sends; return the log."""
    sent = []
    # A Client sends on its connection (runs go there straight); an
    # AsyncClient through its own _request.
    keeper = getattr(client, "_keeper", None)
    target, name = ((keeper.current(), "request") if keeper is not None
                    else (client, "_request"))
    send = getattr(target, name)

    def spy(header, *args, **kwargs):
        sent.append(header["type"])
        return send(header, *args, **kwargs)

    patcher = mock.patch.object(target, name, spy)
    patcher.start()
    test_case.addCleanup(patcher.stop)
    return sent
