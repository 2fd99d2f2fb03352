"""Pickles jobs whose functions the daemon cannot import: by value.

Pickle refers to a function by module and name, and the daemon imports it.
That fails for functions typed at the REPL or defined in ``__main__``, for
lambdas, closures and nested functions, and for the user's own modules,
which are not on the daemon's ``sys.path`` (``_byvalue_rule`` compares
where each module lives with the path the daemon announces). Those travel
by value instead; a user's module arrives as a module object of its own
name in the daemon's ``sys.modules`` (``_byvalue_modules``)::

    client                                      daemon interpreter
    ------                                      ------------------
    dump_job(fn, args, kwargs)
      plain pickle; it stops at the first
      function, class or module needing
      by-value (_byvalue_code.needs_value,
      under the daemon's _byvalue_rule)
      before the first: check(obj), the
      daemon's minor version (_byvalue_version)
      _JobPickler, a ByValuePickler             _extrainterpreters_loader.loads
      (_byvalue_pickler): each such object        (_function_loader.py):
        is persistent id ("fn", digest) ----->    ("fn", digest): its cache, or
        or, for a function with cells or          rebuild from the blob and
        defaults, bind(("fn", digest),            cache it (make_function,
        cells, defaults)                          set_function_state, ...);
      _byvalue_registry.Registry: a               bind: a new function of the
        definition blob per object (code as       cached one's code and globals
        marshal, globals, names...), named by
        the blob's SHA-256, memoized per code
        object while its snapshot holds
        (_byvalue_snapshot)
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
checks that against the daemon before shipping anything (``check``, from
``_byvalue_version.bytecode_check``). The daemon ships classes and
functions made in a job back the same way (``_byvalue_result``).
"""

import importlib
import io
import pickle
import types

from ._byvalue_code import FunctionType, builtin_type_reduce, needs_value
from ._byvalue_pickler import PROTOCOL, ByValuePickler
from ._byvalue_reducers import method_needs_value
from ._byvalue_registry import add_requires, registry
from ._byvalue_rule import rule_for
from ._byvalue_version import VersionMismatch

__all__ = ["Job", "VersionMismatch", "dump", "dump_job", "needs_value"]


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
    job = (fn, args, kwargs)
    if _plain_job(fn, args, kwargs, check):
        try:
            return Job(pickle.dumps(job, PROTOCOL, buffer_callback=buffer_callback), ())
        except Exception:
            # The long way says what is wrong, as it always did; buffers
            # handed out meanwhile are forgotten.
            getattr(buffer_callback, "reset", lambda: None)()
    return dump(job, check, buffer_callback)


# Exact types that pickle writes without asking ``reducer_override``
# (pickle's documentation of it): they hold nothing to ship by value.
_PLAIN_TYPES = frozenset({type(None), bool, int, float, str, bytes})
# Items of a list, tuple or dict argument looked at; a longer one (a map
# chunk of plain items, say) takes the long way. Its scan costs about a
# tenth of the pickling it may spare.
_PLAIN_SCAN = 4096
_BuiltinFunctionType = types.BuiltinFunctionType
_ModuleType = types.ModuleType


def _plain_job(fn, args, kwargs, check):
    """True if plain ``pickle`` writes the job exactly as ``dump`` would:
    ``fn`` is a function the daemon imports by name (a module's builtin,
    or a function the rule sends by reference), and every argument is of
    ``_PLAIN_TYPES``, such a function, or a list, tuple or dict of plain
    values (a map chunk: ``(fn, items, star)``). The cheap path of most
    small jobs: no pickler subclass, no ``reducer_override``. Decided anew
    for each job, so nothing here goes stale."""
    if not _by_reference(fn, check):
        return False
    for value in args:  # the common case: a few numbers and strings
        if type(value) not in _PLAIN_TYPES:
            if not _plain_values(args, check):
                return False
            break
    return not kwargs or _plain_values(kwargs.values(), check)


def _by_reference(fn, check):
    """True for a function that pickles by its name, as ``dump`` would
    write it: a module's builtin, or a function the rule does not send by
    value."""
    kind = type(fn)
    if kind is _BuiltinFunctionType:
        owner = fn.__self__
        # not a bound method: its object would be pickled too
        return owner is None or type(owner) is _ModuleType
    return kind is FunctionType and not needs_value(
        fn, getattr(check, "rule", None) or rule_for(None))


