"""Which functions and classes travel by value, and what pickling them needs.

``needs_value`` tells the objects the daemon cannot import by name (under
a ``ModuleRule``: ``_byvalue_rule``). The rest answers what the pickler
(``_byvalue_pickler``), the registry (``_byvalue_registry``) and the
snapshots (``_byvalue_snapshot``) all ask of a function, a class or a code
object. A code object's marshal, the globals its bytecode names and the
modules it imports are computed once (``code_info``): a loop makes the
same closure or lambda over and over.
"""

import builtins
import dis
import functools
import marshal
import sys
import types

from ._byvalue_rule import rule_for
from ._loader_refs import TYPE_PARAMS

__all__ = [
    "ATOMS", "MISSING", "TYPE_PARAMS", "FunctionType", "LruCacheWrapper",
    "body_methods", "builtin_type_reduce", "code_info", "display_name",
    "globals_name", "has_parts", "needs_value", "slot_names",
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
_NO_RULE = rule_for(None)


def needs_value(obj, rule=_NO_RULE):
    """True for a function, class or type parameter the daemon cannot
    import by name.

    That is one of a module that ``rule`` (a ``ModuleRule``) ships by
    value (``__main__``, modules made at run time, by default the user's
    own), or whose ``__qualname__`` does not lead back to it (lambdas,
    nested functions, classes made in a function).
    """
    kind = type(obj)
    if (kind is not FunctionType and not isinstance(obj, type)
            and kind is not LruCacheWrapper and kind not in TYPE_PARAMS):
        return False
    module_name = getattr(obj, "__module__", None)
    if not isinstance(module_name, str):
        return True
    if module_name == "builtins" and isinstance(obj, type):
        return False  # Has no code to ship: see builtin_type_reduce.
    if rule.by_value(module_name):
        return True
    target = sys.modules[module_name]
    name = getattr(obj, "__qualname__", None) or obj.__name__
    for part in name.split("."):
        target = getattr(target, part, MISSING)
        if target is MISSING:
            return True
    return target is not obj


def builtin_type_reduce(cls):
    """How to pickle a builtin type that is not ``builtins.<its name>``
    (``type(None)``, ``types.MappingProxyType``...), or None."""
    if cls.__module__ != "builtins" or not isinstance(cls, type):
        return None
    if not _BUILTIN_TYPES:
        _BUILTIN_TYPES.update(
            (id(value), (getattr, (types, name))) for name, value in
            vars(types).items() if isinstance(value, type)
            and value.__module__ == "builtins"
            and getattr(builtins, value.__name__, None) is not value)
        # type(x) needs no module, and older Pythons lack types.NoneType.
        _BUILTIN_TYPES.update((id(type(x)), (type, (x,)))
                              for x in (None, ..., NotImplemented))
    return _BUILTIN_TYPES.get(id(cls))


_BUILTIN_TYPES = {}  # id(type) -> reduce value


def display_name(obj):
    """What messages call a by-value object: its qualname, else its name."""
    return getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "?")


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


def body_methods(cls, value, rule=_NO_RULE):
    """Functions of a class attribute that were defined in the class body."""
    if isinstance(value, (staticmethod, classmethod)):
        candidates = (value.__func__,)  # abc.abstractclassmethod too
    elif isinstance(value, property):
        candidates = (value.fget, value.fset, value.fdel)
    else:
        candidates = (value,)
    prefix = cls.__qualname__ + "."
    return [fn for fn in candidates if type(fn) is FunctionType
            and fn.__qualname__.startswith(prefix) and needs_value(fn, rule)]


class _CodeInfo:
    """What pickling a function needs from its code, computed once."""

    __slots__ = ("code", "marshalled", "global_names", "attr_names",
                 "imports", "definition")

    def __init__(self, code):
        self.code = code  # Keeps the id() key of _code_infos valid.
        # The Definition last made for a function of this code (Registry,
        # in _byvalue_registry): every closure or lambda a loop makes from
        # it shares it.
        self.definition = None
        self.marshalled = marshal.dumps(code)
        global_names, attr_names, imports = set(), set(), set()
        for nested in _code_objects(code):
            attr_names.update(nested.co_names)
            global_names.update(_global_names(nested))
            if _IMPORT_NAME in nested.co_code[::2]:
                imports.update(_imports(nested))
        self.global_names = tuple(sorted(global_names))
        self.attr_names = tuple(sorted(attr_names))
        # (name, level, fromlist) of each import statement the code runs.
        self.imports = tuple(sorted(imports, key=repr))


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


_IMPORT_NAME = dis.opmap["IMPORT_NAME"]


def _imports(code):
    """``(name, level, fromlist)`` of the code's import statements.

    Rare enough to afford ``dis``: an import pushes its level and its
    fromlist (constants) just before IMPORT_NAME.
    """
    found, recent = set(), []
    for instruction in dis.get_instructions(code):
        if instruction.opcode == _IMPORT_NAME and len(recent) == 2:
            level, fromlist = recent
            if isinstance(level, int) and (fromlist is None
                                           or isinstance(fromlist, tuple)):
                found.add((instruction.argval, level, fromlist))
        if instruction.opname in ("LOAD_CONST", "LOAD_SMALL_INT"):
            recent = (recent + [instruction.argval])[-2:]
        elif instruction.opname not in ("CACHE", "EXTENDED_ARG"):
            recent = []
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
