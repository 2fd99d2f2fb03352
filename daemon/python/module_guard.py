"""Refuses, in a sub-interpreter of extrainterpretersd, the modules that
must never start loading there.

The daemon compiles this module into every pool and leased sub-interpreter
as ``_extrainterpreters_guard`` and calls :func:`refuse_modules` with its
``--process-modules``; worker processes, whose main interpreter loads
anything, do without it.
"""

import sys

__all__ = ["refuse_modules"]


class _RefusedModules:
    """Refuses to import the modules of ``--process-modules`` (and their
    submodules) in a sub-interpreter, with the ImportError CPython raises
    for an extension module that does not support sub-interpreters.

    Letting CPython find that out for itself is not safe: on CPython
    3.13.0 a failed import of numpy in an isolated sub-interpreter frees
    an object of the main interpreter's allocator, and glibc aborts the
    whole daemon ("munmap_chunk(): invalid pointer", in ImportError's
    dealloc; CPython gh-144601 is the same family of bug). Refused here,
    before any of the package's code runs, the job fails cleanly, and the
    daemon runs it in the process lane instead.
    """

    names = frozenset()

    # CPython's own extension modules that cannot load in a sub-interpreter
    # (single-phase init). On CPython 3.12 the import runs such a module's
    # init function in the sub-interpreter before it fails (gh-117953,
    # fixed in 3.13), which leaves process-wide state pointing into that
    # interpreter's memory: the daemon died with "munmap_chunk(): invalid
    # pointer" after jobs had imported _testsinglephase (attack_jobs_e2e_test,
    # 3.12.1, once in ~15 runs). Refused here, nothing of theirs runs.
    cpython_single_phase = frozenset({"readline", "_curses", "_tkinter",
                                      "_testsinglephase"})

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname in cls.cpython_single_phase:
            raise ImportError(
                f"module {fullname} does not support loading in "
                f"subinterpreters (extrainterpretersd refuses CPython's own "
                f"single-phase extension modules before they load)",
                name=fullname)
        if fullname.partition(".")[0] not in cls.names:
            return None
        raise ImportError(
            f"module {fullname} does not support loading in subinterpreters "
            f"(extrainterpretersd: it is in --process-modules, whose jobs run "
            f"in the process lane)", name=fullname)


def refuse_modules(names):
    """Refuse ``names`` (top-level modules) from now on, and CPython's own
    single-phase extension modules."""
    _RefusedModules.names = frozenset(names)
    if _RefusedModules not in sys.meta_path:
        sys.meta_path.insert(0, _RefusedModules)
