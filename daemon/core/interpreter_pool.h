// The warm pool: `workers` interpreters that share one job queue, leased
// interpreters that each serve one client, and one warm spare that the next
// lease takes.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "daemon/core/interpreter.h"
#include "daemon/core/job.h"
#include "daemon/core/job_totals.h"
#include "daemon/core/lease_book.h"
#include "daemon/core/run_queue.h"
#include "daemon/core/scheduler.h"
#include "daemon/core/job_stopper.h"

namespace ei {

struct PoolOptions {
  int workers = 1;
  int max_interpreters = 4;  // pool interpreters and leases together
  /// How long a job told to stop may take to end before its interpreter is
  /// given up.
  std::chrono::milliseconds cancel_grace{5000};
  InterpreterOptions interpreter;
};

class InterpreterPool {
 public:
  /// `totals` (which must outlive the pool) gets the events the pool sees:
  /// dropped jobs and retired interpreters.
  InterpreterPool(PoolOptions options, JobTotals* totals);
  ~InterpreterPool();  // Shutdown()

  InterpreterPool(const InterpreterPool&) = delete;
  InterpreterPool& operator=(const InterpreterPool&) = delete;

  /// Creates the pool interpreters and a warm spare. `on_ready` is called
  /// once, on an interpreter thread: ok when every pool interpreter is warm,
  /// or the first error.
  void Start(std::function<void(const Status&)> on_ready);

  /// Queues a job for any pool interpreter.
  void Submit(Job job);

  /// Reserves a dedicated interpreter; `done` is called once, maybe at once,
  /// maybe later on an interpreter thread.
  void Lease(std::function<void(LeaseGrant)> done);

  /// Queues a job on a lease. Unless kQueued, the job is left untouched:
  /// kLost means the lease's interpreter was retired.
  Scheduler::LeaseSubmit SubmitToLease(std::uint64_t lease_id, Job& job);

  /// Stops a job: a queued one is answered as cancelled at once; a running
  /// one gets JobCancelled raised in it, and is given up after the grace
  /// period. Returns the state the job was in.
  JobControl::State Cancel(const std::shared_ptr<JobControl>& control);

  /// Ends a lease once its queued jobs ran; `done` is called after its
  /// interpreter ended. False when there is no such lease.
  bool Release(std::uint64_t lease_id, std::function<void()> done);

  /// Answers every queued job and pending lease with "shutting down", lets
  /// running jobs finish, ends every interpreter and joins every thread but
  /// those of retired interpreters still stuck in a job, which are let go.
  /// Returns how many were let go (if any, Python must not be finalized).
  int Shutdown();

  PoolSnapshot Snapshot() const;

  /// Jobs queued and not yet started, pool and leases together (cheap).
  std::size_t QueueDepth() const;

  /// Changes the number of pool interpreters without dropping a job:
  /// growing starts new ones; shrinking queues one no-op "leave" job per
  /// surplus interpreter behind the queued jobs, and whoever runs it ends
  /// after it. Returns "" or why the size is not allowed.
  std::string Resize(int workers);

 private:
  std::unique_ptr<Interpreter> MakeInterpreter(InterpreterSnapshot::Role role,
                                               std::shared_ptr<RunQueue> queue);
  void OnPoolReady(const Status& status);
  void OnSpareReady(Interpreter& spare, const Status& status);
  void OnExit(Interpreter& interpreter);
  void OnRetire(Interpreter& interpreter);
  void StartPoolWorkerLocked();
  void StartSpareLocked();
  void Retire(Worker* worker);
  LeaseGrant AssignSpareLocked();
  void ReapLocked();
  void TakeEverythingLocked(std::vector<std::unique_ptr<Interpreter>>* all,
                            std::vector<Job>* unrun);
  bool AwaitExit(Interpreter& interpreter);
  static void AnswerShuttingDown(Job& job);
  void OnLeaveJobDone(std::int64_t interpreter_id);

  const PoolOptions options_;
  JobTotals* const totals_;
  const std::shared_ptr<RunQueue> pool_queue_ = std::make_shared<RunQueue>();
  std::function<void(const Status&)> on_ready_;

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Interpreter>> pool_;
  LeaseBook<Interpreter> leases_{1};
  std::unique_ptr<Interpreter> spare_;
  bool spare_ready_ = false;
  std::deque<std::function<void(LeaseGrant)>> waiting_leases_;
  std::vector<std::unique_ptr<Interpreter>> retiring_;  // released or failed, ending
  std::set<const Interpreter*> exited_;                 // threads past their last callback
  std::condition_variable exit_cv_;                     // exited_ grew, or one was retired
  int workers_;  // the pool's target size: options_.workers until Resize
  int next_worker_id_ = 1;
  int pool_warm_ = 0;
  bool ready_reported_ = false;
  bool shutting_down_ = false;

  JobStopper stopper_;  // last: its callbacks use the members above
};

}  // namespace ei
