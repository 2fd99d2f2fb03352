"""By-value modules: how a module of the user's reaches the daemon.

A module that ``_byvalue_rule`` ships by value becomes, in each daemon
interpreter, a real module object (``_function_loader.module``) whose
``__dict__`` holds the globals of its functions shipped there, with the
client's ``__name__``, ``__package__``, ``__path__`` and ``__file__``; while
this client's jobs run it is in that interpreter's ``sys.modules``, so
``import helpers`` and relative imports in shipped code find it. What of
the module travels depends on how the job reaches it:

- a function or class of the module: its code and the globals it uses, as
  ever; the module's names and paths come along (``BareModule``);
- a module global of shipped code, or a module the code imports as it
  runs (``import helpers``, ``from .sub import f``): the attributes the
  code names (``code_modules``), as globals of that module;
- a module as a value (an argument, an item of a container): a definition
  of its own, with every attribute that pickles (``module_attributes``).

Modules the daemon imports by itself go by name, with the submodules the
code reaches as attributes (``import xml.etree.ElementTree`` binds only
``xml``: the daemon must import the rest too).
"""

import importlib
import importlib.util
import sys
import types
import uuid

from ._loader_refs import MODULE, ModuleByName

__all__ = ["SESSION", "BareModule", "code_modules", "is_module",
           "module_attributes", "module_key"]

# Names this process's modules in the daemon, so that two client programs
# sharing a pool interpreter never see each other's module globals.
SESSION = uuid.uuid4().hex
# Module attributes the daemon's module object makes for itself.
_SKIP = frozenset({
    "__builtins__", "__name__", "__package__", "__path__", "__file__",
    "__cached__", "__loader__", "__spec__", "__doc__",
})
ModuleType = types.ModuleType


def is_module(obj):
    return isinstance(obj, ModuleType)


def module_key(name):
    """The daemon's key for the module named ``name`` of this client."""
    return (SESSION, name)


class BareModule:
    """Pickles as the daemon's module object for ``module``: its names and
    paths, none of its attributes; the parent package first."""

    __slots__ = ("module", "rule")

    def __init__(self, module, rule):
        self.module = module
        self.rule = rule

    def __reduce__(self):
        return MODULE, self.args()

    def args(self):
        """The arguments of the loader's ``module``: key, meta, parent."""
        module = self.module
        name = module.__name__
        attrs = vars(module)
        spec = attrs.get("__spec__")
        meta = {"package": attrs.get("__package__"),
                "file": attrs.get("__file__"), "doc": attrs.get("__doc__"),
                "spec": getattr(spec, "name", None),
                "install": name != "__main__"
                and sys.modules.get(name) is module}
        if "__path__" in attrs:
            meta["path"] = list(attrs["__path__"])
        parent = sys.modules.get(name.rpartition(".")[0])
        if parent is not None:
            by_value = self.rule.module_by_value(parent)
            parent = (BareModule(parent, self.rule) if by_value else
                      ModuleByName(parent.__name__))
        return module_key(name), meta, parent


def module_attributes(module):
    """``(name, value)`` of what a module value ships: all but its names."""
    return [(name, value) for name, value in list(vars(module).items())
            if name not in _SKIP]


def code_modules(fn, info, rule, values=()):
    """What a function's code reaches in modules: ``(imports, shipped)``.

    ``imports``: submodules of by-name modules (module globals, and the
    modules among ``values``, its cells) that the code reaches as
    attributes, for the daemon to import. ``shipped``: ``(module, names)``
    of by-value modules it uses (module globals, and modules its import
    statements import), with the attributes it may use of each: the names
    the code mentions, and those it imports from them (sorted: blobs must
    not depend on the order they were found in).
    """
    names = info.attr_names
    found = [(value, names) for value in values if is_module(value)]
    namespace = fn.__globals__
    for name in info.global_names:
        value = namespace.get(name)
        if is_module(value):
            found.append((value, names))
    imports, shipped = [], {}  # id(module) -> (module, names wanted)
    for statement in info.imports:
        # By-name modules an import statement names are the daemon's to
        # import when the code runs, not before.
        found.extend(pair for pair in _imported(namespace, statement, names)
                     if rule.module_by_value(pair[0]))
    while found:
        module, wanted = found.pop()
        if not rule.module_by_value(module):
            _add_submodules(imports, module.__name__, names)
            continue
        attrs = vars(module)
        entry = shipped.setdefault(id(module), (module, set()))
        new = {n for n in wanted if n in attrs} - entry[1]
        entry[1].update(new)
        found.extend((attrs[n], names) for n in new if is_module(attrs[n]))
    return imports, [(m, tuple(sorted(n))) for m, n in shipped.values()]


def _add_submodules(found, name, attr_names):
    prefixes = [name]
    while prefixes:
        prefix = prefixes.pop()
        for attr in attr_names:
            candidate = f"{prefix}.{attr}"
            if candidate in sys.modules and candidate not in found:
                found.append(candidate)
                prefixes.append(candidate)


def _imported(namespace, statement, attr_names):
    """``(module, names)`` that one import statement of the code imports:
    the module and its parents, and the submodules in its fromlist."""
    name, level, fromlist = statement
    if level:
        package = namespace.get("__package__")
        if not isinstance(package, str) or not package:
            return []
        try:
            name = importlib.util.resolve_name("." * level + name, package)
        except ImportError:
            return []
    parts = name.split(".")
    targets = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    targets += [f"{name}.{item}" for item in fromlist or () if item != "*"]
    found = []
    for target in targets:
        module = sys.modules.get(target) or _import_unloaded(target)
        if module is not None:
            wanted = attr_names + tuple(fromlist or ())
            found.append((module, wanted))
    return found


_not_users = set()  # Names _import_unloaded found no module of the user's for.


def _import_unloaded(name):
    """A module the code imports but this process has not imported yet.

    The daemon cannot find a module of the user's by itself, so it is
    imported here, to be shipped, if it is one: only a file that
    ``importlib`` finds outside the installed libraries' folders.
    """
    parent = name.rpartition(".")[0]
    if name in _not_users or (parent and parent not in sys.modules):
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.has_location or not _is_users(spec):
        _not_users.add(name)  # Looked up once, not at every job.
        return None
    try:
        return importlib.import_module(name)
    except Exception:  # It fails in the daemon too, where it says why.
        return None


def _is_users(spec):
    from ._byvalue_rule import is_installed_file
    return not is_installed_file(spec.origin)
