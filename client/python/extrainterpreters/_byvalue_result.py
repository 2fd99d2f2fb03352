"""What a job returns or raises, pickled in the daemon: by name, or by value.

The daemon's loader (``_function_loader.pickler``) pickles results with
``ResultPickler``. Classes and functions rebuilt from a client's
definitions go back by the name the client knows them by
(``__main__.Point`` comes back as the client's ``Point``), modules by name.
What has no name to find it by (a class or function the job made, such as
a local namedtuple or Enum; an object of one; a bound method of a lambda;
a TypeVar) is pickled as a client ships code (``_byvalue``), inside the
result: ``load(python, payload, blobs)``. The client runs ``load``, which
refuses bytecode of another Python minor version with an error naming
both, then rebuilds the objects with its copy of the daemon's loader.
"""

# The C pickler: pickle.py would cost every interpreter its imports.
import _pickle
import sys
import types

from ._loader_refs import (
    LOADER_MODULE, TYPE_PARAMS, ModuleByName, reduce_by_name)

__all__ = ["ResultPickler", "load"]

_PYTHON = "%d.%d" % sys.version_info[:2]
_MISSING = object()
_LOOKED_UP = (types.ModuleType, types.MethodType, types.MappingProxyType)


class ResultPickler(_pickle.Pickler):
    """Pickles a result in the daemon; see the module's docstring.

    ``reducer_override`` runs for every object pickle has no fast path
    for; it costs a few percent on a list of a million small objects.
    """

    def reducer_override(self, obj):
        kind = type(obj)
        if kind is types.FunctionType or isinstance(obj, type):
            origin = _loader().origin(obj)
            if origin is not None:
                return reduce_by_name(origin)
            if _by_name(obj, getattr(obj, "__qualname__", None)):
                return NotImplemented
        elif kind in _LOOKED_UP:
            if kind is types.MappingProxyType:
                return types.MappingProxyType, (dict(obj),)
            if kind is types.ModuleType:
                if sys.modules.get(obj.__name__) is obj:
                    return ModuleByName(obj.__name__).__reduce__()
            elif getattr(obj.__self__, obj.__func__.__name__, None) == obj:
                return NotImplemented  # pickle's getattr(self, name) works
        elif kind not in TYPE_PARAMS:
            return NotImplemented
        else:
            origin = _loader().origin(obj)
            if origin is not None:
                return reduce_by_name(origin)
            if _by_name(obj, obj.__name__):
                return NotImplemented
        return _by_value(obj)


def _loader():
    return sys.modules[LOADER_MODULE]


def _by_name(obj, name):
    """True if ``obj`` is what its module and name lead to."""
    target = sys.modules.get(getattr(obj, "__module__", None))
    for part in (name or "<>").split("."):
        target = getattr(target, part, _MISSING)
    return target is obj


def _by_value(obj):
    from . import _byvalue  # only results that need it pay for it
    dumped = _byvalue.dump(obj, origin=_loader().origin)
    blobs = {d.digest: d.blob for d in dumped.definitions}
    return load, (_PYTHON, dumped.payload, blobs)


def load(python, payload, blobs):
    """Rebuild what the daemon pickled by value (in the client)."""
    if python != _PYTHON:
        import pickle
        from ._byvalue_version import same_minor_error
        raise pickle.UnpicklingError(same_minor_error(
            "the result holds code made in the job, shipped by value",
            _PYTHON, python, "return plain data, or classes the client "
            "can import"))
    from . import _function_loader
    loader = sys.modules.setdefault(LOADER_MODULE, _function_loader)
    return loader.load(payload, blobs or None)
