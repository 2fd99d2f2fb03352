"""The by-value pickler: functions and classes as the daemon's loader rebuilds them.

``ByValuePickler`` pickles a function inline as ``make_function`` (its code
as marshal, each global it reads pickled apart, the submodules it reaches)
and ``set_function_state``, a class as ``make_class`` and
``set_class_state``. Any other by-value object it meets is a persistent id
from ``resolve``; one with closure cells or defaults is
``bind(skeleton, cells, defaults)``, so that every function one ``def`` or
``lambda`` makes shares one definition. Jobs (``_byvalue._JobPickler``) and
definition blobs (``_byvalue_registry``) are both pickled with it.
"""

import enum
import importlib
import io
import pickle
import sys
import types
import uuid

from ._byvalue_code import (
    ATOMS, MISSING, FunctionType, LruCacheWrapper, body_methods,
    cheap_annotations, code_info, globals_name, has_parts, needs_value,
    slot_names, submodules)
from ._loader_refs import (
    BIND, CELL, FILL_CELL, LRU_CACHE, MAKE_CLASS, MAKE_FUNCTION,
    SET_CLASS_STATE, SET_DEFAULTS, SET_FUNCTION_STATE, LoaderFunction,
    LoaderModule)

__all__ = ["PROTOCOL", "SESSION", "ByValuePickler"]

PROTOCOL = 5
# Names this process's modules in the daemon, so that two client programs
# sharing a pool interpreter never see each other's __main__ globals.
SESSION = uuid.uuid4().hex

# Class __dict__ entries that the class skeleton recreates by itself.
_CLASS_SKIP = frozenset({
    "__dict__", "__weakref__", "__module__", "__qualname__", "__doc__",
    "__slots__", "_abc_impl",
})
# Objects whose identity matters and that pickle would copy: sent by name.
_SENTINELS = {
    "dataclasses": ("MISSING", "KW_ONLY", "_FIELD", "_FIELD_CLASSVAR",
                    "_FIELD_INITVAR", "_HAS_DEFAULT_FACTORY",
                    "_EMPTY_METADATA"),
}

# Types reducer_override leaves to pickle: the loader references of bind.
_PLAIN_REDUCE = frozenset({LoaderFunction, LoaderModule,
                           types.BuiltinFunctionType})


class _Skeleton:
    """A by-value function without its per-call parts (cells, defaults).

    What ``bind`` starts from: pickled as the function's persistent id,
    or, in the function's own definition blob, as its skeleton.
    """

    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn


