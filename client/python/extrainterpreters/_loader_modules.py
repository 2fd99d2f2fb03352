"""Client modules in a daemon interpreter: their names, paths, and sys.modules.

The loader (``_function_loader``) keeps one module object per module of
each client whose code it rebuilt; its dict holds their globals. For a
module the client ships by value (``_byvalue_modules``) this module makes
that object look like the client's: ``__package__``, ``__path__``,
``__file__``, ``__spec__`` (``describe``), and, in the daemon, puts it in
``sys.modules`` and on its parent package while the jobs of that client run
(``install``), so that ``import helpers`` and relative imports in shipped
code find it. Two clients may both have a ``helpers``: each job sees its
own client's, and the daemon's own modules otherwise::

    loads(job)          begin_job(): the client modules of the job before
                          go; what they displaced comes back
      rebuilding, or    install(module): into sys.modules, noting what
      reusing, a          it displaced; it stays there while the job runs
      definition

The loader imports this module the first time a client module is
described, from the client package, which the daemon provides to every
interpreter. In a client (a queue item, a result) nothing is installed:
the client's own modules stay as they are.
"""

import importlib.machinery
import sys
import weakref

__all__ = ["begin_job", "describe", "install"]

# The daemon registers its built-in module _extrainterpreters in every
# interpreter; a client process has none.
INSTALL = "_extrainterpreters" in sys.builtin_module_names
_MISSING = object()
_parents = weakref.WeakKeyDictionary()  # client module -> its parent package
_installed = {}  # name -> (client module in sys.modules, what it displaced)


def describe(module, meta, parent):
    """Names and places ``module`` as the client's: ``meta`` has its
    ``package``, ``file``, ``doc``, ``spec`` (its name; None for a
    script's ``__main__``) and, for a package, ``path``."""
    attrs = module.__dict__
    attrs["__package__"] = meta.get("package")
    attrs["__doc__"] = meta.get("doc")
    spec = None
    if meta.get("spec"):  # A script's __main__ has none.
        spec = importlib.machinery.ModuleSpec(
            meta["spec"], None, origin=meta.get("file"),
            is_package="path" in meta)
        spec.has_location = bool(meta.get("file"))
    if "path" in meta:
        attrs["__path__"] = list(meta["path"])
        if spec is not None:
            spec.submodule_search_locations = attrs["__path__"]
    if meta.get("file"):
        attrs["__file__"] = meta["file"]
    attrs["__spec__"], attrs["__loader__"] = spec, None
    if parent is not None:
        _parents[module] = parent


def install(module):
    """Puts a client module in sys.modules, and on its parent package, for
    the job being loaded (in the daemon only)."""
    if not INSTALL:
        return
    name = module.__name__
    if sys.modules.get(name) is not module:
        displaced = (_installed[name][1] if name in _installed
                     else sys.modules.get(name, _MISSING))
        _installed[name] = (module, displaced)
        sys.modules[name] = module
    parent = _parents.get(module)
    if parent is not None:
        setattr(parent, name.rpartition(".")[2], module)


def begin_job():
    """Takes the client modules of the job before out of sys.modules, before
    this one is unpickled: it sees only its own client's modules (which
    its loading puts back), and the daemon's own otherwise."""
    while _installed:
        name, (module, displaced) = _installed.popitem()
        if sys.modules.get(name) is module:
            if displaced is _MISSING:
                del sys.modules[name]
            else:
                sys.modules[name] = displaced
