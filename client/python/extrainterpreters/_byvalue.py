"""Pickles jobs whose functions the daemon cannot import: by value.

Pickle refers to a function by module and name, and the daemon imports it.
That fails for functions typed at the REPL or defined in ``__main__``, and
for lambdas, closures and nested functions. Those travel by value instead::

    client                                      daemon interpreter
    ------                                      ------------------
    dump_job(fn, args, kwargs)
      plain pickle; it stops at the first
      function or class needing by-value
      _JobPickler: each such object is          _extrainterpreters_loader.loads
        persistent id ("fn", digest)  ------->    ("fn", digest): its cache, or
        or, for a function with cells or          rebuild from the blob and
        defaults, bind(("fn", digest),            cache it (make_function,
        cells, defaults)                          set_function_state, ...);
      _Registry: a definition blob per            bind: a new function of the
        object (code as marshal, globals,         cached one's code and globals
        names...), named by the blob's
        SHA-256, memoized per code object
    Job(payload, definitions)
      Client: 'define' each blob once per connection, then 'run' with 'uses'

A function's definition holds what its code object and module give it; the
contents of its closure cells and its defaults are *per call*: they travel
next to the reference, in whatever pickle refers to the function (the job,
or the blob of a function whose global it is). So ``lambda i=i: work(i)``
in a loop, or a closure over a loop variable, is one definition, sent and
rebuilt once, however many values it is called with. Such a function
arrives as a new function object in each job (one per job, whatever the
number of references to it there); functions without cells or defaults
arrive as the cached object itself.

Blobs name the by-value objects they need by digest too, so a blob's digest
depends on its dependencies' digests. Objects that need each other (mutually
recursive helpers, a class and a function that makes it) cannot be named
one after the other: such a cycle is pickled whole into one *group* blob,
and each of its members gets a tiny blob meaning "member i of that group".

Global variables a function reads are pickled one by one, so the daemon can
tell a value the client changed (assign it) from one a job may have changed
there since (module state: keep it). See ``_function_loader._assign``.

Bytecode only runs on the Python minor version that compiled it; the client
checks that against the daemon before shipping anything (``check``).
"""

import dis
import enum
import functools
import hashlib
import importlib
import io
import marshal
import operator
import pickle
import sys
import threading
import types
import uuid
import weakref

from ._errors import ExtraInterpretersError

__all__ = ["Job", "VersionMismatch", "dump", "dump_job", "needs_value"]

PROTOCOL = 5
LOADER_MODULE = "_extrainterpreters_loader"
# Names this process's modules in the daemon, so that two client programs
# sharing a pool interpreter never see each other's __main__ globals.
SESSION = uuid.uuid4().hex

_MAX_CODE_INFOS = 4096  # Code objects whose marshal and names are cached.
_MAX_SNAPSHOT_ITEMS = 256  # Longer containers are re-pickled, not compared.
_PENDING = ("fn", "pending")  # A digest not known yet; such blobs are dropped.
_MISSING = object()
_SELF = object()  # Stands for the object itself in its own snapshot.
_FunctionType = types.FunctionType
_LruCacheWrapper = functools._lru_cache_wrapper
# Opcodes that read or write a module global; class bodies use the *_NAME ones.
_GLOBAL_OPS = frozenset({
    "LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME", "STORE_NAME",
    "DELETE_NAME", "LOAD_FROM_DICT_OR_GLOBALS",
})
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
_ATOMS = frozenset({
    type(None), bool, int, float, complex, str, bytes, type(...),
    type(NotImplemented), types.CodeType, types.BuiltinFunctionType,
    types.ModuleType,
})


class VersionMismatch(ExtraInterpretersError, pickle.PicklingError):
    """A function must travel by value, but the daemon runs another Python.

    Bytecode is only valid on the minor version that compiled it.
    """


class Job:
    """A pickled job: the ``run`` payload and the definitions it uses.

    ``definitions`` lists ``Definition``s (``digest``, ``blob``,
    ``qualname``), dependencies before the objects needing them.
    """

    __slots__ = ("payload", "definitions")

    def __init__(self, payload, definitions):
        self.payload = payload
        self.definitions = definitions


