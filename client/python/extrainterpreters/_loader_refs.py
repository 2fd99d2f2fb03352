"""The daemon's loader as pickles name it, without importing it here.

By-value pickles call functions of ``_extrainterpreters_loader``: the module
the daemon makes of ``_function_loader.py`` in every interpreter (a client
imports that file under the same name to unpickle queue items). The
stand-ins below pickle as ``getattr(__import__(LOADER_MODULE), name)``;
``ModuleByName`` as a module imported by name, ``reduce_by_name`` as an
object found by its module and qualname.
"""

import importlib
import operator
import sys

__all__ = [
    "BIND", "CELL", "FILL_CELL", "FINISH_DEFINITION", "LOADER_MODULE",
    "LRU_CACHE", "LoaderFunction", "LoaderModule", "MAKE_CLASS",
    "MAKE_FUNCTION", "MODULE", "SET_CLASS_STATE", "SET_DEFAULTS",
    "SET_FUNCTION_STATE", "SET_MODULE_STATE", "TYPE_PARAM", "TYPE_PARAMS",
    "ModuleByName", "reduce_by_name",
]

LOADER_MODULE = "_extrainterpreters_loader"


class LoaderModule:
    """Pickles as ``__import__("_extrainterpreters_loader")``.

    ``__import__`` rather than ``importlib.import_module``: a builtin is
    cheaper to pickle, and every job with a closure names the loader.
    """

    def __reduce__(self):
        return __import__, (LOADER_MODULE,)


_LOADER = LoaderModule()


class LoaderFunction:
    """A function of the daemon's loader module, as a pickle names it.

    It pickles as ``getattr(<loader module>, name)``, which resolves only in
    the daemon's interpreters. Pickle accepts only callables as reduce
    functions, hence ``__call__``.
    """

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return getattr, (_LOADER, self.name)

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"{LOADER_MODULE}.{self.name} runs only inside "
                           f"extrainterpretersd")


class ModuleByName:
    """Pickles as ``importlib.import_module(name)``: a module by name."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return importlib.import_module, (self.name,)


def reduce_by_name(origin):
    """The reduce value of what ``origin``, ``(module, qualname)``, names:
    ``attrgetter(qualname)(import_module(module))`` where it is unpickled."""
    module, qualname = origin
    return operator.attrgetter(qualname), (ModuleByName(module),)


MAKE_FUNCTION = LoaderFunction("make_function")
SET_FUNCTION_STATE = LoaderFunction("set_function_state")
MAKE_CLASS = LoaderFunction("make_class")
SET_CLASS_STATE = LoaderFunction("set_class_state")
FINISH_DEFINITION = LoaderFunction("finish_definition")
LRU_CACHE = LoaderFunction("lru_cache")
BIND = LoaderFunction("bind")
SET_DEFAULTS = LoaderFunction("set_defaults")
CELL = LoaderFunction("cell")
FILL_CELL = LoaderFunction("fill_cell")
MODULE = LoaderFunction("module")
SET_MODULE_STATE = LoaderFunction("set_module_state")
TYPE_PARAM = LoaderFunction("type_param")

# What TYPE_PARAM makes: TypeVar, ParamSpec, TypeVarTuple. Pickled by name,
# which fails for those of a by-value module and for PEP 695 parameters.
# Only 3.12+ has them in _typing; an older client cannot ship code anyway.
TYPE_PARAMS = frozenset(filter(None, (
    getattr(sys.modules.get("_typing") or __import__("_typing"), name, None)
    for name in ("TypeVar", "ParamSpec", "TypeVarTuple"))))
