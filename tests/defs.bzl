"""The one shape of this package's Python tests."""

def ei_py_test(name, size = "medium", srcs = None, data = [], deps = [], daemon = True, **kwargs):
    """A unittest file run under the project's CPython.

    End-to-end tests (`daemon = True`, the default) get the built daemon in
    their runfiles; every test gets the harness and the client package.
    """
    native.py_test(
        name = name,
        size = size,
        srcs = srcs or [name + ".py"],
        data = (["//daemon:extrainterpretersd"] if daemon else []) + data,
        python_version = "PY3",
        srcs_version = "PY3",
        deps = [
            ":harness",
            "//client/python:extrainterpreters",
        ] + deps,
        **kwargs
    )
