"""Which modules travel by value: those the daemon cannot import by itself.

The daemon announces its ``sys.path`` in its ``hello`` reply (PROTOCOL.md),
and shares this machine's files, so the client can tell where the daemon
would find a module. A module is shipped by value when:

- it is ``__main__``, or made at run time (not in ``sys.modules``, or
  without ``__spec__``): nothing on the daemon has it;
- or its file is not the one the daemon's ``sys.path`` leads to (a script's
  sibling ``helpers.py``, the user's own packages), and it is not an
  installed library of this client (its standard library, site-packages).

Installed libraries go by reference even when the daemon lacks them: their
import error there says what to install. The client package itself always
goes by reference: the daemon embeds it. ``ship_by_value`` and
``ship_by_reference`` override the rule for a module and its submodules.

Without the daemon's ``sys.path`` (no ``hello``, an older daemon, code
running inside a job) every module that has a file goes by reference.
"""

import os
import sys
import threading
import types

__all__ = [
    "ModuleRule", "is_installed_file", "rule_for", "ship_by_reference",
    "ship_by_value",
]

_PACKAGE = __name__.rpartition(".")[0]  # "extrainterpreters"
_lock = threading.Lock()
_overrides = {}  # module name -> True (by value) or False (by reference)
_rules = {}  # (daemon path or None, generation) -> ModuleRule
_generation = [0]  # bumped by each override, so rules made before go stale


def ship_by_value(module):
    """Ship ``module`` (a module or its name) and its submodules by value.

    For a module the daemon could import but should not (another version
    of it there), or an installed library the daemon lacks: its functions
    and classes are then pickled as code, as ``__main__``'s are.
    """
    _override(module, True)


def ship_by_reference(module):
    """Pickle ``module`` (a module or its name) and its submodules by name.

    For a module the daemon imports some way the rule cannot see (a path
    added at run time, a copy deployed beside the daemon).
    """
    _override(module, False)


def _override(module, by_value):
    name = module.__name__ if isinstance(module, types.ModuleType) else module
    if not isinstance(name, str) or not name:
        raise TypeError(f"expected a module or a module name, not {module!r}")
    if name == "__main__":
        raise ValueError("__main__ always travels by value: the daemon has "
                         "its own __main__")
    with _lock:
        _overrides[name] = by_value
        _generation[0] += 1


def rule_for(daemon_path):
    """The ``ModuleRule`` for a daemon whose ``sys.path`` is ``daemon_path``
    (a list of strings, or None when unknown); one per path and overrides."""
    path = tuple(daemon_path) if isinstance(daemon_path, (list, tuple)) else None
    if path is not None and not all(isinstance(p, str) for p in path):
        path = None
    key = (path, _generation[0])
    rule = _rules.get(key)
    if rule is None:
        with _lock:
            if len(_rules) > 16:
                _rules.clear()  # Old generations; rules are cheap to remake.
            rule = _rules.setdefault(key, ModuleRule(path, dict(_overrides)))
    return rule


class ModuleRule:
    """Decides, and remembers, which modules go by value to one daemon."""

    def __init__(self, daemon_path, overrides):
        self.daemon_path = daemon_path
        self._overrides = overrides
        self._cache = {}  # name -> (module object, by value)

    def by_value(self, name):
        """True if the module named ``name`` must travel by value."""
        module = sys.modules.get(name)
        cached = self._cache.get(name)
        if cached is not None and cached[0] is module:
            return cached[1]
        decision = self._decide(name, module)
        self._cache[name] = (module, decision)
        return decision

    def module_by_value(self, module):
        """True if the module object ``module`` must travel by value:
        a dynamic one (not the module of its name), or by the rule."""
        name = getattr(module, "__name__", None)
        if not isinstance(name, str) or sys.modules.get(name) is not module:
            return True
        return self.by_value(name)

    def _decide(self, name, module):
        if name == "__main__":
            return True
        forced = self._forced(name)
        if forced is not None:
            return forced
        if name == _PACKAGE or name.startswith(_PACKAGE + "."):
            return False
        if module is None or getattr(module, "__spec__", None) is None:
            return True
        if self.daemon_path is None:
            return False
        return not _daemon_imports(name, module, self.daemon_path)

    def _forced(self, name):
        while name:
            forced = self._overrides.get(name)
            if forced is not None:
                return forced
            name = name.rpartition(".")[0]
        return None


def _daemon_imports(name, module, daemon_path):
    """True if the daemon imports this very module by name, or if it is an
    installed library here, or if where it lives cannot be told."""
    location = _location(module)
    if location is None:
        return True  # Built in, frozen, or loaded some unusual way.
    root, relative = _split_root(name, location)
    if root is None:
        return True
    if _is_installed(root):
        return True
    for entry in daemon_path:
        entry = os.path.abspath(entry)
        if _same(entry, root):
            return True
        candidate = os.path.join(entry, relative)
        if os.path.exists(candidate):
            # The first entry holding it is the one the daemon imports.
            return _same(candidate, location)
    return False


def _location(module):
    """The module's file, or a namespace package's first directory."""
    spec = module.__spec__
    if spec.origin and spec.has_location:
        return os.path.abspath(spec.origin)
    locations = list(spec.submodule_search_locations or ())
    if spec.origin is None and locations:
        return os.path.abspath(locations[0])
    return None


def _split_root(name, location):
    """``(root, relative path)``: the ``sys.path`` entry the module was found
    under, and its path from there; ``(None, None)`` if its path does not
    spell its name (a module registered under another name)."""
    parts = name.split(".")
    path = location
    if os.path.basename(path).split(".")[0] == "__init__":
        path = os.path.dirname(path)
    for part in reversed(parts):
        base = os.path.basename(path)
        if base != part and base.split(".")[0] != part:
            return None, None
        path = os.path.dirname(path)
    return path, os.path.relpath(location, path)


def _same(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


_installed_roots = []


def _is_installed(root):
    """True if ``root`` is this Python's standard library or site-packages."""
    if not _installed_roots:
        _installed_roots.extend(_find_installed_roots())
    real = os.path.realpath(root)
    return any(real == r or real.startswith(r + os.sep)
               for r in _installed_roots)


def _find_installed_roots():
    import site
    import sysconfig
    paths = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(sysconfig.get_paths().get(key))
    for getter in ("getsitepackages", "getusersitepackages"):
        found = getattr(site, getter, lambda: [])()
        paths.update([found] if isinstance(found, str) else found)
    for entry in sys.path:
        parts = entry.split(os.sep)
        if "site-packages" in parts or "dist-packages" in parts:
            paths.add(entry)
    return sorted({os.path.realpath(p) for p in paths if p})


def is_installed_file(path):
    """True if the file ``path`` is in this Python's installed libraries."""
    return _is_installed(os.path.dirname(os.path.abspath(path)))