def dump_job(fn, args, kwargs, check=None, buffer_callback=None):
    """Pickle ``(fn, args, kwargs)``; return a ``Job``.

    ``check(obj)`` is called before the first object that must travel by
    value, and may raise to refuse it. Jobs that need nothing by value
    cost one plain pickling; others are pickled a second time, by value.
    ``buffer_callback`` is pickle's (out-of-band buffers, protocol 5).
    """
    return dump((fn, args, kwargs), check, buffer_callback)


def dump(job, check=None, buffer_callback=None):
    """Pickle any object as ``dump_job`` pickles a job; return a ``Job``."""
    file = io.BytesIO()
    try:
        _ReferencePickler(file, protocol=PROTOCOL,
                          buffer_callback=buffer_callback).dump(job)
    except _NeedsValue:
        pass
    else:
        return Job(file.getvalue(), ())
    file = io.BytesIO()
    pickler = _JobPickler(file, _registry, check, buffer_callback)
    try:
        # The plain pickling above may have handed out buffers already.
        getattr(buffer_callback, "reset", lambda: None)()
        pickler.dump(job)
    except Exception as exc:
        named = pickler.explain(exc)
        if named is None:
            raise
        raise named from exc
    return Job(file.getvalue(), tuple(pickler.requires.values()))


def needs_value(obj):
    """True for a function or class the daemon cannot import by name.

    That is one from ``__main__`` or a module that is not importable by name
    (not in ``sys.modules``, or without ``__spec__``), or whose
    ``__qualname__`` does not lead back to it (lambdas, nested functions).
    """
    if (type(obj) is not _FunctionType and not isinstance(obj, type)
            and type(obj) is not _LruCacheWrapper):
        return False
    module_name = getattr(obj, "__module__", None)
    if not isinstance(module_name, str) or module_name == "__main__":
        return True
    module = sys.modules.get(module_name)
    if module is None or getattr(module, "__spec__", None) is None:
        return True
    target = module
    for part in obj.__qualname__.split("."):
        target = getattr(target, part, _MISSING)
        if target is _MISSING:
            return True
    return target is not obj


class _NeedsValue(Exception):
    """Stops the plain pickling: the job needs the by-value pickler."""


class _ReferencePickler(pickle.Pickler):
    """A plain pickler that gives up at the first by-value object.

    ``reducer_override`` is not called for ints, strings, lists, dicts and
    the like, so this is nearly as fast as ``pickle.dumps``; the by-value
    pickler's ``persistent_id`` would run for every object.
    """

    def reducer_override(self, obj):
        if needs_value(obj):
            raise _NeedsValue
        return NotImplemented


# -- references to the daemon's loader, without importing it here ------------

class _LoaderModule:
    """Pickles as ``__import__("_extrainterpreters_loader")``.

    ``__import__`` rather than ``importlib.import_module``: a builtin is
    cheaper to pickle, and every job with a closure names the loader.
    """

    def __reduce__(self):
        return __import__, (LOADER_MODULE,)


_LOADER = _LoaderModule()


class _LoaderFunction:
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


_MAKE_FUNCTION = _LoaderFunction("make_function")
_SET_FUNCTION_STATE = _LoaderFunction("set_function_state")
_MAKE_CLASS = _LoaderFunction("make_class")
_SET_CLASS_STATE = _LoaderFunction("set_class_state")
_FINISH_DEFINITION = _LoaderFunction("finish_definition")
_LRU_CACHE = _LoaderFunction("lru_cache")
_BIND = _LoaderFunction("bind")
_SET_DEFAULTS = _LoaderFunction("set_defaults")
_CELL = _LoaderFunction("cell")
_FILL_CELL = _LoaderFunction("fill_cell")


# Types reducer_override leaves to pickle: the loader references of bind.
_PLAIN_REDUCE = frozenset({_LoaderFunction, _LoaderModule,
                           types.BuiltinFunctionType})


class _Members:
    """The root of a definition blob: ``finish_definition(members, single)``."""

    __slots__ = ("members", "single")

    def __init__(self, members, single):
        self.members = members
        self.single = single

    def __reduce__(self):
        return _FINISH_DEFINITION, (self.members, self.single)


