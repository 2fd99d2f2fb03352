// The main interpreter of a process lane worker: jobs run in it on the
// process's main thread, so every extension module loads (numpy, pandas...),
// and a job is stopped by a signal to that thread.
#pragma once

#include <functional>

#include "daemon/base/status.h"

namespace ei::python {

class JobRunner;

class MainInterpreter {
 public:
  /// Holds the main interpreter's GIL for its scope. Only on the thread that
  /// called Runtime::Initialize, after it, with no GIL held.
  class Attached {
   public:
    Attached();
    ~Attached();
    Attached(const Attached&) = delete;
    Attached& operator=(const Attached&) = delete;
  };

  /// Makes `signal_number` stop the running job: its Python handler raises
  /// the stop exception that RequestStop left pending (a blocking call such
  /// as time.sleep is interrupted by it). Inside an Attached scope, after
  /// runner.Load.
  static Status InstallStopSignal(JobRunner& runner, int signal_number);

  /// From another thread, with no GIL held: leaves JobCancelled (or
  /// TimeoutError when `timeout`) pending for the handler of the stop
  /// signal, which the caller then sends to the main thread, if
  /// `still_wanted()` (called with the GIL held) says so. Blocks until it
  /// gets the GIL, which a job stuck in C code may never release.
  static void RequestStop(JobRunner& runner, bool timeout,
                          const std::function<bool()>& still_wanted);
};

}  // namespace ei::python
