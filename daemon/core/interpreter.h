// One worker: an OS thread that owns one own-GIL sub-interpreter and its
// shared buffer, and runs the jobs of one RunQueue there, one at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/core/job.h"
#include "daemon/core/job_wakeup.h"
#include "daemon/core/run_queue.h"
#include "daemon/core/scheduler.h"
#include "daemon/core/worker.h"

namespace ei::python {
class JobRunner;
class SubInterpreter;
}

namespace ei {

struct InterpreterOptions {
  std::vector<std::string> preload;  // modules imported when it is created
  /// Modules (and their submodules) a job may not import here: they run
  /// in the process lane (--process-modules).
  std::vector<std::string> refused;
  std::size_t buffer_size = 10 << 20;
  std::size_t buffer_limit = 256 << 20;
  std::uint64_t max_jobs = 0;  // pool interpreters end after this many jobs; 0: never
};

class Interpreter : public Worker {
 public:
  /// Called on the worker's thread once its interpreter is warm (ok) or
  /// could not be made (error; the thread then ends).
  using ReadyCallback = std::function<void(Interpreter&, const Status&)>;
  /// Called on the worker's thread after the interpreter ended (or failed to
  /// start), just before the thread returns.
  using ExitCallback = std::function<void(Interpreter&)>;
  /// Called when an abandoned job is skipped.
  using DropCallback = std::function<void()>;
  /// Called on the worker's thread when it stops taking jobs on its own (it
  /// reached max_jobs, or a job left threads running), before it ends its
  /// interpreter, which may wait for those threads.
  using RetireCallback = std::function<void(Interpreter&)>;

  struct Callbacks {
    ReadyCallback on_ready;
    ExitCallback on_exit;
    DropCallback on_drop;
    RetireCallback on_retire;
  };

  Interpreter(int worker_id, InterpreterSnapshot::Role role, std::shared_ptr<RunQueue> queue,
              InterpreterOptions options);
  ~Interpreter();  // joins the thread

  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  void Start(Callbacks callbacks);

  /// Closes the queue: the worker runs what is queued, then ends.
  void Stop() { queue_->Close(); }
  void Join();
  /// Lets a stuck thread go: it is never joined (process exit ends it).
  void Abandon();

  /// Raises the job's stop exception (JobCancelled or TimeoutError) in it,
  /// from a helper thread, if `control` is still the running job.
  void Interrupt(const std::shared_ptr<JobControl>& control) override;

  /// Takes no more jobs after the current one; its interpreter is never
  /// reused. Only sets a flag: safe under other locks.
  void MarkRetired() override { retired_ = true; }
  /// Takes no more jobs after the current one and ends normally (the pool
  /// shrank). Only sets a flag: safe under other locks.
  void Leave() { leaving_ = true; }
  bool retired() const { return retired_; }
  /// True when it ended because it reached max_jobs.
  bool recycled() const { return recycled_; }
  /// Threads the last job left running (a pool interpreter then retires).
  int threads_left() const { return threads_left_; }

  /// A spare becomes a lease's own interpreter.
  void MarkLeased(std::uint64_t lease_id);
  int worker_id() const override { return worker_id_; }
  void NoteWhere(JobReply& reply) const override {
    reply.interpreter_id = Snapshot().interpreter_id;
  }
  RunQueue& queue() { return *queue_; }
  InterpreterSnapshot Snapshot() const;

 private:
  void Main(Callbacks callbacks);
  void Serve(python::JobRunner& runner, const DropCallback& on_drop);
  bool ShouldRetire(const JobReply& reply, std::uint64_t ran);
  std::optional<Refusal> HandBackAs(Job& job, const JobReply& reply);
  JobReply RunOne(Job& job, python::JobRunner& runner, class SharedBuffer& buffer);
  void SetState(InterpreterSnapshot::State state);
  void SetCurrent(std::shared_ptr<JobControl> control);
  void JoinInterrupters();

  const int worker_id_;
  const std::shared_ptr<RunQueue> queue_;
  const InterpreterOptions options_;
  std::thread thread_;
  std::atomic<bool> retired_{false};
  std::atomic<bool> recycled_{false};
  std::atomic<int> threads_left_{0};
  std::atomic<bool> leaving_{false};
  // Set once the interpreter exists, reset on this thread after every
  // interrupter thread was joined; read by interrupters.
  std::unique_ptr<python::SubInterpreter> sub_;
  _object* cancelled_type_ = nullptr;  // the bootstrap's JobCancelled
  JobWakeup wakeup_;  // ends the running job's queue wait when it is stopped

  mutable std::mutex mu_;
  InterpreterSnapshot snapshot_;                 // guarded by mu_
  std::shared_ptr<JobControl> current_;          // guarded by mu_; changed with the GIL held
  std::vector<std::thread> interrupters_;        // guarded by mu_
};

}  // namespace ei
