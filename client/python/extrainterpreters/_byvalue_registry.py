"""Definition blobs, one per by-value object (or cycle), reused while current.

A ``Definition`` is a blob the daemon's loader rebuilds one object from
(a function, a class, a module, a type parameter), named by the blob's
SHA-256. ``Registry`` keeps the definition of each code object and of each
other object, and hands it out again while the snapshot it was made from
(``_byvalue_snapshot``) still holds, under the same ``ModuleRule``;
``_Builder`` makes new ones, dependencies first, pickling each object alone
with ``ByValuePickler`` and a cycle of objects that need each other as one
group blob.
"""

import hashlib
import io
import operator
import pickle
import threading
import weakref

from ._byvalue_code import FunctionType, code_info, display_name
from ._byvalue_pickler import PROTOCOL, ByValuePickler
from ._byvalue_snapshot import snapshot_of
from ._loader_refs import FINISH_DEFINITION

__all__ = ["Definition", "Registry", "add_requires", "registry"]

_PENDING = ("fn", "pending")  # A digest not known yet; such blobs are dropped.


class Definition:
    """One definition blob: a by-value object, or a cycle of them.

    ``requires`` lists every definition the blob needs, dependencies first
    and this one last: what a job using it must name in ``uses``.
    """

    __slots__ = ("digest", "blob", "qualname", "requires", "snapshot",
                 "deps", "safe", "rule")

    def __init__(self, blob, qualname, requires):
        self.blob = blob
        self.digest = hashlib.sha256(blob).hexdigest()
        self.qualname = qualname
        self.requires = tuple(requires) + (self,)
        self.snapshot = ()
        self.deps = ()  # (object, digest) of the by-value objects it names
        self.safe = False  # True: the snapshot alone proves it is current
        self.rule = None  # The ModuleRule it was made under.

    def __repr__(self):
        return f"<Definition {self.qualname} {self.digest[:12]}>"


class Registry:
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
        # Classes, modules... -> Definition; functions' are in their _CodeInfo.
        self._memo = weakref.WeakKeyDictionary()
        self._validating = set()

    def define(self, obj, rule):
        """The current ``Definition`` of a by-value object under ``rule``."""
        with self._lock:
            entry = self.current(obj, rule)
            if entry is None:
                entry = _Builder(self, rule).build(obj)
            return entry

    def current(self, obj, rule):
        """``obj``'s memoized definition if it is still current, else None."""
        if type(obj) is FunctionType:
            entry = code_info(obj.__code__).definition
        else:
            entry = self._memo.get(obj)
        if entry is None or not entry.safe or entry.rule is not rule:
            return None
        key = id(obj)
        if key in self._validating:
            return entry  # A cycle: its other members are being checked.
        items, _, safe = snapshot_of(obj, rule)
        if not (safe and len(items) == len(entry.snapshot)
                and all(map(operator.is_, items, entry.snapshot))):
            return None
        self._validating.add(key)
        try:
            for dep, digest in entry.deps:
                dep_entry = self.current(dep, rule)
                if dep_entry is None or dep_entry.digest != digest:
                    return None
        finally:
            self._validating.discard(key)
        return entry

    def remember(self, obj, entry, snapshot, rule):
        entry.snapshot, _, entry.safe = snapshot
        entry.rule = rule
        if type(obj) is FunctionType:
            code_info(obj.__code__).definition = entry
        else:
            self._memo[obj] = entry


registry = Registry()


class _Builder:
    """Makes the definitions of one object and what it needs, not yet current.

    Tarjan's algorithm over the by-value objects, with pickling as the way
    to find an object's edges: each object is pickled alone, and the
    persistent ids it asks for are its edges. An object whose edges all
    got digests is done with that pickle; a cycle (a strongly connected
    component) is pickled again, whole, into a group blob.
    """

    def __init__(self, registry, rule):
        self._registry = registry
        self._rule = rule
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
        self._snapshots[key] = snapshot_of(node, self._rule)
        requires, deps, pending = {}, [], []

        def resolve(dep):
            entry = self._edge(key, dep)
            if entry is None:
                pending.append(dep)
                return _PENDING
            add_requires(requires, entry)
            deps.append((dep, entry.digest))
            return ("fn", entry.digest)

        blob = _dump_definition((node,), resolve, self._rule, describe=node)
        if self._low[key] != self._index[key]:
            return  # Part of a cycle that an earlier object closes.
        cycle = self._pop_cycle(node)
        if len(cycle) == 1 and not pending:
            entry = Definition(blob, display_name(node), requires.values())
            entry.deps = tuple(deps)
            self._done(node, entry)
        else:
            self._build_group(cycle)

    def _edge(self, key, dep):
        """The dependency's Definition, or None while its cycle is open."""
        dep_key = id(dep)
        if dep_key not in self._index:
            entry = self._registry.current(dep, self._rule)
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
            entry = (self._built.get(id(dep))
                     or self._registry.define(dep, self._rule))
            add_requires(requires, entry)
            deps.append((dep, entry.digest))
            return ("fn", entry.digest)

        blob = _dump_definition(members, resolve, self._rule, single=False,
                                describe=members[0])
        names = ", ".join(map(display_name, members))
        group = Definition(blob, f"cycle of {names}", requires.values())
        entries = [Definition(_dump_member(group.digest, index),
                              display_name(member), group.requires)
                   for index, member in enumerate(members)]
        own = [(m, e.digest) for m, e in zip(members, entries)]
        for member, entry in zip(members, entries):
            entry.deps = tuple(deps) + tuple(
                pair for pair in own if pair[0] is not member)
            self._done(member, entry)

    def _done(self, obj, entry):
        self._built[id(obj)] = entry
        self._registry.remember(obj, entry, self._snapshots[id(obj)],
                                self._rule)


def add_requires(requires, entry):
    for required in entry.requires:
        requires.setdefault(required.digest, required)


def _sort_key(obj):
    """Orders a cycle's members the same way whichever was pickled first."""
    if type(obj) is FunctionType:
        line = obj.__code__.co_firstlineno
    else:
        line = getattr(obj, "__dict__", {}).get("__firstlineno__", 0)
        line = line if isinstance(line, int) else 0
    module = getattr(obj, "__module__", None)
    return (module if isinstance(module, str) else "", display_name(obj), line)


def _dump_definition(members, resolve, rule, *, single=True, describe):
    file = io.BytesIO()
    pickler = ByValuePickler(file, resolve, rule=rule, inline=members,
                             refs=members)
    try:
        pickler.dump(_Members(tuple(map(pickler.root, members)), single))
    except pickle.PicklingError:
        raise
    except Exception as exc:
        raise pickle.PicklingError(
            f"cannot ship {display_name(describe)} (module "
            f"{getattr(describe, '__module__', None)}) by value: {exc}"
        ) from exc
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


class _Members:
    """The root of a definition blob: ``finish_definition(members, single)``."""

    __slots__ = ("members", "single")

    def __init__(self, members, single):
        self.members = members
        self.single = single

    def __reduce__(self):
        return FINISH_DEFINITION, (self.members, self.single)


class _GroupRef:
    """A group blob, pickled as its persistent id by ``_MemberPickler``."""

    __slots__ = ("digest",)

    def __init__(self, digest):
        self.digest = digest


class _MemberPickler(pickle.Pickler):
    """Pickles member ``i`` of a group as ``group[i]``."""

    def persistent_id(self, obj):
        if type(obj) is _GroupRef:
            return ("fn", obj.digest)
        return None
