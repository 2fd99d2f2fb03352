// One worker: an OS thread that owns one own-GIL sub-interpreter and its
// shared buffer, and runs the jobs of one JobQueue there, one at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/job_queue.h"
#include "daemon/python/status.h"

namespace ei {

struct InterpreterOptions {
  std::vector<std::string> preload;  // modules imported when it is created
  std::size_t buffer_size = 10 << 20;
  std::size_t buffer_limit = 256 << 20;
};

/// A point-in-time view of one worker, for status.
struct InterpreterSnapshot {
  enum class State { kStarting, kIdle, kBusy, kStopping };
  enum class Role { kPool, kLease, kSpare };
  int worker_id = 0;
  std::int64_t interpreter_id = -1;
  Role role = Role::kPool;
  std::uint64_t lease_id = 0;  // when role is kLease
  State state = State::kStarting;
  std::uint64_t jobs_done = 0;
  std::optional<std::chrono::steady_clock::time_point> job_started;
};

class Interpreter {
 public:
  /// Called on the worker's thread once its interpreter is warm (ok) or
  /// could not be made (error; the thread then ends).
  using ReadyCallback = std::function<void(Interpreter&, const python::Status&)>;
  /// Called on the worker's thread after the interpreter ended (or failed to
  /// start), just before the thread returns.
  using ExitCallback = std::function<void(Interpreter&)>;
  /// How a job ended, for the pool's totals.
  enum class JobEnd { kCompleted, kFailed, kDropped };
  /// Called after each job, before its owner hears of it.
  using JobCallback = std::function<void(JobEnd)>;

  Interpreter(int worker_id, InterpreterSnapshot::Role role, std::shared_ptr<JobQueue> queue,
              InterpreterOptions options);
  ~Interpreter();  // joins the thread

  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  void Start(ReadyCallback on_ready, ExitCallback on_exit, JobCallback on_job);

  /// Closes the queue: the worker runs what is queued, then ends.
  void Stop() { queue_->Close(); }
  void Join();

  /// A spare becomes a lease's own interpreter.
  void MarkLeased(std::uint64_t lease_id);
  int worker_id() const { return worker_id_; }
  JobQueue& queue() { return *queue_; }
  InterpreterSnapshot Snapshot() const;

 private:
  void Main(ReadyCallback on_ready, ExitCallback on_exit, JobCallback on_job);
  void SetState(InterpreterSnapshot::State state);

  const int worker_id_;
  const std::shared_ptr<JobQueue> queue_;
  const InterpreterOptions options_;
  std::thread thread_;
  mutable std::mutex mu_;
  InterpreterSnapshot snapshot_;  // guarded by mu_
};

}  // namespace ei
