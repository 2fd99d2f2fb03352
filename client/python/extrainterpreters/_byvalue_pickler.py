"""The by-value pickler: functions, classes and modules as the daemon rebuilds them.

``ByValuePickler`` pickles a function inline as ``make_function`` (its code
as marshal, each global it reads pickled apart, what it reaches in modules:
``_byvalue_modules``) and ``set_function_state``, a class as ``make_class``
and ``set_class_state``, a module as ``module`` and ``set_module_state``, a
type parameter as ``type_param``. Any other by-value object it meets is a
persistent id from ``resolve``; a function with closure cells or defaults
is ``bind(skeleton, cells, defaults)``, so that every function one ``def``
or ``lambda`` makes shares one definition. What is by value is the
``rule``'s to say (``_byvalue_rule``). Jobs (``_byvalue._JobPickler``),
definition blobs (``_byvalue_registry``) and, in the daemon, results that
hold classes made in the job (``_byvalue_result``) are pickled with it.
"""

import enum
import io
import pickle
import sys
import types

from ._byvalue_code import (
    ATOMS, MISSING, TYPE_PARAMS, FunctionType, body_methods, code_info,
    globals_name, has_parts, needs_value, slot_names)
from ._byvalue_modules import (
    BareModule, code_modules, is_module, module_attributes, module_key)
from ._byvalue_reducers import (
    class_extras, reduce_cell, reduce_special, reduce_type_param)
from ._byvalue_rule import rule_for
from ._loader_refs import (
    BIND, MAKE_CLASS, MAKE_FUNCTION, MODULE, SET_CLASS_STATE, SET_DEFAULTS,
    SET_FUNCTION_STATE, SET_MODULE_STATE, LoaderFunction, LoaderModule,
    ModuleByName, reduce_by_name)

__all__ = ["PROTOCOL", "ByValuePickler"]

PROTOCOL = 5
_NO_RULE = rule_for(None)

# Class __dict__ entries that the class skeleton recreates by itself, and
# copyreg's cache of slot names, which pickling an instance adds.
_CLASS_SKIP = frozenset({
    "__dict__", "__weakref__", "__module__", "__qualname__", "__doc__",
    "__slots__", "_abc_impl", "__slotnames__", "__orig_bases__",
})

# Types reducer_override leaves to pickle: the loader references of bind.
_PLAIN_REDUCE = frozenset({LoaderFunction, LoaderModule, BareModule,
                           ModuleByName, types.BuiltinFunctionType})