def _plain_array(value, check):
    """True for a NumPy array that plain ``pickle`` writes as ``dump``
    would: exactly ``numpy.ndarray`` (its reduction names only NumPy's own
    functions and types), of a plain dtype (no Python objects, fields or
    metadata, which could hold what goes by value), while the rule sends
    NumPy by reference. The long way cost ~40 us more per job, a tenth
    of a small process-lane job's round trip. (The client never imports
    NumPy: a caller that passes an array has.)"""
    kind = type(value)
    if kind.__name__ != "ndarray" or kind.__module__ != "numpy":
        return False
    dtype = value.dtype
    if dtype.hasobject or dtype.fields is not None or dtype.metadata is not None:
        return False
    return not (getattr(check, "rule", None) or rule_for(None)).by_value("numpy")


def _plain_values(values, check):
    for value in values:
        kind = type(value)
        if kind in _PLAIN_TYPES:
            continue
        if kind is tuple or kind is list:
            items = value
        elif kind is dict:
            if len(value) > _PLAIN_SCAN or not _plain_values(value.keys(),
                                                              check):
                return False
            items = value.values()
        elif kind is _BuiltinFunctionType or kind is FunctionType:
            if _by_reference(value, check):
                continue
            return False
        elif _plain_array(value, check):
            continue
        else:
            return False
        if len(items) > _PLAIN_SCAN or not set(map(type, items)) <= _PLAIN_TYPES:
            return False
    return True


def dump(job, check=None, buffer_callback=None, origin=None):
    """Pickle any object as ``dump_job`` pickles a job; return a ``Job``.

    ``check.rule``, if there, is the ``ModuleRule`` of the daemon the job
    goes to (``_byvalue_version.bytecode_check`` makes such checks); else
    only modules made at run time and ``__main__`` go by value.
    ``origin``: see ``ByValuePickler``.
    """
    rule = getattr(check, "rule", None) or rule_for(None)
    file = io.BytesIO()
    try:
        _ReferencePickler(file, rule, protocol=PROTOCOL,
                          buffer_callback=buffer_callback).dump(job)
    except Exception:
        pass  # _NeedsValue, or what only the by-value pickler handles
    else:
        return Job(file.getvalue(), ())
    file = io.BytesIO()
    pickler = _JobPickler(file, registry, check, rule, buffer_callback,
                          origin)
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


class _NeedsValue(Exception):
    """Stops the plain pickling: the job needs the by-value pickler."""


class _ReferencePickler(pickle.Pickler):
    """A plain pickler that gives up at the first by-value object.

    ``reducer_override`` is not called for ints, strings, lists, dicts and
    the like, so this is nearly as fast as ``pickle.dumps``; the by-value
    pickler's ``persistent_id`` would run for every object.
    """

    def __init__(self, file, rule, **kwargs):
        super().__init__(file, **kwargs)
        self._rule = rule

    def reducer_override(self, obj):
        kind = type(obj)
        if kind is types.ModuleType:
            if self._rule.module_by_value(obj):
                raise _NeedsValue
            return importlib.import_module, (obj.__name__,)
        if kind is types.MethodType:
            if method_needs_value(obj, self._rule):
                raise _NeedsValue
            return NotImplemented
        if needs_value(obj, self._rule):
            raise _NeedsValue
        if isinstance(obj, type):
            return builtin_type_reduce(obj) or NotImplemented
        return NotImplemented


class _JobPickler(ByValuePickler):
    """Pickles a job; by-value objects become definitions it requires."""

    def __init__(self, file, registry, check, rule, buffer_callback=None,
                 origin=None):
        super().__init__(file, self._define, rule=rule, origin=origin,
                         buffer_callback=buffer_callback)
        self._registry = registry
        self._check = check
        self.requires = {}  # digest -> Definition, dependencies first

    def _define(self, obj):
        if self._check is not None:
            self._check(obj)
        entry = self._registry.define(obj, self.rule)
        add_requires(self.requires, entry)
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
                    ByValuePickler(io.BytesIO(), self._define,
                                   rule=self.rule).dump(value)
                except Exception as error:
                    return pickle.PicklingError(
                        f"cannot ship {fn.__qualname__} (module "
                        f"{fn.__module__}) by value: its {what} (a "
                        f"{type(value).__qualname__}) does not pickle: "
                        f"{error}")
        return None
