"""The version check: bytecode moves only between equal minor versions.

A function shipped by value travels as its code object (marshal), which
only the Python minor version that compiled it runs. Before the first such
object of a job or queue item, the pickler calls the ``check`` that
``bytecode_check`` makes from the daemon's ``hello`` reply.
"""

import pickle
import sys

from ._errors import ExtraInterpretersError

__all__ = ["VersionMismatch", "bytecode_check"]


class VersionMismatch(ExtraInterpretersError, pickle.PicklingError):
    """A function must travel by value, but the daemon runs another Python.

    Bytecode is only valid on the minor version that compiled it.
    """


def bytecode_check(hello):
    """A ``check`` for ``_byvalue.dump``: by value only to the same minor version.

    The daemon's version is in its ``hello`` reply.
    """
    daemon = ".".join(str(hello.get("python")).split(".")[:2])
    client = "%d.%d" % sys.version_info[:2]

    def check(obj):
        if daemon != client:
            raise VersionMismatch(
                f"cannot ship {obj.__qualname__} by value: this client runs "
                f"Python {client} and the daemon runs {daemon}; bytecode "
                f"only moves between equal minor versions (define it in a "
                f"module the daemon can import instead)")
    return check
