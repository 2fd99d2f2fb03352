"""Unpickles jobs inside the daemon's interpreters (module _extrainterpreters_loader).

The daemon compiles this module into every worker interpreter. Jobs whose
functions the daemon cannot import (``__main__``, the REPL, lambdas,
closures) arrive with those functions shipped by value by the client's
``_byvalue`` module:

    job pickle  --("fn", digest)-->  definition blob  --("fn", digest)--> ...
    (run payload)                    (define payload,   (other definitions
                                      one per function)   it needs)

:func:`loads` unpickles a job with an Unpickler whose ``persistent_load``
turns ``("fn", digest)`` into the function: from this interpreter's cache,
or rebuilt from the job's definitions (after checking the digest) and then
cached, so a function is rebuilt once per interpreter, not once per call.

A definition blob is a pickle of ``finish_definition(members, single)``:
``members`` are the function (or, for mutually recursive helpers, all the
functions and classes of the cycle) pickled by value with the helpers below
(skeleton first, state second, so cycles resolve through the pickle memo).
Global variables travel as separate small pickles and are assigned into one
shared dict per client module (:func:`namespace`), after every member
exists, since they may refer to members.

Standard library only: this runs before any user code is importable.
"""

import abc
import builtins
import collections
import hashlib
import importlib
import io
import marshal
import pickle
import types

__all__ = ["loads", "DefinitionError"]

MAX_DEFINITIONS = 4096  # Rebuilt definitions cached per interpreter (LRU).
MAX_NAMESPACES = 1024  # Client modules' globals dicts kept per interpreter.
MAX_NAMES = 16384  # Qualnames remembered for error messages.

_definitions = collections.OrderedDict()  # digest -> rebuilt object, LRU
_qualnames = collections.OrderedDict()  # digest -> qualname, for errors
_namespaces = collections.OrderedDict()  # (session, module) -> globals dict
_fingerprints = {}  # (session, module) -> {global name: sha256 of its pickle}
_builds = []  # Stack of _Build: the definitions being rebuilt, innermost last.
_MISSING = object()


class DefinitionError(pickle.UnpicklingError):
    """A job's function definition is missing, corrupt or malformed."""


def loads(data, defs):
    """Unpickles the job in ``data`` (a buffer); returns ``(fn, args, kwargs)``.

    ``defs`` is None or maps digests (hex str) to definition blobs (bytes):
    those the job's ``run`` request named in ``uses``. Jobs without
    definitions take the plain ``pickle.loads`` path, which reads the
    shared buffer without copying it.
    """
    if defs is None:
        try:
            return pickle.loads(data)
        except pickle.UnpicklingError as exc:
            if "persistent" not in str(exc):
                raise
            defs = {}  # A definition reference without 'uses': explain it.
    return _Unpickler(data, defs).load()


class _Unpickler(pickle.Unpickler):
    """Resolves ``("fn", digest)``, and ``("member", i)`` in global values."""

    def __init__(self, data, defs, members=None):
        super().__init__(io.BytesIO(data))
        self._defs = defs
        self._members = members

    def persistent_load(self, pid):
        if type(pid) is tuple and len(pid) == 2:
            kind, key = pid
            if kind == "fn" and type(key) is str:
                return _definition(key, self._defs)
            if kind == "member" and self._members is not None and type(key) is int:
                return self._members[key]
        raise DefinitionError(f"unknown persistent id {pid!r:.200} in a job pickle: "
                              f"only ('fn', digest) refers to a definition")


def _definition(digest, defs):
    """The object defined by ``digest``: cached, or rebuilt from ``defs``."""
    obj = _definitions.get(digest, _MISSING)
    if obj is not _MISSING:
        _definitions.move_to_end(digest)
        return obj
    blob = defs.get(digest) if defs else None
    if blob is None:
        name = _qualnames.get(digest, "qualname unknown")
        raise DefinitionError(
            f"function definition {digest} ({name}) is neither cached in this "
            f"interpreter nor among the job's definitions: the run request must "
            f"name it in 'uses' after a 'define' on the same connection")
    actual = hashlib.sha256(blob).hexdigest()
    if actual != digest:
        raise DefinitionError(f"refusing function definition {digest}: its payload "
                              f"has SHA-256 {actual}")
    _builds.append(_Build(defs))
    try:
        obj = _Unpickler(blob, defs).load()
    finally:
        _builds.pop()
    _remember(digest, obj)
    return obj


