// Runs pickled jobs inside one attached sub-interpreter through the worker
// bootstrap module (worker_bootstrap.py).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/base/job_outcome.h"
#include "daemon/base/status.h"

struct _object;  // PyObject

namespace ei::python {

class JobRunner {
 public:
  JobRunner() = default;
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  /// Installs the loader and bootstrap modules and imports every `preload`
  /// module. With `refused` (a sub-interpreter's), importing a module it
  /// names (or a submodule), or one of CPython's own extension modules
  /// that cannot load in a sub-interpreter, then raises CPython's
  /// ImportError for those, before any of its code runs
  /// (module_guard.py says why). The interpreter's GIL must be held.
  Status Load(const std::vector<std::string>& preload,
              const std::optional<std::vector<std::string>>& refused = std::nullopt);

  /// Runs the job whose pickle fills buffer[0:size); the output is pickled
  /// into the same buffer and copied into the outcome. `definitions` are the
  /// by-value functions the job uses; `output` (may be empty) gets what the
  /// job prints. The GIL must be held.
  JobOutcome Run(char* buffer, std::size_t capacity, std::size_t size,
                 const std::vector<Definition>& definitions, const OutputSink& output,
                 const OutOfBand& out_of_band = {});

  /// The bootstrap's JobCancelled class, raised in cancelled jobs.
  _object* cancelled_type() const { return cancelled_type_; }

  /// The worker bootstrap module (borrowed), once loaded.
  _object* bootstrap() const { return bootstrap_; }

  /// TimeoutError, raised in jobs past their timeout.
  static _object* timeout_type();

  /// Drops the references this runner holds. The GIL must be held; call
  /// before the interpreter ends.
  void Unload();

 private:
  friend struct EmitAccess;
  void SettleOutOfBand(const OutOfBand& out_of_band, JobOutcome* outcome);

  _object* bootstrap_ = nullptr;       // _extrainterpreters_worker
  _object* run_job_ = nullptr;         // _extrainterpreters_worker.run_job
  _object* cancelled_type_ = nullptr;  // _extrainterpreters_worker.JobCancelled
  _object* emit_ = nullptr;            // a builtin that calls output_
  _object* settle_ = nullptr;          // _extrainterpreters_shm.settle_received
  const OutputSink* output_ = nullptr;  // set only while a job runs
  const LendResultSpace* lend_ = nullptr;  // set only while a job runs
  const OutOfBand* out_of_band_ = nullptr;  // set only while a job runs
  _object* mapped_view_ = nullptr;      // the view of OutOfBand::mapped, while a job runs
  _object* lent_view_ = nullptr;        // the view of lent space, while a job runs
};

}  // namespace ei::python
