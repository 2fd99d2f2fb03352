"""Run Python callables in the sub-interpreters of ``extrainterpretersd``.

    import extrainterpreters

    def square(x):
        return x * x

    print(extrainterpreters.run(square, 7))          # a pool interpreter

    with extrainterpreters.Client() as client:       # many jobs at once
        futures = [client.submit(square, n) for n in range(10)]

    with extrainterpreters.Interpreter() as interp:  # one, with its state
        interp.run(square, 3)

Functions and arguments travel pickled; the daemon must be able to import
the function's module. The socket is found as ``default_socket_path()``
says, unless given.
"""

from ._client import Client, run
from ._errors import (DaemonConnectionError, ExtraInterpretersError,
                      ProtocolError, RemoteError)
from ._interpreter import Interpreter
from ._paths import default_socket_path
from ._version import __version__

__all__ = [
    "Client",
    "Interpreter",
    "run",
    "ExtraInterpretersError",
    "DaemonConnectionError",
    "ProtocolError",
    "RemoteError",
    "default_socket_path",
    "__version__",
]