class _GroupRef:
    """A group blob, pickled as its persistent id by ``_MemberPickler``."""

    __slots__ = ("digest",)

    def __init__(self, digest):
        self.digest = digest


class _Skeleton:
    """A by-value function without its per-call parts (cells, defaults).

    What ``bind`` starts from: pickled as the function's persistent id,
    or, in the function's own definition blob, as its skeleton.
    """

    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn


def _has_parts(fn):
    """True if ``fn`` has per-call parts: closure cells or defaults."""
    return (fn.__closure__ is not None or fn.__defaults__ is not None
            or fn.__kwdefaults__ is not None)


class _MemberPickler(pickle.Pickler):
    """Pickles member ``i`` of a group as ``group[i]``."""

    def persistent_id(self, obj):
        if type(obj) is _GroupRef:
            return ("fn", obj.digest)
        return None


# -- the by-value pickler ------------------------------------------------------

class _ByValuePickler(pickle.Pickler):
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
            own = type(obj) is _FunctionType and _has_parts(obj)
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
        if kind is not _FunctionType and not isinstance(obj, type):
            return None
        key = id(obj)
        if key in self._inline or key in self._own:
            return None
        pid = self._pid(obj)
        if pid is not None and kind is _FunctionType and _has_parts(obj):
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
        if kind is _FunctionType:
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
        if kind is _LruCacheWrapper and needs_value(obj):
            parameters = obj.cache_parameters()
            return _LRU_CACHE, (obj.__wrapped__, parameters["maxsize"],
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
        info = _code_info(code)
        key = (SESSION, _module_name(fn))
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
            "annotations": _cheap_annotations(fn),
            "dict": dict(fn.__dict__),
            "cells": cells,
            "namespace": key,
            "imports": _submodules(fn, info),
            "globals": self._pickle_globals(fn, info),
        }
        args = (info.marshalled, key, fn.__name__, len(code.co_freevars))
        return (_MAKE_FUNCTION, args, state, None, None, _SET_FUNCTION_STATE)

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
            return _BIND, args
        if defaults is None or all(type(v) in _ATOMS for v in defaults):
            return _BIND, args + (defaults, kwdefaults)
        return (_BIND, args, (defaults, kwdefaults), None, None,
                _SET_DEFAULTS)

    def _pickle_globals(self, fn, info):
        """``[(name, pickle, names_members)]`` of the globals the code uses."""
        result = []
        namespace = fn.__globals__
        for name in info.global_names:
            value = namespace.get(name, _MISSING)
            if value is _MISSING or name == "__builtins__":
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
        pickler = _ByValuePickler(file, self._resolve, refs=self._refs)
        pickler.dump(value)
        return file.getvalue(), pickler.names_members

    def _reduce_class(self, cls):
        """(skeleton, state) of a class; methods are pickled inline."""
        attrs = {}
        skip = _CLASS_SKIP | _slot_names(cls)
        for name, value in cls.__dict__.items():
            if name not in skip:
                attrs[name] = value
                self._inline.update(id(fn) for fn in _methods(cls, value))
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
                     if _methods(cls, value)}
        args = (type(cls), cls.__name__, cls.__bases__, skeleton)
        return (_MAKE_CLASS, args, {"attrs": attrs}, None, None,
                _SET_CLASS_STATE)


class _JobPickler(_ByValuePickler):
    """Pickles a job; by-value objects become definitions it requires."""

    def __init__(self, file, registry, check, buffer_callback=None):
        super().__init__(file, self._define, buffer_callback=buffer_callback)
        self._registry = registry
        self._check = check
        self.requires = {}  # digest -> Definition, dependencies first

    def _define(self, obj):
        if self._check is not None:
            self._check(obj)
        entry = self._registry.define(obj)
        for required in entry.requires:
            self.requires.setdefault(required.digest, required)
        return ("fn", entry.digest)

    def explain(self, exc):
        """A PicklingError naming the closure variable or default that does
        not pickle, if one of the bound functions has one; else None."""
        for fn in self.bound:
            names = fn.__code__.co_freevars
            parts = [(f"closure variable {names[i]!r}", cell)
                     for i, cell in enumerate(fn.__closure__ or ())]
            parts += [(f"default {i}", v)
                      for i, v in enumerate(fn.__defaults__ or ())]
            parts += [(f"keyword default {k!r}", v)
                      for k, v in (fn.__kwdefaults__ or {}).items()]
            for what, value in parts:
                if type(value) is types.CellType:
                    try:
                        value = value.cell_contents
                    except ValueError:
                        continue
                try:
                    _ByValuePickler(io.BytesIO(), self._define).dump(value)
                except Exception as error:
                    return pickle.PicklingError(
                        f"cannot ship {fn.__qualname__} (module "
                        f"{fn.__module__}) by value: its {what} (a "
                        f"{type(value).__qualname__}) does not pickle: "
                        f"{error}")
        return None


