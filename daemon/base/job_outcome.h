// What a job is given and what it comes to, as plain data: the Python layer
// fills these in, and the core and the network layer pass them on without
// seeing a Python object.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/base/unique_fd.h"

namespace ei {

/// What a Python error was, captured once into plain strings.
struct PyErrorInfo {
  std::string type;       // "module.QualName" of the exception class
  std::string message;    // str(exception)
  std::string traceback;  // traceback.format_exception(...) joined
};

/// How a job ended (no Python objects).
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
/// thread that runs the job; must not block.
using OutputSink = std::function<void(std::string_view stream, std::string_view text)>;

}  // namespace ei
