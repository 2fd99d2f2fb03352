// Jobs and the queues that feed them to interpreter threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "daemon/python/job_runner.h"

namespace ei {

/// What happened to a job, handed to its owner.
struct JobReply {
  enum class Disposition { kRan, kShuttingDown };
  Disposition disposition = Disposition::kRan;
  python::JobOutcome outcome;        // when kRan
  std::int64_t interpreter_id = -1;  // where it ran
};

struct Job {
  std::vector<char> payload;  // pickle of (fn, args, kwargs)
  /// Called exactly once, on an interpreter thread or the shutting-down
  /// thread, unless the job is dropped. Must not block.
  std::function<void(JobReply)> on_done;
  /// Set when the job's connection closed: the job is dropped unrun.
  std::shared_ptr<const std::atomic<bool>> abandoned;

  bool is_abandoned() const { return abandoned && abandoned->load(); }
};

/// A FIFO of jobs that interpreter threads block on.
class JobQueue {
 public:
  /// False when the queue is closed: the caller still owns `job`.
  bool Push(Job& job);

  /// The next job; blocks while the queue is open and empty. nullopt once
  /// it is closed and empty.
  std::optional<Job> Pop();

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