def _reduce_cell(cell):
    """A closure cell: ``cell()``, then filled (it may contain its function)."""
    try:
        value = cell.cell_contents
    except ValueError:
        return _CELL, ()  # An empty cell: a variable not assigned yet.
    if type(value) in _ATOMS:
        return _CELL, (value,)
    return _CELL, (), value, None, None, _FILL_CELL


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


def _module_name(fn):
    name = fn.__globals__.get("__name__")
    if isinstance(name, str):
        return name
    return fn.__module__ if isinstance(fn.__module__, str) else "__main__"


def _cheap_annotations(fn):
    """The annotations if they are strings or builtin types, else None."""
    annotations = fn.__annotations__
    if not annotations:
        return None
    for value in annotations.values():
        if not (isinstance(value, str) or (isinstance(value, type)
                                            and value.__module__ == "builtins")):
            return None
    return dict(annotations)


def _submodules(fn, info):
    """Submodules the code reaches as attributes of a module global.

    ``import xml.etree.ElementTree`` binds only ``xml``; the daemon must
    import the submodule too, or ``xml.etree`` is an AttributeError there.
    """
    found = []
    for name in info.global_names:
        module = fn.__globals__.get(name)
        if not isinstance(module, types.ModuleType):
            continue
        prefixes = [module.__name__]
        while prefixes:
            prefix = prefixes.pop()
            for attr in info.attr_names:
                candidate = f"{prefix}.{attr}"
                if candidate in sys.modules and candidate not in found:
                    found.append(candidate)
                    prefixes.append(candidate)
    return found


def _slot_names(cls):
    """Names of the member descriptors ``__slots__`` made (name-mangled)."""
    slots = cls.__dict__.get("__slots__", ())
    if isinstance(slots, str):
        slots = (slots,)
    names = set()
    for name in slots:
        if name.startswith("__") and not name.endswith("__"):
            name = f"_{cls.__name__.lstrip('_')}{name}"
        names.add(name)
    return frozenset(names)


def _methods(cls, value):
    """Functions of a class attribute that were defined in the class body."""
    kind = type(value)
    if kind is staticmethod or kind is classmethod:
        candidates = (value.__func__,)
    elif kind is property:
        candidates = (value.fget, value.fset, value.fdel)
    else:
        candidates = (value,)
    prefix = cls.__qualname__ + "."
    return [fn for fn in candidates if type(fn) is _FunctionType
            and fn.__qualname__.startswith(prefix) and needs_value(fn)]


# -- code objects --------------------------------------------------------------

class _CodeInfo:
    """What pickling a function needs from its code, computed once."""

    __slots__ = ("code", "marshalled", "global_names", "attr_names",
                 "definition")

    def __init__(self, code):
        self.code = code  # Keeps the id() key of _code_infos valid.
        # The Definition last made for a function of this code (_Registry):
        # every closure or lambda a loop makes from it shares it.
        self.definition = None
        self.marshalled = marshal.dumps(code)
        global_names, attr_names = set(), set()
        for nested in _code_objects(code):
            attr_names.update(nested.co_names)
            global_names.update(_global_names(nested))
        self.global_names = tuple(sorted(global_names))
        self.attr_names = tuple(sorted(attr_names))


_GLOBAL_OPCODES = {dis.opmap[name]: name for name in _GLOBAL_OPS
                   if name in dis.opmap}


