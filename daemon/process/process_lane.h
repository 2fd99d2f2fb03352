// The process lane: warm worker processes that share one run queue, grown
// on demand, and leased ones that each serve one client. Jobs here may use
// any extension module, and a job that kills its process fails alone.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/core/job.h"
#include "daemon/core/job_stopper.h"
#include "daemon/core/job_totals.h"
#include "daemon/core/lease_book.h"
#include "daemon/core/run_queue.h"
#include "daemon/core/scheduler.h"
#include "daemon/process/process_worker.h"

namespace ei {

struct ProcessLaneOptions {
  int workers = 1;      // warm from the start
  int max_workers = 2;  // pool workers, at most; and leased ones, at most
  std::chrono::milliseconds cancel_grace{5000};
  ProcessWorkerOptions worker;
};

class ProcessLane {
 public:
  /// Lease ids of this lane start here, so one number space serves both
  /// lanes (the interpreter pool counts from 1).
  static constexpr std::uint64_t kFirstLeaseId = std::uint64_t{1} << 40;
  static bool IsLease(std::uint64_t lease_id) { return lease_id >= kFirstLeaseId; }

  /// `queues` serves queue calls of jobs; `totals` outlives the lane.
  ProcessLane(ProcessLaneOptions options, JobTotals* totals, python::QueueService* queues);
  ~ProcessLane();  // Shutdown()

  ProcessLane(const ProcessLane&) = delete;
  ProcessLane& operator=(const ProcessLane&) = delete;

  /// Starts the warm workers; `on_ready` is called once, on a worker
  /// thread: ok when all are ready (at once when there are none), or the
  /// first error.
  void Start(std::function<void(const Status&)> on_ready);

  void Submit(Job job);
  void Lease(std::function<void(LeaseGrant)> done);
  Scheduler::LeaseSubmit SubmitToLease(std::uint64_t lease_id, Job& job);
  JobControl::State Cancel(const std::shared_ptr<JobControl>& control);
  bool Release(std::uint64_t lease_id, std::function<void()> done);

  /// Answers queued jobs and pending leases with "shutting down", lets
  /// running jobs finish (or be given up), ends every worker process.
  void Shutdown();

  std::vector<ProcessWorkerSnapshot> Snapshot() const;
  /// Every warm worker started, and the lane is not shutting down.
  bool ready() const;
  std::size_t QueueDepth() const;

 private:
  std::unique_ptr<ProcessWorker> MakeWorker(ProcessWorker::Role role,
                                            std::shared_ptr<RunQueue> queue);
  ProcessWorker::Callbacks CallbacksFor(bool pool);
  void StartPoolWorkerLocked();
  void GrowIfBusyLocked();
  void OnReady(ProcessWorker& worker, const Status& status, bool pool);
  void OnRetire(ProcessWorker& worker);
  void OnExit(ProcessWorker& worker);
  bool OnIdle(ProcessWorker& worker);
  void Retire(Worker* worker);
  ProcessWorker* TakeOutLocked(const Worker* worker, std::vector<Job>* orphans);
  void ReapLocked();
  int LeasedLocked() const;
  static void AnswerShuttingDown(Job& job);

  const ProcessLaneOptions options_;
  JobTotals* const totals_;
  python::QueueService* const queues_;
  const std::shared_ptr<RunQueue> pool_queue_ = std::make_shared<RunQueue>();
  std::function<void(const Status&)> on_ready_;

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<ProcessWorker>> pool_;
  LeaseBook<ProcessWorker> leases_{kFirstLeaseId};
  std::map<const ProcessWorker*, std::function<void(LeaseGrant)>> granting_;  // leases starting
  std::vector<std::unique_ptr<ProcessWorker>> retiring_;  // ending; joined once exited
  std::set<const ProcessWorker*> exited_;
  std::condition_variable exit_cv_;
  int next_worker_id_ = 1;
  int warm_ = 0;
  bool ready_reported_ = false;
  bool start_failed_ = false;
  bool shutting_down_ = false;

  JobStopper stopper_;  // last: its callbacks use the members above
};

}  // namespace ei
