// The embedded CPython runtime: initialised once by the main thread, which
// then gives up the main interpreter's GIL until Finalize.
#pragma once

#include <string>
#include <vector>

#include "daemon/base/status.h"

namespace ei::python {

struct RuntimeOptions {
  std::string home;                      // sys.prefix of the CPython the build found
  std::vector<std::string> extra_paths;  // prepended to sys.path
  std::string program_name = "extrainterpretersd";
};

class Runtime {
 public:
  /// Starts CPython on the calling (main) thread and releases its GIL.
  static Status Initialize(const RuntimeOptions& options);

  /// Ends CPython. Call on the thread that called Initialize, after every
  /// sub-interpreter has ended.
  static void Finalize();

  /// Takes the main interpreter's GIL back on the thread that called
  /// Initialize (a process lane worker runs its jobs there), and gives it
  /// up again. In pairs; MainInterpreter::Attached is the scoped form.
  static void AttachMainThread();
  static void DetachMainThread();

  /// "3.13.0": the version of the libpython linked in.
  static std::string Version();

  /// PY_VERSION_HEX of the libpython linked in.
  static long HexVersion();

  /// The main interpreter's sys.path as Initialize left it (--python-path
  /// entries first); every sub-interpreter starts with the same. Empty
  /// before Initialize.
  static const std::vector<std::string>& SysPath();
};

}  // namespace ei::python
