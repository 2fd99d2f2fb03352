"""What the client knows of the daemon before shipping code: its Python, its path.

A function shipped by value travels as its code object (marshal), which
only the Python minor version that compiled it runs. Before the first such
object of a job or queue item, the pickler calls the ``check`` that
``bytecode_check`` makes from the daemon's ``hello`` reply; the check also
carries the ``ModuleRule`` of that daemon's ``sys_path`` (``check.rule``),
which says which modules go by value (``_byvalue_rule``).
"""

import pickle
import sys

from ._byvalue_code import display_name
from ._byvalue_rule import rule_for
from ._errors import ExtraInterpretersError

__all__ = ["VersionMismatch", "bytecode_check", "same_minor_error"]


class VersionMismatch(ExtraInterpretersError, pickle.PicklingError):
    """A function must travel by value, but the daemon runs another Python.

    Bytecode is only valid on the minor version that compiled it.
    """


def bytecode_check(hello):
    """A ``check`` for ``_byvalue.dump``: by value only to the same minor version.

    The daemon's version and ``sys_path`` are in its ``hello`` reply.
    """
    return _Check(".".join(str(hello.get("python")).split(".")[:2]),
                  rule_for(hello.get("sys_path")))


class _Check:
    """Refuses by-value objects for a daemon of another minor version."""

    __slots__ = ("daemon", "rule")

    def __init__(self, daemon, rule):
        self.daemon = daemon
        self.rule = rule

    def __call__(self, obj):
        client = "%d.%d" % sys.version_info[:2]
        if self.daemon != client:
            raise VersionMismatch(same_minor_error(
                f"cannot ship {display_name(obj)} by value", client,
                self.daemon, "define it in a module the daemon can import "
                "instead"))


def same_minor_error(head, client, daemon, advice):
    """The message of a version mismatch, naming both versions."""
    return (f"{head}: this client runs Python {client} and the daemon runs "
            f"{daemon}; bytecode only moves between equal minor versions "
            f"({advice})")
