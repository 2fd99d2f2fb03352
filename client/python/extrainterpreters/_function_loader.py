"""Unpickles jobs inside the daemon's interpreters (module _extrainterpreters_loader).

The daemon compiles this module into every worker interpreter; clients
import it under the same name to unpickle queue items that hold functions
shipped by value (``_queue``), so both sides are one piece of code. Jobs whose
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
A function's closure cells and defaults are not in its definition: a
pickle referring to such a function says ``bind(("fn", digest), cells,
defaults, kwdefaults)``, which makes a new function of the cached one's
code and globals, so one definition serves every closure a loop makes.
Global variables travel as separate small pickles, assigned into one shared
dict per client module (:func:`namespace`) once the job is unpickled (they
may refer to members), for every job that uses them: see
``_Definition.assign_globals`` for which value wins.

Standard library only: this runs before any user code is importable.
"""

import abc
import builtins
import collections
import functools
import importlib
import io
import marshal
import operator
# The C module, not pickle.py: that one imports re, enum and more, about
# 0.6 MiB in every interpreter; _pickle has all this module uses.
import _pickle as pickle
import types
import weakref


def _sha256(data):
    # Imported on first use: hashlib loads OpenSSL, which costs every
    # interpreter memory while most never rebuild a function.
    import hashlib
    return hashlib.sha256(data)

__all__ = ["loads", "pickler", "DefinitionError"]

MAX_DEFINITIONS = 4096  # Rebuilt definitions cached per interpreter (LRU).
MAX_NAMESPACES = 1024  # Client modules' globals dicts kept per interpreter.
MAX_NAMES = 16384  # Qualnames remembered for error messages.

_definitions = collections.OrderedDict()  # digest -> _Definition, LRU
_qualnames = collections.OrderedDict()  # digest -> qualname, for errors
_namespaces = collections.OrderedDict()  # (session, module) -> globals dict
_fingerprints = {}  # (session, module) -> {global name: sha256 of its pickle}
_builds = []  # Stack of _Build: the definitions being rebuilt, innermost last.
_origins = weakref.WeakKeyDictionary()  # rebuilt class/function -> (module, qualname)
_MISSING = object()


class DefinitionError(pickle.UnpicklingError):
    """A job's function definition is missing, corrupt or malformed."""


def loads(data, defs, buffers=None):
    """Unpickles the job in ``data`` (a buffer); returns ``(fn, args, kwargs)``.

    ``defs`` is None or maps digests (hex str) to definition blobs (bytes):
    those the job's ``run`` request named in ``uses``. Jobs without
    definitions take the plain ``pickle.loads`` path, which reads the
    shared buffer without copying it.
    """
    if defs is None:
        try:
            return pickle.loads(data, buffers=buffers)
        except pickle.UnpicklingError as exc:
            if "persistent" not in str(exc):
                raise
            defs = {}  # A definition reference without 'uses': explain it.
    job = _Unpickler(data, defs, buffers=buffers).load()
    for digest in defs:
        definition = _definitions.get(digest)
        if definition is not None:
            definition.assign_globals(defs)
    return job


def pickler(file, protocol, buffer_callback=None):
    """A Pickler for what a job returns or raises.

    Classes and functions rebuilt here pickle by name, as the client's own
    (``__main__.Point`` comes back as the client's ``Point``); plain pickle
    would refuse them, since ``__main__`` here has no ``Point``. Until this
    interpreter rebuilt one, the plain Pickler is enough and faster: a
    Python reducer_override is called for nearly every object.
    ``buffer_callback`` is pickle's (protocol-5 out-of-band buffers).
    """
    if _origins:
        return _ResultPickler(file, protocol=protocol, buffer_callback=buffer_callback)
    return pickle.Pickler(file, protocol=protocol, buffer_callback=buffer_callback)


class _ResultPickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, type) or type(obj) is types.FunctionType:
            origin = _origins.get(obj)
            if origin is not None:
                module, qualname = origin
                return operator.attrgetter(qualname), (_ModuleRef(module),)
        return NotImplemented


