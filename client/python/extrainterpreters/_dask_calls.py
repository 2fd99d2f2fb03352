"""Nested calls of a Dask task, as the daemon runs them: standard library only.

Most Dask tasks are one call, ``fn(*args, **kwargs)`` with every argument
already a value, and go to the daemon as exactly that job. Some nest calls
(``f(g(x), [h(y)])``, a namedtuple built from task results) or are a fused
chain of tasks (dask's ``_execute_subgraph``). ``_dask_plan`` turns those,
on the Dask worker, into the small tree of this module's nodes, and the
job is ``evaluate(tree)``. The tree names only the user's functions and
this module, so nothing of Dask has to import in a sub-interpreter.

The daemon embeds this package, so this module is the daemon's own copy
there: it must import nothing beyond the standard library.
"""

__all__ = ["Build", "Call", "Graph", "Ref", "evaluate"]


class Call:
    """``fn(*args, **kwargs)``, each argument a node or a plain value."""

    __slots__ = ("fn", "args", "kwargs")

    def __init__(self, fn, args, kwargs):
        self.fn = fn
        self.args = tuple(args)
        self.kwargs = dict(kwargs)

    def __reduce__(self):
        return Call, (self.fn, self.args, self.kwargs)


class Build:
    """A list, tuple, set or frozenset of ``items`` (nodes or values); for
    ``dict``, ``items`` alternate keys and values."""

    __slots__ = ("kind", "items")

    def __init__(self, kind, items):
        self.kind = kind
        self.items = tuple(items)

    def __reduce__(self):
        return Build, (self.kind, self.items)


class Ref:
    """The value of ``key`` in the innermost enclosing ``Graph``."""

    __slots__ = ("key",)

    def __init__(self, key):
        self.key = key

    def __reduce__(self):
        return Ref, (self.key,)


class Graph:
    """A fused chain of tasks: ``nodes`` are ``(key, node)`` pairs in an
    order where each comes after those it refers to; its value is the
    value of ``out``. Each Graph has its own keys, as dask's subgraphs do."""

    __slots__ = ("nodes", "out")

    def __init__(self, nodes, out):
        self.nodes = tuple(nodes)
        self.out = out

    def __reduce__(self):
        return Graph, (self.nodes, self.out)


def evaluate(node):
    """The job: compute ``node``'s value."""
    return _value(node, None)


def _value(node, scope):
    kind = type(node)
    if kind is Call:
        args = [_value(arg, scope) for arg in node.args]
        kwargs = {name: _value(arg, scope) for name, arg in node.kwargs.items()}
        return node.fn(*args, **kwargs)
    if kind is Build:
        items = [_value(item, scope) for item in node.items]
        if node.kind is dict:
            return dict(zip(items[0::2], items[1::2]))
        return node.kind(items)
    if kind is Ref:
        return scope[node.key]
    if kind is Graph:
        values = {}
        for key, inner in node.nodes:
            values[key] = _value(inner, values)
        return values[node.out]
    return node  # a plain value, passed as it is (as dask does)
