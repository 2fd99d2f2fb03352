"""Queue items: pickled here, self-contained, unpickled by whoever gets them.

An item is pickled here (``pickle`` protocol 5) and copied into the daemon,
so it outlives whoever put it. Functions and classes the daemon cannot
import (``__main__``, lambdas, closures) are shipped by value as in jobs,
but an item is read by other connections, so it carries their definitions
itself instead of naming ones sent on this connection.

``client`` is the Queue's (a ``Client``, or ``_queue_local.TRANSPORT``
inside a job); ``queue`` names the Queue in errors.
"""

import pickle
import sys

from . import _queue_local
from ._loader_refs import LOADER_MODULE, LoaderFunction

__all__ = ["dump", "load"]


def dump(item, client, queue):
    """The payload of a put: the item's pickle, self-contained.

    Functions and classes shipped by value travel inside it, their
    definition blobs next to the pickle that names them: the pickle
    is ``_extrainterpreters_loader.load(pickle, {digest: blob})``,
    which a job's interpreter and a client (``load``) both run.
    Their bytecode must suit the daemon's Python (a job may get it).
    """
    if client is _queue_local.TRANSPORT:
        try:  # the common case, without loading the by-value pickler
            return pickle.dumps(item, protocol=5)
        except Exception:
            pass
    from . import _byvalue
    from ._byvalue_version import bytecode_check
    hello = getattr(client, "_hello", None)
    try:
        dumped = _byvalue.dump(item, bytecode_check(hello) if hello else None)
    except _byvalue.VersionMismatch:
        raise
    except Exception as exc:
        raise pickle.PicklingError(
            f"cannot put a {type(item).__qualname__} into {queue!r}: it "
            f"does not pickle: {exc}") from exc
    if not dumped.definitions:
        return dumped.payload
    blobs = {d.digest: d.blob for d in dumped.definitions}
    return pickle.dumps(_SelfContained(dumped.payload, blobs), protocol=5)


def load(data, client, queue):
    """Unpickle an item got from the queue. One holding by-value
    definitions needs the loader module, which a daemon interpreter has
    and a client imports here under the same name."""
    local = client is _queue_local.TRANSPORT  # loader there already
    if not local and LOADER_MODULE not in sys.modules:
        from . import _function_loader
        sys.modules.setdefault(LOADER_MODULE, _function_loader)
    previous = None if local else _queue_local.unpickling_for(client)
    try:
        return pickle.loads(data)
    except Exception as exc:
        raise pickle.UnpicklingError(
            f"an item got from {queue!r} does not unpickle here ({len(data)} "
            f"bytes, taken from the queue): {exc!r}") from exc
    finally:
        if not local:
            _queue_local.unpickling_for(previous)


class _SelfContained:
    """Pickles as the loader's ``load(payload, blobs)``: an item that needs
    definitions, with them."""

    __slots__ = ("payload", "blobs")

    def __init__(self, payload, blobs):
        self.payload, self.blobs = payload, blobs

    def __reduce__(self):
        return LoaderFunction("load"), (self.payload, self.blobs)
