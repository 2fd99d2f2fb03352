"""Compiler flags for the project's own C++ code (not for system headers)."""

EI_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-missing-field-initializers",
]
