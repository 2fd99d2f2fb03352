"""Where the daemon's socket is, when the caller does not say.

The order matches what ``./run.sh`` and ``extrainterpretersd`` use, so a
client and a daemon started with no configuration find each other:

    1. an explicit path given by the caller;
    2. ``$EXTRAINTERPRETERS_SOCKET``;
    3. ``$XDG_RUNTIME_DIR/extrainterpreters/ei.sock`` (per-user daemons);
    4. ``/run/extrainterpreters/ei.sock`` (the system daemon).

Empty environment variables count as unset, as an empty path is never a
usable socket.
"""

import os

__all__ = ["SOCKET_ENV_VAR", "SYSTEM_SOCKET_PATH", "default_socket_path",
           "resolve_socket_path"]

SOCKET_ENV_VAR = "EXTRAINTERPRETERS_SOCKET"
SYSTEM_SOCKET_PATH = "/run/extrainterpreters/ei.sock"
_RUNTIME_DIR_SUFFIX = os.path.join("extrainterpreters", "ei.sock")


def default_socket_path(environ=None):
    """Return the socket path to use when none is given explicitly.

    ``environ`` defaults to ``os.environ``; tests pass a dict.
    """
    if environ is None:
        environ = os.environ
    explicit = environ.get(SOCKET_ENV_VAR)
    if explicit:
        return explicit
    runtime_dir = environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return os.path.join(runtime_dir, _RUNTIME_DIR_SUFFIX)
    return SYSTEM_SOCKET_PATH


def resolve_socket_path(socket_path=None, environ=None):
    """Return ``socket_path`` as a str, or the default when it is ``None``."""
    if socket_path is None:
        return default_socket_path(environ)
    path = os.fsdecode(os.fspath(socket_path))
    if not path:
        raise ValueError("socket_path must not be empty")
    return path