def _global_names(code):
    """Names of the globals one code object reads or writes.

    A scan of the raw bytecode (3.11+: two bytes per unit, caches are
    no-ops): ``dis.get_instructions`` would take ten times as long.
    """
    raw, names, found, extended = code.co_code, code.co_names, set(), 0
    for offset in range(0, len(raw), 2):
        opcode, arg = raw[offset], raw[offset + 1] | extended
        if opcode == dis.EXTENDED_ARG:
            extended = arg << 8
            continue
        extended = 0
        name = _GLOBAL_OPCODES.get(opcode)
        if name is not None:
            # LOAD_GLOBAL's low bit says whether to push NULL, since 3.11.
            found.add(names[arg >> 1 if name == "LOAD_GLOBAL" else arg])
    return found


_code_infos = {}  # id(code) -> _CodeInfo; guarded by _registry's lock


def _code_info(code):
    info = _code_infos.get(id(code))
    if info is None or info.code is not code:
        info = _CodeInfo(code)
        if len(_code_infos) >= _MAX_CODE_INFOS:
            del _code_infos[next(iter(_code_infos))]
        _code_infos[id(code)] = info
    return info


def _code_objects(code):
    """``code`` and the code objects nested in its constants, recursively."""
    stack = [code]
    while stack:
        code = stack.pop()
        yield code
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))


# -- definitions, memoized -----------------------------------------------------

class Definition:
    """One definition blob: a by-value object, or a cycle of them.

    ``requires`` lists every definition the blob needs, dependencies first
    and this one last: what a job using it must name in ``uses``.
    """

    __slots__ = ("digest", "blob", "qualname", "requires", "snapshot",
                 "deps", "safe")

    def __init__(self, blob, qualname, requires):
        self.blob = blob
        self.digest = hashlib.sha256(blob).hexdigest()
        self.qualname = qualname
        self.requires = tuple(requires) + (self,)
        self.snapshot = ()
        self.deps = ()  # (object, digest) of the by-value objects it names
        self.safe = False  # True: the snapshot alone proves it is current

    def __repr__(self):
        return f"<Definition {self.qualname} {self.digest[:12]}>"


class _Registry:
    """Definitions per code object or class, reused while they are current.

    A definition is current when everything its blob was made from is
    still the same: the code object, its globals dict, the names,
    ``__dict__``, the values of the globals it uses and, recursively, the
    definitions it refers to (with the cells and defaults of by-value
    functions among those values: the blob holds them). Values are
    compared by identity, and containers item by item, so a rebound or
    mutated global makes a new blob and digest. A function's own cells and
    defaults are not part of its definition, so all the functions one
    ``def`` or ``lambda`` makes share one. Objects reaching values that
    cannot be compared that way (instances, big containers) are pickled
    again at every use, with their code's marshal still cached.
    """

    def __init__(self):
        self._lock = threading.RLock()
        # Classes -> Definition; functions' are in their _CodeInfo.
        self._memo = weakref.WeakKeyDictionary()
        self._validating = set()

    def define(self, obj):
        """The current ``Definition`` of a by-value function or class."""
        with self._lock:
            entry = self.current(obj)
            if entry is None:
                entry = _Builder(self).build(obj)
            return entry

    def current(self, obj):
        """``obj``'s memoized definition if it is still current, else None."""
        if type(obj) is _FunctionType:
            entry = _code_info(obj.__code__).definition
        else:
            entry = self._memo.get(obj)
        if entry is None or not entry.safe:
            return None
        key = id(obj)
        if key in self._validating:
            return entry  # A cycle: its other members are being checked.
        items, _, safe = _snapshot(obj)
        if not (safe and len(items) == len(entry.snapshot)
                and all(map(operator.is_, items, entry.snapshot))):
            return None
        self._validating.add(key)
        try:
            for dep, digest in entry.deps:
                dep_entry = self.current(dep)
                if dep_entry is None or dep_entry.digest != digest:
                    return None
        finally:
            self._validating.discard(key)
        return entry

    def remember(self, obj, entry, snapshot):
        entry.snapshot, _, entry.safe = snapshot
        if type(obj) is _FunctionType:
            _code_info(obj.__code__).definition = entry
        else:
            self._memo[obj] = entry


