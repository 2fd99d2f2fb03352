// The jobs waiting to run: a FIFO that worker threads block on. (The
// user-visible queues are another thing: daemon/queues/.)
#pragma once

#include <atomic>
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
///
/// A worker that finds the queue empty in Pop first spins for a while
/// (SetIdleSpin, --idle-spin-us) before it sleeps: a job pushed meanwhile is
/// taken without waking a sleeping thread, which on a VM costs tens of
/// microseconds of the job's round trip. Push wakes a sleeper only when
/// the spinning workers are fewer than the queued jobs.
class RunQueue {
 public:
  /// How long Pop spins before sleeping, for every queue (0: never). The
  /// daemon's I/O thread spins as long after its last handler.
  static void SetIdleSpin(std::chrono::microseconds spin);
  static std::chrono::microseconds IdleSpin();

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
  // Spins while the queue is empty and open, up to the idle spin.
  void Spin();
  // Under mu_: keeps queued_ and closing_ in step with jobs_ and closed_.
  void PublishLocked();
  // Under mu_: the first job, if any, taken out.
  std::optional<Job> TakeLocked();

  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Job> jobs_;
  bool closed_ = false;
  // Read by spinners without mu_.
  std::atomic<std::size_t> queued_{0};
  std::atomic<bool> closing_{false};
  std::atomic<int> spinners_{0};
};

}  // namespace ei
