// The warm pool: `workers` interpreters that share one job queue, leased
// interpreters that each serve one client, and one warm spare that the next
// lease takes.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "daemon/interpreter.h"
#include "daemon/job_queue.h"

namespace ei {

struct PoolOptions {
  int workers = 1;
  int max_interpreters = 4;  // pool interpreters and leases together
  InterpreterOptions interpreter;
};

/// The answer to a lease request.
struct LeaseGrant {
  bool ok = false;
  std::uint64_t lease_id = 0;
  std::int64_t interpreter_id = -1;
  std::string error_code;  // PROTOCOL.md code when !ok
  std::string message;
};

struct PoolTotals {
  std::uint64_t submitted = 0, completed = 0, failed = 0, dropped = 0;
};

struct PoolSnapshot {
  bool ready = false;
  std::vector<InterpreterSnapshot> interpreters;  // pool, then leases, then the spare
  std::size_t queue_depth = 0;
  std::size_t active_leases = 0;
  int max_interpreters = 0;
  PoolTotals totals;
};

class InterpreterPool {
 public:
  explicit InterpreterPool(PoolOptions options);
  ~InterpreterPool();  // Shutdown()

  InterpreterPool(const InterpreterPool&) = delete;
  InterpreterPool& operator=(const InterpreterPool&) = delete;

  /// Creates the pool interpreters and a warm spare. `on_ready` is called
  /// once, on an interpreter thread: ok when every pool interpreter is warm,
  /// or the first error.
  void Start(std::function<void(const python::Status&)> on_ready);

  /// Queues a job for any pool interpreter.
  void Submit(Job job);

  /// Reserves a dedicated interpreter; `done` is called once, maybe at once,
  /// maybe later on an interpreter thread.
  void Lease(std::function<void(LeaseGrant)> done);

  /// Queues a job on a lease. False when there is no such lease (the job is
  /// left untouched).
  bool SubmitToLease(std::uint64_t lease_id, Job& job);

  /// Ends a lease once its queued jobs ran; `done` is called after its
  /// interpreter ended. False when there is no such lease.
  bool Release(std::uint64_t lease_id, std::function<void()> done);

  /// Answers every queued job and pending lease with "shutting down", lets
  /// running jobs finish, ends every interpreter and joins every thread.
  void Shutdown();

  PoolSnapshot Snapshot() const;

 private:
  std::unique_ptr<Interpreter> MakeInterpreter(InterpreterSnapshot::Role role,
                                               std::shared_ptr<JobQueue> queue);
  void OnPoolReady(const python::Status& status);
  void OnSpareReady(Interpreter& spare, const python::Status& status);
  void OnExit(Interpreter& interpreter);
  void OnJob(Interpreter::JobEnd end);
  void StartSpareLocked();
  LeaseGrant AssignSpareLocked();
  void ReapLocked();
  static void AnswerShuttingDown(Job& job);

  const PoolOptions options_;
  const std::shared_ptr<JobQueue> pool_queue_ = std::make_shared<JobQueue>();
  std::function<void(const python::Status&)> on_ready_;

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Interpreter>> pool_;
  std::map<std::uint64_t, std::unique_ptr<Interpreter>> leases_;
  std::unique_ptr<Interpreter> spare_;
  bool spare_ready_ = false;
  std::deque<std::function<void(LeaseGrant)>> waiting_leases_;
  std::vector<std::unique_ptr<Interpreter>> retiring_;  // released or failed, ending
  std::set<const Interpreter*> exited_;                 // threads past their last callback
  std::map<const Interpreter*, std::function<void()>> release_done_;
  int next_worker_id_ = 1;
  std::uint64_t next_lease_id_ = 1;
  int pool_warm_ = 0;
  bool ready_reported_ = false;
  bool shutting_down_ = false;

  std::atomic<std::uint64_t> submitted_{0}, completed_{0}, failed_{0}, dropped_{0};
};

}  // namespace ei
