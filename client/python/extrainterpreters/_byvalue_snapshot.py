"""Snapshots: what a definition was made from, to tell whether it is current.

A snapshot lists, in order, what went into an object's definition blob: its
code, globals dict, names, the values of the globals it uses (and of the
attributes it uses of by-value modules), container items one by one. The
registry (``_byvalue_registry``) compares them by identity at the next use,
which costs far less than pickling again.
"""

from ._byvalue_code import (
    ATOMS, MISSING, TYPE_PARAMS, FunctionType, body_methods, code_info,
    has_parts, needs_value)
from ._byvalue_modules import code_modules, is_module, module_attributes
from ._byvalue_reducers import class_extras

__all__ = ["snapshot_of"]

_MAX_SNAPSHOT_ITEMS = 256  # Longer containers are re-pickled, not compared.
_SELF = object()  # Stands for the object itself in its own snapshot.
_TYPE_PARAM_PARTS = ("__name__", "__bound__", "__constraints__",
                     "__covariant__", "__contravariant__",
                     "__infer_variance__", "__default__")


def snapshot_of(obj, rule):
    """``(items, deps, safe)``: what ``obj``'s definition was made from,
    under ``rule`` (a ``ModuleRule``).

    ``items`` are compared by identity later; ``deps`` are the by-value
    objects among them; ``safe`` is False when some input cannot be
    compared that way (then the definition is remade at every use).
    """
    snapshot = _Snapshot(obj, rule)
    if type(obj) is FunctionType:
        safe = snapshot.function(obj, parts=False)
    elif is_module(obj):
        safe = snapshot.module(obj)
    elif type(obj) in TYPE_PARAMS:
        safe = all([snapshot.value(getattr(obj, name, MISSING))
                    for name in _TYPE_PARAM_PARTS])
    else:
        safe = snapshot.cls(obj)
    return tuple(snapshot.items), snapshot.deps, safe


class _Snapshot:
    """Collects the items of one object's snapshot (see ``snapshot_of``)."""

    __slots__ = ("root", "rule", "items", "deps", "bound")

    def __init__(self, root, rule):
        self.root = root
        self.rule = rule
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
        # Annotations by identity: a by-value class among them is a
        # dependency, whose own definition the registry checks.
        annotations = getattr(fn, "__annotations__", None) or {}
        self.items.append(len(annotations))
        self.items.extend(annotations.values())
        namespace = fn.__globals__
        info = code_info(fn.__code__)
        for name in info.global_names:
            safe &= self.value(namespace.get(name, MISSING))
        _, shipped = code_modules(fn, info, self.rule,
                                  _cell_values(fn) if parts else ())
        for module, names in shipped:
            attrs = vars(module)
            self.items.append(module)
            for name in names:
                safe &= self.value(attrs.get(name, MISSING))
        return safe

    def module(self, module):
        items = self.items
        items.extend((module.__name__, getattr(module, "__file__", None)))
        path = getattr(module, "__path__", None)
        safe = self.value(None if path is None else list(path))
        for name, value in module_attributes(module):
            items.append(name)
            safe &= self.value(value)
        return safe

    def parts(self, fn):
        safe = self.value(fn.__defaults__)
        safe &= self.value(fn.__kwdefaults__)
        for cell in fn.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:
                value = MISSING
            safe &= self.value(value)
        return safe

    def cls(self, cls):
        items = self.items
        items.append(type(cls))
        safe = self.value(cls.__bases__)
        safe &= self.value(class_extras(cls).get("abc_registry"))
        for name, value in cls.__dict__.items():
            if name == "__slotnames__":
                continue  # copyreg's cache: not part of the definition
            items.append(name)
            methods = body_methods(cls, value, self.rule)
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
        if kind in ATOMS or value is MISSING:
            return True
        if (kind is FunctionType or isinstance(value, type)
                or kind in TYPE_PARAMS):
            if needs_value(value, self.rule):
                self.deps.append(value)
                # A reference to a by-value function carries its parts.
                if (kind is FunctionType and has_parts(value)
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


def _cell_values(fn):
    values = []
    for cell in fn.__closure__ or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:
            pass
    return values