def _remember(digest, obj):
    _definitions[digest] = obj
    if len(_definitions) > MAX_DEFINITIONS:
        _definitions.popitem(last=False)
    _qualnames[digest] = getattr(obj, "__qualname__", type(obj).__qualname__)
    if len(_qualnames) > MAX_NAMES:
        _qualnames.popitem(last=False)


class _Build:
    """One definition being rebuilt: global assignments wait for its members."""

    __slots__ = ("defs", "assignments")

    def __init__(self, defs):
        self.defs = defs
        self.assignments = []  # (namespace key, name, value pickle, tracked)


def _current_build(what):
    if not _builds:
        raise DefinitionError(f"{what} was called outside a function definition: "
                              f"by-value functions only travel in 'define' payloads")
    return _builds[-1]


def namespace(key):
    """The globals dict shared by the functions of one client module.

    ``key`` is ``(client session, module name)``: functions shipped from the
    same module of the same client process see each other and the module
    state they set, while other clients' same-named modules stay apart.
    """
    ns = _namespaces.get(key)
    if ns is None:
        session, module = key
        ns = {"__name__": module, "__builtins__": builtins}
        _namespaces[key] = ns
        _fingerprints[key] = {}
        if len(_namespaces) > MAX_NAMESPACES:
            old, _ = _namespaces.popitem(last=False)
            _fingerprints.pop(old, None)
    else:
        _namespaces.move_to_end(key)
    return ns


# -- rebuild helpers, referenced by name from the client's pickles -----------

def make_function(code, namespace_key, name, ncells):
    """A function skeleton: code and globals, closure cells still empty.

    Its state (defaults, cells, globals...) comes later from
    :func:`set_function_state`, once the skeleton is in the pickle memo,
    so a function can refer to itself.
    """
    code = marshal.loads(code)
    cells = tuple(types.CellType() for _ in range(ncells)) if ncells else None
    return types.FunctionType(code, namespace(namespace_key), name, None, cells)


def set_function_state(fn, state):
    """Fills a skeleton from :func:`make_function`; globals wait for the build."""
    fn.__qualname__ = state["qualname"]
    fn.__module__ = state["module"]
    fn.__doc__ = state["doc"]
    fn.__defaults__ = state["defaults"]
    fn.__kwdefaults__ = state["kwdefaults"]
    if state["annotations"] is not None:
        fn.__annotations__ = state["annotations"]
    fn.__dict__.update(state["dict"])
    for index, value in state["cells"]:
        fn.__closure__[index].cell_contents = value
    for module in state["imports"]:
        importlib.import_module(module)
    build = _current_build("set_function_state")
    key = state["namespace"]
    for name, payload, tracked in state["globals"]:
        build.assignments.append((key, name, payload, tracked))


def make_class(metaclass, name, bases, skeleton):
    """A class skeleton: what must exist at creation (``__slots__``...)."""
    return types.new_class(name, bases, {"metaclass": metaclass},
                           lambda ns: ns.update(skeleton))


def set_class_state(cls, state):
    """Sets a class's attributes (methods...) on its skeleton."""
    for name, value in state["attrs"].items():
        setattr(cls, name, value)
    if isinstance(cls, abc.ABCMeta):
        abc.update_abstractmethods(cls)


def finish_definition(members, single):
    """Assigns the definition's globals, now that its members exist.

    Returns the one member, or the tuple of a cycle's members (each of
    which the client then defines as ``group[i]``).
    """
    build = _current_build("finish_definition")
    for key, name, payload, tracked in build.assignments:
        _assign(key, name, payload, tracked, members, build.defs)
    build.assignments.clear()
    return members[0] if single else members


def _assign(key, name, payload, tracked, members, defs):
    """Sets one global unless this interpreter already has that client value.

    ``tracked`` globals hold plain data: a rebuild does not overwrite the
    value the interpreter's jobs have since set (module state) unless the
    client's value changed since it was last shipped here. Globals that
    refer to shipped functions or classes are always set.
    """
    ns = namespace(key)
    seen = _fingerprints[key]
    fingerprint = hashlib.sha256(payload).digest() if tracked else None
    if tracked and name in ns and seen.get(name) == fingerprint:
        return
    ns[name] = _Unpickler(payload, defs, members).load()
    if tracked:
        seen[name] = fingerprint
    else:
        seen.pop(name, None)