class _ModuleRef:
    """Unpickles as the module named ``name``, imported (in the client)."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return importlib.import_module, (self.name,)


class _Unpickler(pickle.Unpickler):
    """Resolves ``("fn", digest)``, and ``("member", i)`` in global values."""

    def __init__(self, data, defs, members=None, buffers=None):
        super().__init__(io.BytesIO(data), buffers=buffers)
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
    definition = _definitions.get(digest)
    if definition is not None:
        _definitions.move_to_end(digest)
        return definition.value
    blob = defs.get(digest) if defs else None
    if blob is None:
        name = _qualnames.get(digest, "qualname unknown")
        raise DefinitionError(
            f"function definition {digest} ({name}) is neither cached in this "
            f"interpreter nor among the job's definitions: the run request must "
            f"name it in 'uses' after a 'define' on the same connection")
    actual = _sha256(blob).hexdigest()
    if actual != digest:
        raise DefinitionError(f"refusing function definition {digest}: its payload "
                              f"has SHA-256 {actual}")
    build = _Definition(digest)
    _builds.append(build)
    try:
        build.value = _Unpickler(blob, defs).load()
    finally:
        _builds.pop()
    build.assign_globals(defs)  # Its globals may need definitions of their own.
    _remember(build)
    return build.value


def _remember(definition):
    _definitions[definition.digest] = definition
    if len(_definitions) > MAX_DEFINITIONS:
        _definitions.popitem(last=False)
    value = definition.value
    _qualnames[definition.digest] = getattr(value, "__qualname__", type(value).__qualname__)
    if len(_qualnames) > MAX_NAMES:
        _qualnames.popitem(last=False)


class _Definition:
    """A rebuilt definition, and the global variables it brought.

    Its globals are assigned for every job that uses it, not only when it
    is rebuilt: the client may have changed a global and then changed it
    back, making a definition that is cached here current again while the
    shared namespace holds the other value.
    """

    __slots__ = ("digest", "value", "members", "assignments")

    def __init__(self, digest):
        self.digest = digest
        self.value = None
        self.members = ()
        self.assignments = []  # (namespace key, name, value pickle, fingerprint)

    def add_global(self, key, name, payload, names_members):
        """Records a global of a member; ``names_members``: the value refers to
        this definition's own members, so it is only the same value within it."""
        salt = self.digest.encode() if names_members else b""
        fingerprint = _sha256(salt + payload).digest()
        self.assignments.append((key, name, payload, fingerprint))

    def assign_globals(self, defs):
        """Sets the globals whose client value this interpreter lacks.

        A global keeps the value jobs here gave it (module state) until the
        client ships a different value for it: each namespace remembers the
        fingerprint of the client value it last received per name.
        """
        for key, name, payload, fingerprint in self.assignments:
            ns = namespace(key)
            seen = _fingerprints[key]
            if seen.get(name) == fingerprint and name in ns:
                continue
            ns[name] = _Unpickler(payload, defs, self.members).load()
            seen[name] = fingerprint


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
    _origins[fn] = (fn.__module__, fn.__qualname__)
    build = _current_build("set_function_state")
    for name, payload, names_members in state["globals"]:
        build.add_global(state["namespace"], name, payload, names_members)


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
    _origins[cls] = (cls.__module__, cls.__qualname__)


def bind(fn, cells, defaults=None, kwdefaults=None):
    """A new function with ``fn``'s code, globals and names, and these parts.

    ``fn`` is a rebuilt definition; ``cells`` come from :func:`cell` (or
    None). It shares ``fn``'s ``__dict__``, as the functions of one
    definition did when they were one object.
    """
    new = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__,
                             defaults, cells)
    if kwdefaults is not None:
        new.__kwdefaults__ = kwdefaults
    new.__qualname__ = fn.__qualname__
    new.__module__ = fn.__module__
    new.__doc__ = fn.__doc__
    annotations = fn.__annotations__
    if annotations:
        new.__annotations__ = annotations
    if fn.__dict__:
        new.__dict__ = fn.__dict__
    origin = _origins.get(fn)
    if origin is not None:
        _origins[new] = origin
    return new


def set_defaults(fn, defaults):
    """Sets ``(__defaults__, __kwdefaults__)`` of a function from :func:`bind`."""
    fn.__defaults__, fn.__kwdefaults__ = defaults


def cell(*value):
    """A closure cell for :func:`bind`: holding ``value``, or empty."""
    return types.CellType(*value)


def fill_cell(cell, value):
    """Fills a cell once it is in the pickle memo (it may hold its function)."""
    cell.cell_contents = value


def lru_cache(fn, maxsize, typed):
    """``functools.lru_cache`` around a rebuilt function (a fresh cache)."""
    return functools.lru_cache(maxsize=maxsize, typed=typed)(fn)


def finish_definition(members, single):
    """Ends a rebuild: keeps the members for the globals that name them.

    Returns the one member, or the tuple of a cycle's members (each of
    which the client then defines as ``group[i]``). The globals are
    assigned once the whole blob is unpickled.
    """
    _current_build("finish_definition").members = members
    return members[0] if single else members
