// The jobs waiting to run: a FIFO that worker threads block on. (The
// user-visible queues are another thing: daemon/queues/.)
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "daemon/core/job.h"

namespace ei {

/// A FIFO of jobs waiting to run, that worker threads block on.
class RunQueue {
 public:
  /// False when the queue is closed: the caller still owns `job`.
  bool Push(Job& job);

  /// The next job; blocks while the queue is open and empty. nullopt once
  /// it is closed and empty.
  std::optional<Job> Pop();

  /// As Pop, but waits at most `wait`: nullopt with `*idle` set when no job
  /// came in that time (the queue still open).
  std::optional<Job> PopWithin(std::chrono::milliseconds wait, bool* idle);

  /// Stops Push; Pop still hands out what is queued.
  void Close();

  /// Closes the queue and takes every job still in it.
  std::vector<Job> CloseAndTake();

  std::size_t size() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Job> jobs_;
  bool closed_ = false;
};

}  // namespace ei
