"""Which functions and classes travel by value, and what pickling them needs.

``needs_value`` tells the objects the daemon cannot import by name. The
rest answers what the pickler (``_byvalue_pickler``), the registry
(``_byvalue_registry``) and the snapshots (``_byvalue_snapshot``) all ask
of a function, a class or a code object. A code object's marshal and the
globals its bytecode names are computed once (``code_info``): a loop makes
the same closure or lambda over and over.
"""

import dis
import functools
import marshal
import sys
import types

__all__ = [
    "ATOMS", "MISSING", "FunctionType", "LruCacheWrapper", "body_methods",
    "cheap_annotations", "code_info", "globals_name", "has_parts",
    "needs_value", "slot_names", "submodules",
]

_MAX_CODE_INFOS = 4096  # Code objects whose marshal and names are cached.
MISSING = object()  # An unbound global, an empty cell: not a value.
FunctionType = types.FunctionType
LruCacheWrapper = functools._lru_cache_wrapper
# Opcodes that read or write a module global; class bodies use the *_NAME ones.
_GLOBAL_OPS = frozenset({
    "LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME", "STORE_NAME",
    "DELETE_NAME", "LOAD_FROM_DICT_OR_GLOBALS",
})
# Types whose values hold no function or class to ship, and compare by
# identity as they are: pickled plainly, never looked into.
ATOMS = frozenset({
    type(None), bool, int, float, complex, str, bytes, type(...),
    type(NotImplemented), types.CodeType, types.BuiltinFunctionType,
    types.ModuleType,
})


def needs_value(obj):
    """True for a function or class the daemon cannot import by name.

    That is one from ``__main__`` or a module that is not importable by name
    (not in ``sys.modules``, or without ``__spec__``), or whose
    ``__qualname__`` does not lead back to it (lambdas, nested functions).
    """
    if (type(obj) is not FunctionType and not isinstance(obj, type)
            and type(obj) is not LruCacheWrapper):
        return False
    module_name = getattr(obj, "__module__", None)
    if not isinstance(module_name, str) or module_name == "__main__":
        return True
    module = sys.modules.get(module_name)
    if module is None or getattr(module, "__spec__", None) is None:
        return True
    target = module
    for part in obj.__qualname__.split("."):
        target = getattr(target, part, MISSING)
        if target is MISSING:
            return True
    return target is not obj


def has_parts(fn):
    """True if ``fn`` has per-call parts: closure cells or defaults."""
    return (fn.__closure__ is not None or fn.__defaults__ is not None
            or fn.__kwdefaults__ is not None)


def globals_name(fn):
    """The name of the module whose globals ``fn`` uses: its namespace."""
    name = fn.__globals__.get("__name__")
    if isinstance(name, str):
        return name
    return fn.__module__ if isinstance(fn.__module__, str) else "__main__"


def cheap_annotations(fn):
    """The annotations if they are strings or builtin types, else None."""
    annotations = fn.__annotations__
    if not annotations:
        return None
    for value in annotations.values():
        if not (isinstance(value, str) or (isinstance(value, type)
                                            and value.__module__ == "builtins")):
            return None
    return dict(annotations)


def submodules(fn, info):
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


def slot_names(cls):
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


def body_methods(cls, value):
    """Functions of a class attribute that were defined in the class body."""
    kind = type(value)
    if kind is staticmethod or kind is classmethod:
        candidates = (value.__func__,)
    elif kind is property:
        candidates = (value.fget, value.fset, value.fdel)
    else:
        candidates = (value,)
    prefix = cls.__qualname__ + "."
    return [fn for fn in candidates if type(fn) is FunctionType
            and fn.__qualname__.startswith(prefix) and needs_value(fn)]


class _CodeInfo:
    """What pickling a function needs from its code, computed once."""

    __slots__ = ("code", "marshalled", "global_names", "attr_names",
                 "definition")

    def __init__(self, code):
        self.code = code  # Keeps the id() key of _code_infos valid.
        # The Definition last made for a function of this code (Registry,
        # in _byvalue_registry): every closure or lambda a loop makes from
        # it shares it.
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


# id(code) -> _CodeInfo; guarded by the lock of _byvalue_registry.registry.
_code_infos = {}


def code_info(code):
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
