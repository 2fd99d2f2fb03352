// A connection's reusable memory file for large results (PROTOCOL.md,
// "Large data"): lent to one job at a time, then to the client until it
// says it is done with it.
#pragma once

#include <cstddef>
#include <mutex>

#include "daemon/base/unique_fd.h"

namespace ei {

/// Writing a 64 MiB result into a new memfd faults in every page (about
/// 45 ms here); into this file, whose pages stay faulted in and mapped, it
/// costs the copy (about 10 ms). Lives as long as its session and the jobs
/// that hold it (shared_ptr); the kernel frees the file once the client has
/// closed its descriptors too.
class ResultRegion {
 public:
  /// Grows up to `limit` bytes.
  explicit ResultRegion(std::size_t limit) : limit_(limit) {}
  ~ResultRegion();
  ResultRegion(const ResultRegion&) = delete;
  ResultRegion& operator=(const ResultRegion&) = delete;

  /// Worker thread: lends the region to a job for a result of `size`
  /// bytes, growing it if needed. Returns its mapping and sets `*fd` to a
  /// new descriptor of the file (the caller's), or returns nullptr when it
  /// is lent already, the client still has it, or it cannot grow.
  char* Lend(std::size_t size, int* fd);

  /// The job's reply carries the file: it is the client's until Free.
  void GiveToClient();

  /// The job did not send it after all.
  void TakeBack();

  /// The client says it is done with it (`free_region`). Ignored unless the
  /// client has it: a stray one must not free it under a job writing it.
  void FreeFromClient();

  /// The connection closed: the file is unmapped and closed now, or as
  /// soon as the job it is lent to gives it back; it is never lent again.
  void Close();

  /// A job kept a view of the mapping: it is never lent, moved or unmapped
  /// again (the memory stays with the daemon until it exits).
  void Pin();

 private:
  enum class State { kFree, kLent, kWithClient, kPinned };
  bool GrowLocked(std::size_t size);
  void ReleaseLocked();

  const std::size_t limit_;
  std::mutex mu_;
  State state_ = State::kFree;  // guarded by mu_
  bool closed_ = false;         // guarded by mu_
  UniqueFd fd_;                 // guarded by mu_
  char* map_ = nullptr;         // guarded by mu_
  std::size_t size_ = 0;        // guarded by mu_
};

}  // namespace ei
