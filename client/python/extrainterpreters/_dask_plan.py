"""A Dask task, made into the job the daemon runs: the user's call only.

On a Dask worker, a task is a ``dask._task_spec`` node (``Task``, with
``TaskRef``, ``Alias``, ``DataNode`` and the ``List``/``Tuple``/``Set``/
``Dict`` containers as arguments) plus the values of its dependencies.
Calling it runs dask's code, which need not import in a sub-interpreter,
so the node is taken apart here, on the worker, and only what it calls
goes to the daemon::

    Task(k, f, TaskRef(a), 2, y=List(TaskRef(b)))  values {a: 1, b: 5}
        -> job f(1, 2, y=[5])                       (the common case)
    Task(k, f, Task(None, g, TaskRef(a)))
        -> job _dask_calls.evaluate(Call(f, [Call(g, [1])]))

Fused tasks (``_execute_subgraph``) become a ``_dask_calls.Graph``; an
``_identity_cast`` (a tuple or set of task results in a legacy graph) a
``Build``. Other functions from dask itself (``dask.bag``'s chunk
functions, say) are called in the daemon like any user function, so dask
must be on the daemon's ``--python-path``; but such a job goes to the
process lane (``lane_for``): importing dask in a sub-interpreter is not
safe on every CPython the daemon supports (on 3.12.1 it crashed the
daemon; on 3.13.0 it did until the daemon guarded ``psutil`` and
``_datetime``, whose extension modules corrupt memory when an isolated
sub-interpreter loads them; see README, "Libraries that refuse
sub-interpreters").

This module depends on ``dask._task_spec`` (dask >= 2025.1), a private
module: ``check()`` says so by name if it has changed.
"""

from dask import _task_spec as spec

from . import _dask_calls as calls

__all__ = ["check", "job_for", "lane_for", "runs_locally"]

_NODE_TYPES = (calls.Call, calls.Build, calls.Ref, calls.Graph)
_CONTAINERS = ((spec.Dict, dict), (spec.List, list), (spec.Tuple, tuple),
               (spec.Set, set))


def check():
    """Raise ImportError if dask's task classes are not as this expects."""
    names = ("GraphNode", "Task", "TaskRef", "Alias", "DataNode", "List",
             "Tuple", "Set", "Dict", "NestedContainer", "_execute_subgraph",
             "_identity_cast")
    missing = [name for name in names if not hasattr(spec, name)]
    if missing:
        import dask
        raise ImportError(
            f"extrainterpreters.dask does not know this dask ({dask.__version__}"
            f"): dask._task_spec has no {', '.join(missing)}")


def runs_locally(node):
    """True for a task that calls no function (an alias of another key, a
    literal): it is looked up on the worker, not sent to the daemon."""
    return isinstance(node, (spec.Alias, spec.DataNode))


def job_for(node, values):
    """``(fn, args, kwargs)`` of the job that computes the task ``node``,
    given the values of its dependencies (``values``, by key)."""
    if not isinstance(node, spec.Task) or isinstance(
            node, spec.NestedContainer):
        plan = _Planner(values).node(node, None)
        return calls.evaluate, (plan,), {}
    planner = _Planner(values)
    call = planner.task(node, None)
    if planner.nested or type(call) is not calls.Call:
        return calls.evaluate, (call,), {}
    return call.fn, call.args, call.kwargs


def lane_for(fn, args, lane):
    """The lane of the job ``fn(*args)`` that ``job_for`` made: ``lane``,
    except that with ``"auto"`` a job calling a function of dask's own
    packages goes to the process lane (see the module's docstring)."""
    if lane == "auto" and _calls_dask(fn, args):
        return "process"
    return lane


def _calls_dask(fn, args):
    if fn is not calls.evaluate:
        return _is_dask(fn)
    stack = [args[0]]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is calls.Call:
            if _is_dask(node.fn):
                return True
            stack.extend(node.args)
            stack.extend(node.kwargs.values())
        elif kind is calls.Build:
            stack.extend(node.items)
        elif kind is calls.Graph:
            stack.extend(inner for _, inner in node.nodes)
    return False


def _is_dask(fn):
    fn = getattr(fn, "func", fn)  # a functools.partial
    module = getattr(fn, "__module__", None) or ""
    return module.partition(".")[0] in _DASK_PACKAGES


_DASK_PACKAGES = frozenset({"dask", "distributed"})


class _Planner:
    """Turns nodes into values and ``_dask_calls`` nodes; ``nested`` says
    whether any call, container or graph is left for the daemon to make."""

    def __init__(self, values):
        self._values = values
        self.nested = False

    def node(self, obj, scope):
        """The value or ``_dask_calls`` node of one argument. ``scope``:
        the keys of the enclosing fused graph (their values are made in
        the daemon), or None outside one."""
        if isinstance(obj, spec.TaskRef):
            return self._lookup(obj.key, scope)
        if not isinstance(obj, spec.GraphNode):
            return obj
        if isinstance(obj, spec.Alias):
            return self._lookup(obj.target, scope)
        if isinstance(obj, spec.DataNode):
            return obj.value
        for container, kind in _CONTAINERS:
            if isinstance(obj, container):
                return self._build(kind, obj.args, scope)
        if isinstance(obj, spec.Task):
            self.nested = True
            return self.task(obj, scope)
        raise TypeError(f"extrainterpreters.dask cannot send a "
                        f"{type(obj).__name__} task node to the daemon")

    def task(self, task, scope):
        if task.func is spec._execute_subgraph:
            return self._graph(*task.args, scope=scope)
        if task.func is spec._identity_cast:
            items = self._build(tuple, task.args, scope)
            return calls.Call(task.kwargs["typ"], (items,), {})
        args = [self.node(arg, scope) for arg in task.args]
        kwargs = {name: self.node(arg, scope)
                  for name, arg in task.kwargs.items()}
        return calls.Call(task.func, args, kwargs)

    def _lookup(self, key, scope):
        if scope is not None and key in scope:
            self.nested = True
            return calls.Ref(key)
        return self._values[key]

    def _build(self, kind, items, scope):
        made = [self.node(item, scope) for item in items]
        if any(type(item) in _NODE_TYPES for item in made):
            self.nested = True
            return calls.Build(kind, made)
        if kind is dict:  # made on the worker: no call inside
            return dict(zip(made[0::2], made[1::2]))
        return kind(made)

    def _graph(self, inner, out, inkeys, *dependencies, scope):
        """``_execute_subgraph(inner, out, inkeys, *dependencies)``: the
        inner tasks in an order that computes each before its users."""
        self.nested = True
        keys = set(inner) | set(inkeys)
        nodes = [(key, self.node(dependency, scope))
                 for key, dependency in zip(inkeys, dependencies)]
        nodes += [(key, self.node(inner[key], keys))
                  for key in _ordered(inner)]
        return calls.Graph(nodes, out)


def _ordered(graph):
    """The keys of ``graph`` (key -> node), each after its dependencies
    within it. Iterative: a fused chain can be long."""
    done, order = set(), []
    for root in graph:
        stack = [(root, False)]
        while stack:
            key, expanded = stack.pop()
            if key in done:
                continue
            if expanded:
                done.add(key)
                order.append(key)
                continue
            stack.append((key, True))
            stack.extend((dep, False) for dep in graph[key].dependencies
                         if dep in graph and dep not in done)
    return order