_registry = _Registry()


class _Builder:
    """Makes the definitions of one object and what it needs, not yet current.

    Tarjan's algorithm over the by-value objects, with pickling as the way
    to find an object's edges: each object is pickled alone, and the
    persistent ids it asks for are its edges. An object whose edges all
    got digests is done with that pickle; a cycle (a strongly connected
    component) is pickled again, whole, into a group blob.
    """

    def __init__(self, registry):
        self._registry = registry
        self._index = {}  # id -> visit order
        self._low = {}  # id -> lowest visit order reachable
        self._stack = []
        self._on_stack = set()
        self._built = {}  # id -> Definition made by this builder
        self._snapshots = {}  # id -> snapshot taken before pickling

    def build(self, obj):
        self._visit(obj)
        return self._built[id(obj)]

    def _visit(self, node):
        key = id(node)
        self._index[key] = self._low[key] = len(self._index)
        self._stack.append(node)
        self._on_stack.add(key)
        self._snapshots[key] = _snapshot(node)
        requires, deps, pending = {}, [], []

        def resolve(dep):
            entry = self._edge(key, dep)
            if entry is None:
                pending.append(dep)
                return _PENDING
            _add_requires(requires, entry)
            deps.append((dep, entry.digest))
            return ("fn", entry.digest)

        blob = _dump_definition((node,), resolve, describe=node)
        if self._low[key] != self._index[key]:
            return  # Part of a cycle that an earlier object closes.
        cycle = self._pop_cycle(node)
        if len(cycle) == 1 and not pending:
            entry = Definition(blob, node.__qualname__, requires.values())
            entry.deps = tuple(deps)
            self._done(node, entry)
        else:
            self._build_group(cycle)

    def _edge(self, key, dep):
        """The dependency's Definition, or None while its cycle is open."""
        dep_key = id(dep)
        if dep_key not in self._index:
            entry = self._registry.current(dep)
            if entry is not None:
                return entry
            self._visit(dep)
            self._low[key] = min(self._low[key], self._low[dep_key])
        elif dep_key in self._on_stack:
            self._low[key] = min(self._low[key], self._index[dep_key])
        return self._built.get(dep_key)

    def _pop_cycle(self, node):
        cycle = []
        while True:
            member = self._stack.pop()
            self._on_stack.discard(id(member))
            cycle.append(member)
            if member is node:
                return cycle

    def _build_group(self, cycle):
        """One blob for the whole cycle; a ``group[i]`` blob per member."""
        members = sorted(sorted(cycle, key=lambda m: self._index[id(m)]),
                         key=_sort_key)
        requires, deps = {}, []

        def resolve(dep):
            entry = self._built.get(id(dep)) or self._registry.define(dep)
            _add_requires(requires, entry)
            deps.append((dep, entry.digest))
            return ("fn", entry.digest)

        blob = _dump_definition(members, resolve, single=False,
                                describe=members[0])
        names = ", ".join(m.__qualname__ for m in members)
        group = Definition(blob, f"cycle of {names}", requires.values())
        entries = [Definition(_dump_member(group.digest, index),
                              member.__qualname__, group.requires)
                   for index, member in enumerate(members)]
        own = [(m, e.digest) for m, e in zip(members, entries)]
        for member, entry in zip(members, entries):
            entry.deps = tuple(deps) + tuple(
                pair for pair in own if pair[0] is not member)
            self._done(member, entry)

    def _done(self, obj, entry):
        self._built[id(obj)] = entry
        self._registry.remember(obj, entry, self._snapshots[id(obj)])


def _add_requires(requires, entry):
    for required in entry.requires:
        requires.setdefault(required.digest, required)


def _sort_key(obj):
    """Orders a cycle's members the same way whichever was pickled first."""
    if type(obj) is _FunctionType:
        line = obj.__code__.co_firstlineno
    else:
        line = obj.__dict__.get("__firstlineno__", 0)
        line = line if isinstance(line, int) else 0
    module = getattr(obj, "__module__", None)
    return (module if isinstance(module, str) else "", obj.__qualname__, line)


