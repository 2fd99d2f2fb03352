"""Objects plain pickle gets wrong, and how the by-value pickler sends them.

``reduce_special`` answers ``ByValuePickler.reducer_override`` for what is
neither a by-value function nor a class of one: modules the daemon imports
(by name, with ``import_module``), bound methods (their function may be a
lambda, which has no name to look up), descriptors and their ``abc``
subclasses, ``lru_cache`` wrappers, mapping proxies, builtin types that
are not ``builtins.<name>``, and sentinels whose identity matters.
``reduce_type_param`` and ``class_extras`` serve definitions: a TypeVar
(or ParamSpec, TypeVarTuple) rebuilt from its parameters, and what a class
has besides its ``__dict__`` (its ``abc`` registrations).
"""

import abc
import importlib
import sys
import types

from ._byvalue_code import (
    ATOMS, LruCacheWrapper, builtin_type_reduce, needs_value)
from ._loader_refs import CELL, FILL_CELL, LRU_CACHE, TYPE_PARAM

__all__ = ["class_extras", "method_needs_value", "reduce_cell",
           "reduce_special", "reduce_type_param"]

# Objects whose identity matters and that pickle would copy: sent by name.
_SENTINELS = {
    "dataclasses": ("MISSING", "KW_ONLY", "_FIELD", "_FIELD_CLASSVAR",
                    "_FIELD_INITVAR", "_HAS_DEFAULT_FACTORY",
                    "_EMPTY_METADATA"),
}
_NO_DEFAULT = object()


def reduce_special(obj, rule):
    """A reduce value for ``obj``, or NotImplemented: pickle it as usual."""
    kind = type(obj)
    if kind is types.ModuleType:
        return importlib.import_module, (obj.__name__,)
    if kind is types.MethodType:
        return types.MethodType, (obj.__func__, obj.__self__)
    if isinstance(obj, (staticmethod, classmethod)):
        return kind, (obj.__func__,)
    if isinstance(obj, property):
        return kind, (obj.fget, obj.fset, obj.fdel, obj.__doc__)
    if kind is LruCacheWrapper and needs_value(obj, rule):
        parameters = obj.cache_parameters()
        return LRU_CACHE, (obj.__wrapped__, parameters["maxsize"],
                           parameters["typed"])
    if isinstance(obj, type):
        return builtin_type_reduce(obj) or NotImplemented
    name = _sentinel_table().get(id(obj))
    if name is not None:
        return getattr, (sys.modules[name[0]], name[1])
    if kind is types.MappingProxyType:
        return types.MappingProxyType, (dict(obj),)
    return NotImplemented


def method_needs_value(method, rule):
    """True if a bound method cannot go as ``getattr(self, name)``."""
    fn = method.__func__
    if needs_value(fn, rule):
        return True
    found = getattr(method.__self__, getattr(fn, "__name__", ""), None)
    return getattr(found, "__func__", None) is not fn


def reduce_type_param(param):
    """``type_param(kind, name, constraints, options)``: a TypeVar,
    ParamSpec or TypeVarTuple made again with what it was made with."""
    options = {}
    for option in ("bound", "covariant", "contravariant", "infer_variance"):
        value = getattr(param, f"__{option}__", _NO_DEFAULT)
        if value is not _NO_DEFAULT and value not in (None, False):
            options[option] = value
    if getattr(param, "has_default", lambda: False)():
        options["default"] = param.__default__
    constraints = tuple(getattr(param, "__constraints__", ()))
    # Found by its name in its module here: a result that returns it (from
    # any interpreter) then comes back as this very object.
    named = getattr(sys.modules.get(param.__module__), param.__name__,
                    None) is param
    return TYPE_PARAM, (type(param).__name__, param.__name__, constraints,
                        options, param.__module__, named)


def class_extras(cls):
    """What a class holds outside its ``__dict__``: the classes registered
    with it, if it is an ABC (``abc.ABCMeta.register``)."""
    if not isinstance(cls, abc.ABCMeta):
        return {}
    try:
        registry = abc._get_dump(cls)[0]  # weak references, in _abc
    except (AttributeError, TypeError):
        return {}
    registered = [ref() for ref in registry]
    return {"abc_registry": [c for c in registered if c is not None]}


def reduce_cell(cell):
    """A closure cell: ``cell()``, then filled (it may contain its function)."""
    try:
        value = cell.cell_contents
    except ValueError:
        return CELL, ()  # An empty cell: a variable not assigned yet.
    if type(value) in ATOMS:
        return CELL, (value,)
    return CELL, (), value, None, None, FILL_CELL


_sentinel_cache = [None, {}]  # [the modules it was made from, id -> name]


def _sentinel_table():
    modules = tuple(sys.modules.get(name) for name in _SENTINELS)
    if _sentinel_cache[0] != modules:
        table = {}
        for module, (module_name, names) in zip(modules, _SENTINELS.items()):
            for name in names if module is not None else ():
                if hasattr(module, name):
                    table[id(getattr(module, name))] = (module_name, name)
        _sentinel_cache[:] = [modules, table]
    return _sentinel_cache[1]
