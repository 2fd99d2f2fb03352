// Runs pickled jobs inside one attached sub-interpreter through the worker
// bootstrap module (worker_bootstrap.py).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "daemon/python/status.h"

struct _object;  // PyObject

namespace ei::python {

/// How a job ended, as plain data (no Python objects).
struct JobOutcome {
  enum class Kind { kOk, kRaised, kLoadFailed, kResultNotPicklable, kInternal };
  Kind kind = Kind::kInternal;
  std::vector<char> payload;  // the pickled result or exception; may be empty
  PyErrorInfo error;          // set for every kind but kOk
  std::size_t needed_bytes = 0;  // buffer size the pickled output wanted
};

class JobRunner {
 public:
  JobRunner() = default;
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  /// Installs the bootstrap module and imports every `preload` module.
  /// The interpreter's GIL must be held.
  Status Load(const std::vector<std::string>& preload);

  /// Runs the job whose pickle fills buffer[0:size); the output is pickled
  /// into the same buffer and copied into the outcome. The GIL must be held.
  JobOutcome Run(char* buffer, std::size_t capacity, std::size_t size);

  /// Drops the references this runner holds. The GIL must be held; call
  /// before the interpreter ends.
  void Unload();

 private:
  _object* run_job_ = nullptr;  // _extrainterpreters_worker.run_job
};

}  // namespace ei::python
