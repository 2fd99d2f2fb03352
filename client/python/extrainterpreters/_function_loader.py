"""Unpickles jobs inside the daemon's interpreters (module _extrainterpreters_loader).

The daemon compiles this module into every worker interpreter; clients
import it under the same name to unpickle queue items and results that hold
code shipped by value (``_queue_items``, ``_byvalue_result``), so both
sides are one piece of code. What the daemon cannot import by name
(``__main__``, the REPL, lambdas, closures, the user's own modules) the
client's ``_byvalue`` ships by value:

    job pickle  --("fn", digest)-->  definition blob  --("fn", digest)--> ...
    (run payload)                    (define payload,   (other definitions
                                      one per object)     it needs)

:func:`loads` turns ``("fn", digest)`` into the object: from this
interpreter's cache, or rebuilt from the job's definitions (after checking
the digest) and cached, so it is rebuilt once per interpreter, not per call.
A blob is a pickle of ``finish_definition(members, single)``: the object
(or every member of a cycle) pickled with the helpers below, skeleton
first and state second, so cycles resolve through the pickle memo. A
function's cells and defaults are not in its definition: ``bind`` makes a
new function of the cached one's code and globals with them, so one
definition serves every closure a loop makes. Globals travel as small
pickles apart, assigned once the job is unpickled (see
``_Definition.assign_globals`` for which value wins) into the module object
kept per client module (:func:`namespace`). A module the client ships by
value is that object, named and placed as in the client (:func:`module`,
with the package's ``_loader_modules``): while that client's jobs run it
is in ``sys.modules``, so ``import helpers`` and relative imports in
shipped code find it.

Standard library only, but for that module of the client package, which
the daemon provides to every interpreter: this runs before any user code
is importable.
"""
import abc
import builtins
import collections
import functools
import importlib
import io
import marshal
import sys
# The C module, not pickle.py: that one imports re, enum and more, about
# 0.6 MiB in every interpreter; _pickle has all this module uses.
import _pickle as pickle
import types
import weakref

import _typing  # TypeVar and its kin, without typing.py


def _sha256(data):
    # Imported on first use: hashlib loads OpenSSL, which costs every
    # interpreter memory while most never rebuild a function.
    import hashlib
    return hashlib.sha256(data)

__all__ = ["load", "loads", "origin", "pickler", "DefinitionError"]

MAX_DEFINITIONS = 4096  # Rebuilt definitions cached per interpreter (LRU).
MAX_NAMESPACES = 1024  # Client modules kept per interpreter.
MAX_NAMES = 16384  # Qualnames remembered for error messages.

_definitions = collections.OrderedDict()  # digest -> _Definition, LRU
_qualnames = collections.OrderedDict()  # digest -> qualname, for errors
_namespaces = collections.OrderedDict()  # (session, module) -> module object
_fingerprints = {}  # (session, module) -> {global name: sha256 of its pickle}
_builds = []  # Stack of _Build: the definitions being rebuilt, innermost last.
_origins = weakref.WeakKeyDictionary()  # rebuilt class/function -> (module, qualname)
# Places client modules in sys.modules; imported with the first one.
_PLACEMENT = "extrainterpreters._loader_modules"


class DefinitionError(pickle.UnpicklingError):
    """A job's function definition is missing, corrupt or malformed."""


def loads(data, defs, buffers=None):
    """Unpickles the job in ``data`` (a buffer); returns ``(fn, args, kwargs)``.

    ``defs`` is None or maps digests (hex str) to definition blobs (bytes):
    those the job's ``run`` request named in ``uses``. Jobs without
    definitions take the plain ``pickle.loads`` path, which reads the
    shared buffer without copying it. Once it is loaded, sys.modules holds
    the client modules this job uses and no other client's.
    """
    placement = sys.modules.get(_PLACEMENT)
    if placement is not None:
        placement.begin_job()
    return load(data, defs, buffers)


def load(data, defs, buffers=None):
    """Unpickles ``data``, which may name the definitions in ``defs``: a
    job, or a queue item or a result that carries its definitions."""
    if defs is None:
        try:
            return pickle.loads(data, buffers=buffers)
        except pickle.UnpicklingError as exc:
            if "persistent" not in str(exc):
                raise
            defs = {}  # A definition reference without 'uses': explain it.
    value = _Unpickler(data, defs, buffers=buffers).load()
    for digest in defs:
        definition = _definitions.get(digest)
        if definition is not None:
            definition.assign_globals(defs)
    return value


