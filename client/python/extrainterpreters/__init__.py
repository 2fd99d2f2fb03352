"""Run Python callables in the sub-interpreters of ``extrainterpretersd``.

    import extrainterpreters

    def square(x):
        return x * x

    print(extrainterpreters.run(square, 7))          # a pool interpreter

    with extrainterpreters.Client() as client:       # many jobs at once
        futures = [client.submit(square, n) for n in range(10)]

    with extrainterpreters.Interpreter() as interp:  # one, with its state
        interp.run(square, 3)

    with extrainterpreters.InterpreterPoolExecutor() as pool:
        print(list(pool.map(square, range(10))))

    q = extrainterpreters.Queue.create("results")    # a queue in the daemon
    q.put({"n": 1}); q.get()                         # queue.Queue's API

    async with extrainterpreters.AsyncClient() as client:  # asyncio
        print(await client.run(square, 5))

A job can be cancelled even while it runs (``JobFuture.cancel()``), and
given a deadline (``timeout=``, raising ``JobTimeout``); what it prints
reaches this process's stdout and stderr. Inside a job, ``where()`` tells
which daemon, lane and interpreter it runs in.

Functions and arguments travel pickled: functions of modules the daemon
imports (installed libraries, its ``--python-path``) by reference, and the
rest by value (``__main__``, the REPL, lambdas, closures, and the user's
own modules and packages: the daemon says where it imports from), which
needs the daemon's Python minor version; ``ship_by_value(module)`` and
``ship_by_reference(module)`` override that choice. The socket is found as
``default_socket_path()`` says, unless given.
"""

from ._version import __version__

# Where each public name lives. They are imported on first use (PEP 562),
# so that `import extrainterpreters` stays cheap: inside a job, where the
# daemon provides this package, a Queue needs neither sockets nor asyncio.
_EXPORTS = {
    "AsyncClient": "_aio",
    "Client": "_client",
    "run": "_client",
    "BrokenInterpreterPool": "_errors",
    "DaemonConnectionError": "_errors",
    "DaemonBusy": "_errors",
    "JobLost": "_errors",
    "ExtraInterpretersError": "_errors",
    "JobTimeout": "_errors",
    "ProtocolError": "_errors",
    "RemoteError": "_errors",
    "WorkerCrashed": "_errors",
    "InterpreterPoolExecutor": "_executor",
    "JobFuture": "_future",
    "Interpreter": "_interpreter",
    "default_socket_path": "_paths",
    "Queue": "_queue",
    "ship_by_reference": "_byvalue_rule",
    "ship_by_value": "_byvalue_rule",
    "where": "_where",
}


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'extrainterpreters' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "Client",
    "AsyncClient",
    "Interpreter",
    "InterpreterPoolExecutor",
    "JobFuture",
    "Queue",
    "run",
    "ExtraInterpretersError",
    "DaemonConnectionError",
    "JobLost",
    "ProtocolError",
    "RemoteError",
    "WorkerCrashed",
    "DaemonBusy",
    "JobTimeout",
    "BrokenInterpreterPool",
    "default_socket_path",
    "ship_by_value",
    "ship_by_reference",
    "where",
    "__version__",
]
