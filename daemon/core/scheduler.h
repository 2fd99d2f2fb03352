// Where a connection's jobs go, as the network layer sees it: submit, lease,
// cancel, release, and a snapshot for status. The interpreter pool is one
// implementation (core/interpreter_pool.h); the network layer never learns
// which, so it builds and links without Python.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/core/job.h"

namespace ei {

/// The answer to a lease request.
struct LeaseGrant {
  bool ok = false;
  std::uint64_t lease_id = 0;
  std::int64_t interpreter_id = -1;
  std::string error_code;  // PROTOCOL.md code when !ok
  std::string message;
  /// A process lane lease: its worker's number and pid (0 otherwise).
  int process_worker = 0;
  long pid = 0;
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

/// A point-in-time view of one process worker, for status.
struct ProcessWorkerSnapshot {
  enum class State { kStarting, kIdle, kBusy, kStopping };
  enum class Role { kPool, kLease };
  int worker_id = 0;
  long pid = 0;
  Role role = Role::kPool;
  std::uint64_t lease_id = 0;  // when role is kLease
  State state = State::kStarting;
  std::uint64_t jobs_done = 0;
  std::optional<std::chrono::steady_clock::time_point> job_started;
};

struct PoolSnapshot {
  bool ready = false;
  std::vector<InterpreterSnapshot> interpreters;  // pool, then leases, then the spare
  std::vector<ProcessWorkerSnapshot> process_workers;  // the process lane: pool, then leases
  std::size_t queue_depth = 0;
  std::size_t active_leases = 0;
  int max_interpreters = 0;
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  /// Queues a job for any pool worker.
  virtual void Submit(Job job) = 0;

  /// Reserves a dedicated interpreter (or, in the process lane, worker
  /// process); `done` is called once, maybe at once, maybe later on
  /// another thread.
  virtual void Lease(Lane lane, std::function<void(LeaseGrant)> done) = 0;

  enum class LeaseSubmit { kQueued, kUnknown, kLost };
  /// Queues a job on a lease. Unless kQueued, the job is left untouched:
  /// kLost means the lease's interpreter was retired.
  virtual LeaseSubmit SubmitToLease(std::uint64_t lease_id, Job& job) = 0;

  /// Stops a job: a queued one is answered as cancelled at once; a running
  /// one gets JobCancelled raised in it, and is given up after the grace
  /// period. Returns the state the job was in.
  virtual JobControl::State Cancel(const std::shared_ptr<JobControl>& control) = 0;

  /// Ends a lease once its queued jobs ran; `done` is called after its
  /// interpreter ended. False when there is no such lease.
  virtual bool Release(std::uint64_t lease_id, std::function<void()> done) = 0;

  virtual PoolSnapshot Snapshot() const = 0;

  /// Jobs queued and not yet started, pool and leases together (cheap).
  virtual std::size_t QueueDepth() const = 0;
};

}  // namespace ei