def pickler(file, protocol, buffer_callback=None):
    """A Pickler for what a job returns or raises (``buffer_callback``:
    protocol-5 out-of-band buffers): the client package's, which the
    daemon provides to every interpreter (``_byvalue_result``)."""
    from extrainterpreters._byvalue_result import ResultPickler
    return ResultPickler(file, protocol=protocol, buffer_callback=buffer_callback)


def origin(obj):
    """``(module, qualname)`` of a function or class rebuilt here from a
    client's definition, by which the client finds its own; else None."""
    return _origins.get(obj)


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
    _qualnames[definition.digest] = (getattr(value, "__qualname__", None)
                                     or getattr(value, "__name__", "?"))
    if len(_qualnames) > MAX_NAMES:
        _qualnames.popitem(last=False)


class _Definition:
    """A rebuilt definition, and the global variables it brought.

    Its globals are assigned for every job that uses it, not only when it
    is rebuilt: the client may have changed a global and then changed it
    back, making a definition that is cached here current again while the
    shared namespace holds the other value.
    """

    __slots__ = ("digest", "value", "members", "assignments", "modules")

    def __init__(self, digest):
        self.digest = digest
        self.value = None
        self.members = ()
        self.assignments = []  # (namespace key, name, value pickle, fingerprint)
        self.modules = []  # client modules it placed in sys.modules

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
        fingerprint of the client value it last received per name. The
        client modules it uses go (back) into sys.modules.
        """
        for client_module in self.modules:
            _placement().install(client_module)
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
    The dict is a module object's (:func:`module` names and places it).
    """
    return _client_module(key).__dict__


def _client_module(key):
    found = _namespaces.get(key)
    if found is None:
        session, name = key
        found = types.ModuleType(name)
        found.__builtins__ = builtins
        _namespaces[key] = found
        _fingerprints[key] = {}
        if len(_namespaces) > MAX_NAMESPACES:
            old, _ = _namespaces.popitem(last=False)
            _fingerprints.pop(old, None)
    else:
        _namespaces.move_to_end(key)
    return found


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
    for name in state["imports"]:
        importlib.import_module(name)
    _remember_origin(fn)
    build = _current_build("set_function_state")
    for key, name, payload, names_members in state["globals"]:
        build.add_global(key, name, payload, names_members)


def module(key, meta, parent=None):
    """The module object of a client module, named and placed as there.

    ``meta``: its ``package``, ``file``, ``doc``, ``path`` (a package's
    ``__path__``, so relative imports and submodules resolve), and whether
    it goes in sys.modules (``install``). Its attributes come as globals.
    """
    found = _client_module(key)
    placement = _placement()
    placement.describe(found, meta, parent)
    if meta.get("install"):
        placement.install(found)
        if _builds:
            _builds[-1].modules.append(found)
    return found


def _placement():
    return importlib.import_module(_PLACEMENT)


def set_module_state(client_module, state):
    """A module value's attributes: globals of its namespace."""
    build = _current_build("set_module_state")
    for key, name, payload, names_members in state["globals"]:
        build.add_global(key, name, payload, names_members)


def type_param(kind, name, constraints, options, module_name, named=False):
    """A TypeVar, ParamSpec or TypeVarTuple, made again. ``named``: the
    client finds it as ``module_name.name``, so a result returns it by
    that name (``origin``), whatever else this interpreter rebuilt."""
    param = getattr(_typing, kind)(name, *constraints, **options)
    param.__module__ = module_name
    if named:
        _origins[param] = (module_name, name)
    return param


def _remember_origin(obj):
    """Results name a rebuilt function or class as the client does, when
    its qualname leads there (not a lambda, nor a local)."""
    if "<" not in obj.__qualname__:
        _origins[obj] = (obj.__module__, obj.__qualname__)


def make_class(metaclass, name, bases, skeleton):
    """A class skeleton: what must exist at creation (``__slots__``...)."""
    return types.new_class(name, bases, {"metaclass": metaclass},
                           lambda ns: ns.update(skeleton))


def set_class_state(cls, state):
    """Sets a class's attributes (methods...) on its skeleton."""
    for name, value in state["attrs"].items():
        setattr(cls, name, value)
    for registered in state.get("abc_registry", ()):
        cls.register(registered)
    if isinstance(cls, abc.ABCMeta):
        abc.update_abstractmethods(cls)
    _remember_origin(cls)


def bind(fn, cells, defaults=None, kwdefaults=None, imports=()):
    """A new function with ``fn``'s code, globals and names, and these parts.

    ``fn`` is a rebuilt definition; ``cells`` come from :func:`cell` (or
    None). It shares ``fn``'s ``__dict__``, as the functions of one
    definition did when they were one object. ``imports``: submodules the
    code reaches through modules in its cells.
    """
    for name in imports:
        importlib.import_module(name)
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
