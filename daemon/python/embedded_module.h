// A Python module whose source is compiled into the daemon.
#pragma once

namespace ei::python {

struct EmbeddedModule {
  const char* name;    // "extrainterpreters._queue"
  bool package;        // true for a package's __init__
  const char* source;  // its Python source
};

}  // namespace ei::python