class ByValuePickler(pickle.Pickler):
    """Pickles by-value objects by reference to their definition.

    ``resolve(obj)`` returns the persistent id for a by-value object.
    ``inline`` objects (a definition's members and their methods) are
    pickled by value here; ``refs`` (a definition's members, seen from the
    pickles of its global values) become ``("member", index)``. A member
    with per-call parts is pickled as its skeleton (``root``); a by-value
    function with per-call parts, wherever it is referred to, as
    ``bind(skeleton reference, cells, defaults...)``.
    """

    def __init__(self, file, resolve, *, inline=(), refs=(), buffer_callback=None):
        super().__init__(file, protocol=PROTOCOL, buffer_callback=buffer_callback)
        self._resolve = resolve
        self._inline = set()  # ids of objects pickled whole, here
        self._own = set()  # ids of members whose skeleton is pickled here
        for obj in inline:
            own = type(obj) is FunctionType and has_parts(obj)
            (self._own if own else self._inline).add(id(obj))
        self._refs = refs
        self._ref_index = {id(obj): i for i, obj in enumerate(refs)}
        self._pids = {}  # id -> (obj, persistent id or None)
        self._skeletons = {}  # id -> _Skeleton: one each, for the memo
        self.bound = []  # Functions pickled with bind, for error messages.
        self.names_members = False  # True once a ("member", i) was written.

    def root(self, member):
        """What a definition blob's member list holds for ``member``."""
        return self._skeleton(member) if id(member) in self._own else member

    def _skeleton(self, fn):
        skeleton = self._skeletons.get(id(fn))
        if skeleton is None:
            skeleton = self._skeletons[id(fn)] = _Skeleton(fn)
        return skeleton

    def persistent_id(self, obj):
        kind = type(obj)
        if kind is _Skeleton:
            fn = obj.fn
            return None if id(fn) in self._own else self._pid(fn)
        if kind is not FunctionType and not isinstance(obj, type):
            return None
        key = id(obj)
        if key in self._inline or key in self._own:
            return None
        pid = self._pid(obj)
        if pid is not None and kind is FunctionType and has_parts(obj):
            return None  # reducer_override binds it to its parts
        return pid

    def _pid(self, obj):
        """The persistent id of a function or class, None: pickle it as usual."""
        key = id(obj)
        cached = self._pids.get(key)
        if cached is None:
            if key in self._ref_index:
                pid = ("member", self._ref_index[key])
            elif needs_value(obj):
                pid = self._resolve(obj)
            else:
                pid = None
            cached = self._pids[key] = (obj, pid)
        if key in self._ref_index:
            self.names_members = True
        return cached[1]

    def reducer_override(self, obj):
        kind = type(obj)
        if kind is FunctionType:
            key = id(obj)
            if key in self._inline:
                return self._reduce_function(obj, parts=True)
            if key in self._own or self._pid(obj) is not None:
                return self._reduce_bound(obj)
            return NotImplemented
        if kind is _Skeleton:  # Only reached for this blob's own members.
            return self._reduce_function(obj.fn, parts=False)
        if kind is types.CellType:
            return _reduce_cell(obj)
        if kind in _PLAIN_REDUCE:
            return NotImplemented  # Every job has a few; skip the lookups.
        if id(obj) in self._inline:
            return self._reduce_class(obj)
        if isinstance(obj, types.ModuleType):
            return importlib.import_module, (obj.__name__,)
        if kind is staticmethod or kind is classmethod:
            return kind, (obj.__func__,)
        if kind is property:
            return property, (obj.fget, obj.fset, obj.fdel, obj.__doc__)
        if kind is LruCacheWrapper and needs_value(obj):
            parameters = obj.cache_parameters()
            return LRU_CACHE, (obj.__wrapped__, parameters["maxsize"],
                                parameters["typed"])
        if kind is types.MappingProxyType:
            name = _sentinel_name(obj)
            if name is None:
                return types.MappingProxyType, (dict(obj),)
        else:
            name = _sentinel_name(obj)
        if name is not None:
            return getattr, (sys.modules[name[0]], name[1])
        return NotImplemented

    def _reduce_function(self, fn, parts):
        """(skeleton, state) of a function; see _function_loader.

        ``parts``: with its cells and defaults (a method, whose class
        definition holds them), or without (a member of a definition:
        they come with each reference, ``_reduce_bound``).
        """
        code = fn.__code__
        info = code_info(code)
        key = (SESSION, globals_name(fn))
        cells = []
        for index, cell in enumerate(fn.__closure__ if parts and
                                     fn.__closure__ else ()):
            try:
                cells.append((index, cell.cell_contents))
            except ValueError:
                pass  # An empty cell: a variable not assigned yet.
        state = {
            "qualname": fn.__qualname__,
            "module": fn.__module__,
            "doc": fn.__doc__,
            "defaults": fn.__defaults__ if parts else None,
            "kwdefaults": fn.__kwdefaults__ if parts else None,
            "annotations": cheap_annotations(fn),
            "dict": dict(fn.__dict__),
            "cells": cells,
            "namespace": key,
            "imports": submodules(fn, info),
            "globals": self._pickle_globals(fn, info),
        }
        args = (info.marshalled, key, fn.__name__, len(code.co_freevars))
        return (MAKE_FUNCTION, args, state, None, None, SET_FUNCTION_STATE)

    def _reduce_bound(self, fn):
        """``bind(skeleton, cells, defaults, kwdefaults)``: ``fn`` with its parts.

        The cells are pickled as cells, filled after they are memoized, so
        a closure may contain itself, and closures sharing a cell in the
        client share it in the job. Defaults are set after ``fn`` is
        memoized unless they are atoms (a tuple could contain ``fn``).
        """
        self.bound.append(fn)
        args = (self._skeleton(fn), fn.__closure__)
        defaults, kwdefaults = fn.__defaults__, fn.__kwdefaults__
        if defaults is None and kwdefaults is None:
            return BIND, args
        if defaults is None or all(type(v) in ATOMS for v in defaults):
            return BIND, args + (defaults, kwdefaults)
        return (BIND, args, (defaults, kwdefaults), None, None,
                SET_DEFAULTS)

    def _pickle_globals(self, fn, info):
        """``[(name, pickle, names_members)]`` of the globals the code uses."""
        result = []
        namespace = fn.__globals__
        for name in info.global_names:
            value = namespace.get(name, MISSING)
            if value is MISSING or name == "__builtins__":
                continue
            try:
                payload, names_members = self._pickle_value(value)
            except Exception as exc:
                raise pickle.PicklingError(
                    f"cannot ship {fn.__qualname__} by value: its global "
                    f"{name!r} (a {type(value).__qualname__}) does not "
                    f"pickle: {exc}") from exc
            result.append((name, payload, names_members))
        return result

    def _pickle_value(self, value):
        file = io.BytesIO()
        pickler = ByValuePickler(file, self._resolve, refs=self._refs)
        pickler.dump(value)
        return file.getvalue(), pickler.names_members

    def _reduce_class(self, cls):
        """(skeleton, state) of a class; methods are pickled inline."""
        attrs = {}
        skip = _CLASS_SKIP | slot_names(cls)
        for name, value in cls.__dict__.items():
            if name not in skip:
                attrs[name] = value
                self._inline.update(id(fn) for fn in body_methods(cls, value))
        skeleton = {"__module__": cls.__module__,
                    "__qualname__": cls.__qualname__,
                    "__doc__": cls.__dict__.get("__doc__")}
        if "__slots__" in cls.__dict__:
            skeleton["__slots__"] = cls.__dict__["__slots__"]
        if isinstance(cls, enum.EnumMeta):
            # Members must exist when the class is made; EnumMeta made the
            # rest of its dict, so only the methods of the body are set.
            skeleton.update((name, member._value_)
                            for name, member in cls.__members__.items())
            attrs = {name: value for name, value in attrs.items()
                     if body_methods(cls, value)}
        args = (type(cls), cls.__name__, cls.__bases__, skeleton)
        return (MAKE_CLASS, args, {"attrs": attrs}, None, None,
                SET_CLASS_STATE)


def _reduce_cell(cell):
    """A closure cell: ``cell()``, then filled (it may contain its function)."""
    try:
        value = cell.cell_contents
    except ValueError:
        return CELL, ()  # An empty cell: a variable not assigned yet.
    if type(value) in ATOMS:
        return CELL, (value,)
    return CELL, (), value, None, None, FILL_CELL


def _sentinel_name(obj):
    """``(module, name)`` of a well-known sentinel object, else None."""
    return _sentinel_table().get(id(obj))


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