# What may be a definition: the rule decides for each.
_DEFINABLE = frozenset({FunctionType, types.ModuleType}) | TYPE_PARAMS


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
    ``bind(skeleton reference, cells, defaults...)``. ``origin(obj)``, in
    the daemon, names the objects rebuilt there from a client's
    definitions, ``(module, qualname)``: they go back by name.
    """

    def __init__(self, file, resolve, *, rule=_NO_RULE, inline=(), refs=(),
                 origin=None, buffer_callback=None):
        super().__init__(file, protocol=PROTOCOL, buffer_callback=buffer_callback)
        self._resolve = resolve
        self.rule = rule
        self._origin = origin
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
        if kind not in _DEFINABLE and not isinstance(obj, type):
            return None
        key = id(obj)
        if key in self._inline or key in self._own:
            return None
        pid = self._pid(obj)
        if pid is not None and kind is FunctionType and has_parts(obj):
            return None  # reducer_override binds it to its parts
        return pid

    def _pid(self, obj):
        """The persistent id of a by-value object, None: pickle it as usual."""
        key = id(obj)
        cached = self._pids.get(key)
        if cached is None:
            if key in self._ref_index:
                pid = ("member", self._ref_index[key])
            elif self.by_value(obj):
                pid = self._resolve(obj)
            else:
                pid = None
            cached = self._pids[key] = (obj, pid)
        if key in self._ref_index:
            self.names_members = True
        return cached[1]

    def by_value(self, obj):
        """True if ``obj`` travels as a definition of its own."""
        if self._origin is not None and self._origin(obj) is not None:
            return False
        if is_module(obj):
            return self.rule.module_by_value(obj)
        return needs_value(obj, self.rule)

    def reducer_override(self, obj):
        kind = type(obj)
        if kind is FunctionType:
            key = id(obj)
            if key in self._inline:
                return self._reduce_function(obj, parts=True)
            if key in self._own or self._pid(obj) is not None:
                return self._reduce_bound(obj)
            return self._by_origin(obj) or NotImplemented
        if kind is _Skeleton:  # Only reached for this blob's own members.
            return self._reduce_function(obj.fn, parts=False)
        if kind is types.CellType:
            return reduce_cell(obj)
        if kind in _PLAIN_REDUCE:
            return NotImplemented  # Every job has a few; skip the lookups.
        if id(obj) in self._inline:
            if is_module(obj):
                return self._reduce_module(obj)
            if kind in TYPE_PARAMS:
                return reduce_type_param(obj)
            return self._reduce_class(obj)
        if isinstance(obj, type):
            found = self._by_origin(obj)
            if found is not None:
                return found
        return reduce_special(obj, self.rule)

    def _by_origin(self, obj):
        """A function or class rebuilt from a client's definition, by the
        name it has there (``origin``); else None."""
        origin = self._origin(obj) if self._origin is not None else None
        return None if origin is None else reduce_by_name(origin)

    def _reduce_function(self, fn, parts):
        """(skeleton, state) of a function; see _function_loader.

        ``parts``: with its cells and defaults (a method, whose class
        definition holds them), or without (a member of a definition:
        they come with each reference, ``_reduce_bound``).
        """
        code = fn.__code__
        info = code_info(code)
        key = module_key(globals_name(fn))
        cells = []
        for index, cell in enumerate(fn.__closure__ if parts and
                                     fn.__closure__ else ()):
            try:
                cells.append((index, cell.cell_contents))
            except ValueError:
                pass  # An empty cell: a variable not assigned yet.
        imports, shipped = code_modules(fn, info, self.rule,
                                        [value for _, value in cells])
        state = {
            "qualname": fn.__qualname__,
            "module": fn.__module__,
            "doc": fn.__doc__,
            "defaults": fn.__defaults__ if parts else None,
            "kwdefaults": fn.__kwdefaults__ if parts else None,
            "annotations": self._annotations(fn),
            "dict": dict(fn.__dict__),
            "cells": cells,
            "namespace": key,
            "home": self._home(fn),
            "imports": imports,
            "modules": [BareModule(m, self.rule) for m, _ in shipped],
            "globals": self._pickle_globals(fn, info, key, shipped),
        }
        args = (info.marshalled, key, fn.__name__, len(code.co_freevars))
        return (MAKE_FUNCTION, args, state, None, None, SET_FUNCTION_STATE)

    def _home(self, fn):
        """The by-value module whose dict ``fn``'s globals are, named and
        placed in the daemon as here (``__main__`` keeps its package, for
        relative imports under ``python -m``); None for a bare dict, or a
        module the daemon has (a lambda of an importable module keeps its
        globals apart from the daemon's copy of that module)."""
        module = _module_of(fn.__globals__)
        if module is None or not self.rule.module_by_value(module):
            return None
        return BareModule(module, self.rule)

    def _annotations(self, fn):
        """``fn``'s annotations, or None if some of them do not pickle."""
        annotations = getattr(fn, "__annotations__", None)
        if not annotations:
            return None
        try:
            self._pickle_value(annotations)
        except Exception:
            return None  # Only typing tools read them; the call works without.
        return dict(annotations)

    def _reduce_bound(self, fn):
        """``bind(skeleton, cells, defaults, kwdefaults, imports)``: ``fn``
        with its parts.

        The cells are pickled as cells, filled after they are memoized, so
        a closure may contain itself, and closures sharing a cell in the
        client share it in the job. Defaults are set after ``fn`` is
        memoized unless they are atoms (a tuple could contain ``fn``).
        ``imports``: submodules reached through modules in the cells.
        """
        self.bound.append(fn)
        closure = fn.__closure__
        imports = _cell_imports(fn, self.rule) if closure else []
        args = (self._skeleton(fn), closure)
        defaults, kwdefaults = fn.__defaults__, fn.__kwdefaults__
        if defaults is None and kwdefaults is None and not imports:
            return BIND, args
        tail = (imports,) if imports else ()
        if defaults is None or all(type(v) in ATOMS for v in defaults):
            return BIND, args + (defaults, kwdefaults) + tail
        return (BIND, args + (None, None) + tail, (defaults, kwdefaults),
                None, None, SET_DEFAULTS)

    def _pickle_globals(self, fn, info, key, shipped):
        """``[(namespace, name, pickle, names_members)]``: the globals the
        code uses, and the attributes it may use of by-value modules (an
        attribute that does not pickle is left out: the code may only
        name another object's attribute of that name)."""
        namespace = fn.__globals__
        wanted = {(key, name): (namespace.get(name, MISSING), True)
                  for name in info.global_names if name != "__builtins__"}
        for module, names in shipped:
            attrs, space = vars(module), module_key(module.__name__)
            for name in names:
                wanted.setdefault((space, name), (attrs[name], False))
        result = []
        for (space, name), (value, needed) in wanted.items():
            if value is MISSING:
                continue
            try:
                payload, names_members = self._pickle_value(value, True)
            except Exception as exc:
                if not needed:
                    continue
                raise pickle.PicklingError(
                    f"cannot ship {fn.__qualname__} by value: its global "
                    f"{name!r} (a {type(value).__qualname__}) does not "
                    f"pickle: {exc}") from exc
            result.append((space, name, payload, names_members))
        return result

    def _pickle_value(self, value, bare_modules=False):
        """A global's own pickle. ``bare_modules``: a by-value module as
        its names only (the attributes code uses travel beside it)."""
        if (bare_modules and is_module(value)
                and self.rule.module_by_value(value)):
            value = BareModule(value, self.rule)
        file = io.BytesIO()
        pickler = ByValuePickler(file, self._resolve, rule=self.rule,
                                 refs=self._refs, origin=self._origin)
        pickler.dump(value)
        return file.getvalue(), pickler.names_members

    def _reduce_module(self, module):
        """A module value: its names, then every attribute that pickles
        (``set_module_state``), each as a global of its namespace."""
        key = module_key(module.__name__)
        attributes = []
        for name, value in module_attributes(module):
            try:
                payload, names_members = self._pickle_value(value)
            except Exception:
                continue  # Like an attribute the daemon lacks, it is not there.
            attributes.append((key, name, payload, names_members))
        return (MODULE, BareModule(module, self.rule).args(),
                {"globals": attributes}, None, None, SET_MODULE_STATE)

    def _reduce_class(self, cls):
        """(skeleton, state) of a class; methods are pickled inline."""
        attrs = {}
        skip = _CLASS_SKIP | slot_names(cls)
        for name, value in cls.__dict__.items():
            if name not in skip:
                attrs[name] = value
                self._inline.update(
                    id(fn) for fn in body_methods(cls, value, self.rule))
        skeleton = {"__module__": cls.__module__,
                    "__qualname__": cls.__qualname__,
                    "__doc__": cls.__dict__.get("__doc__")}
        for name in ("__slots__", "__orig_bases__"):  # Generic[T] needs it too
            if name in cls.__dict__:
                skeleton[name] = cls.__dict__[name]
        if isinstance(cls, enum.EnumMeta):
            # Members must exist when the class is made; EnumMeta made the
            # rest of its dict, so only the methods of the body are set.
            skeleton.update((name, member._value_)
                            for name, member in cls.__members__.items())
            attrs = {name: value for name, value in attrs.items()
                     if body_methods(cls, value, self.rule)}
        args = (type(cls), cls.__name__, cls.__bases__, skeleton)
        state = {"attrs": attrs, **class_extras(cls)}
        return (MAKE_CLASS, args, state, None, None, SET_CLASS_STATE)


def _module_of(namespace):
    """The module whose ``__dict__`` is ``namespace``, or None."""
    module = sys.modules.get(namespace.get("__name__"))
    if module is not None and getattr(module, "__dict__", None) is namespace:
        return module
    return None


def _cell_imports(fn, rule):
    """Submodules reached through by-name modules in ``fn``'s cells."""
    values = []
    for cell in fn.__closure__:
        try:
            values.append(cell.cell_contents)
        except ValueError:
            pass
    if not any(is_module(v) for v in values):
        return []
    info = code_info(fn.__code__)
    return code_modules(fn, info, rule, values)[0]