def _dump_definition(members, resolve, *, single=True, describe):
    file = io.BytesIO()
    pickler = _ByValuePickler(file, resolve, inline=members, refs=members)
    try:
        pickler.dump(_Members(tuple(map(pickler.root, members)), single))
    except pickle.PicklingError:
        raise
    except Exception as exc:
        raise pickle.PicklingError(
            f"cannot ship {describe.__qualname__} (module "
            f"{describe.__module__}) by value: {exc}") from exc
    return file.getvalue()


def _dump_member(group_digest, index):
    file = io.BytesIO()
    _MemberPickler(file, protocol=PROTOCOL).dump(
        _GroupMember(_GroupRef(group_digest), index))
    return file.getvalue()


class _GroupMember:
    """Pickles as ``group[index]``."""

    __slots__ = ("group", "index")

    def __init__(self, group, index):
        self.group = group
        self.index = index

    def __reduce__(self):
        return operator.getitem, (self.group, self.index)


# -- snapshots: is a definition still current? ---------------------------------

def _snapshot(obj):
    """``(items, deps, safe)``: what ``obj``'s definition was made from.

    ``items`` are compared by identity later; ``deps`` are the by-value
    objects among them; ``safe`` is False when some input cannot be
    compared that way (then the definition is remade at every use).
    """
    snapshot = _Snapshot(obj)
    if type(obj) is _FunctionType:
        safe = snapshot.function(obj, parts=False)
    else:
        safe = snapshot.cls(obj)
    return tuple(snapshot.items), snapshot.deps, safe


class _Snapshot:
    """Collects the items of one object's snapshot (see ``_snapshot``)."""

    __slots__ = ("root", "items", "deps", "bound")

    def __init__(self, root):
        self.root = root
        self.items = []
        self.deps = []
        self.bound = set()  # ids of by-value functions whose parts were taken

    def function(self, fn, parts):
        """A function's definition inputs; ``parts``: its cells and defaults
        too (a method: the class definition holds them)."""
        self.items.extend((fn.__code__, fn.__globals__, fn.__name__,
                           fn.__qualname__, fn.__module__, fn.__doc__))
        # The contents, not the dict: each function has its own.
        safe = self.contents(fn.__dict__)
        if parts:
            safe &= self.parts(fn)
        namespace = fn.__globals__
        for name in _code_info(fn.__code__).global_names:
            safe &= self.value(namespace.get(name, _MISSING))
        return safe

    def parts(self, fn):
        safe = self.value(fn.__defaults__)
        safe &= self.value(fn.__kwdefaults__)
        for cell in fn.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:
                value = _MISSING
            safe &= self.value(value)
        return safe

    def cls(self, cls):
        items = self.items
        items.append(type(cls))
        safe = self.value(cls.__bases__)
        for name, value in cls.__dict__.items():
            items.append(name)
            methods = _methods(cls, value)
            if methods:
                items.append(value)
                for fn in methods:
                    safe &= self.function(fn, parts=True)
            elif name in ("__dict__", "__weakref__"):
                items.append(value)
            else:
                safe &= self.value(value)
        return safe

    def value(self, value):
        """Appends ``value`` (and a container's items); False if not comparable."""
        items = self.items
        if value is self.root:
            items.append(_SELF)
            return True
        items.append(value)
        kind = type(value)
        if kind in _ATOMS or value is _MISSING:
            return True
        if kind is _FunctionType or isinstance(value, type):
            if needs_value(value):
                self.deps.append(value)
                # A reference to a by-value function carries its parts.
                if (kind is _FunctionType and _has_parts(value)
                        and id(value) not in self.bound):
                    self.bound.add(id(value))
                    return self.parts(value)
            return True
        if kind is tuple or kind is frozenset or kind is list or kind is dict:
            return self.contents(value)
        return False

    def contents(self, value):
        """Appends a container's length and items; False if too long."""
        if len(value) > _MAX_SNAPSHOT_ITEMS:
            return False
        self.items.append(len(value))
        if type(value) is dict:
            safe = True
            for key, item in value.items():
                safe &= self.value(key)
                safe &= self.value(item)
            return safe
        return all([self.value(v) for v in value])
