// Runs pickled jobs inside one attached sub-interpreter through the worker
// bootstrap module (worker_bootstrap.py).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/python/status.h"
#include "daemon/python/unique_fd.h"

struct _object;  // PyObject

namespace ei::python {

/// How a job ended, as plain data (no Python objects).
struct JobOutcome {
  enum class Kind { kOk, kRaised, kLoadFailed, kResultNotPicklable, kInternal };
  Kind kind = Kind::kInternal;
  std::vector<char> payload;  // the pickled result or exception; may be empty
  PyErrorInfo error;          // set for every kind but kOk
  std::size_t needed_bytes = 0;  // buffer size the pickled output wanted
  /// When kOk and the result had large buffers: a memfd holding them back to
  /// back, and their lengths (PROTOCOL.md, "Large data").
  UniqueFd result_fd;
  std::vector<std::size_t> result_out_of_band;
  /// Threads the job started that were still running when it ended.
  int threads_left = 0;
  /// The job had out-of-band buffers and nothing it made still uses them:
  /// the client may write that file again (`oob_done`).
  bool out_of_band_done = false;
  /// The result's buffers went into space from `OutOfBand::lend` (and
  /// `result_fd` is a descriptor of it, when kOk).
  bool result_lent = false;
  /// That space is still seen by a view the job kept: it must stay mapped.
  bool result_space_pinned = false;
  /// Something the job made still uses `OutOfBand::mapped`: it must stay
  /// mapped.
  bool out_of_band_map_kept = false;
};

/// Lends a job reusable space for its result's buffers: at least `size`
/// writable bytes, and a new descriptor of the file that holds them in
/// `*fd`; or nullptr (the job then takes a new memfd).
using LendResultSpace = std::function<char*(std::size_t size, int* fd)>;

/// A job's out-of-band buffers: a memfd (or -1) and the buffers' lengths.
struct OutOfBand {
  int fd = -1;
  std::vector<std::size_t> lengths;
  bool share_result = false;  // the client takes a result's buffers in a memfd
  LendResultSpace lend;       // may be empty
  /// The session's read-only mapping of the file, or nullptr (the job maps
  /// it itself).
  const char* mapped = nullptr;
  std::size_t mapped_size = 0;
};

/// A function definition a job uses: its digest and its pickle.
using Definition = std::pair<std::string, std::shared_ptr<const std::vector<char>>>;

/// Receives a job's output: ("stdout" or "stderr", text). Called on the
/// worker's thread with the GIL held; must not block.
using OutputSink = std::function<void(std::string_view stream, std::string_view text)>;

class JobRunner {
 public:
  JobRunner() = default;
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  /// Installs the loader and bootstrap modules and imports every `preload`
  /// module. The interpreter's GIL must be held.
  Status Load(const std::vector<std::string>& preload);

  /// Runs the job whose pickle fills buffer[0:size); the output is pickled
  /// into the same buffer and copied into the outcome. `definitions` are the
  /// by-value functions the job uses; `output` (may be empty) gets what the
  /// job prints. The GIL must be held.
  JobOutcome Run(char* buffer, std::size_t capacity, std::size_t size,
                 const std::vector<Definition>& definitions, const OutputSink& output,
                 const OutOfBand& out_of_band = {});

  /// The bootstrap's JobCancelled class, raised in cancelled jobs.
  _object* cancelled_type() const { return cancelled_type_; }

  /// TimeoutError, raised in jobs past their timeout.
  static _object* timeout_type();

  /// Drops the references this runner holds. The GIL must be held; call
  /// before the interpreter ends.
  void Unload();

 private:
  friend struct EmitAccess;
  void SettleOutOfBand(const OutOfBand& out_of_band, JobOutcome* outcome);

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
