"""Compiler flags for the project's own C++ code (not for system headers)."""

EI_COPTS = [
    # Optimised even in Bazel's default fastbuild mode (which means -O0):
    # the daemon's per-frame work (JSON, Asio, the codec) is the hot path.
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-missing-field-initializers",
]
