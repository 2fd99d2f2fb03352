// One process lane worker, daemon side: a thread that owns one worker
// process and its link, and runs the jobs of one RunQueue there, one at a
// time. It relays the job's output and serves its queue calls while the
// job runs; when the process dies, only its job fails.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "daemon/base/status.h"
#include "daemon/core/job.h"
#include "daemon/core/job_totals.h"
#include "daemon/core/job_wakeup.h"
#include "daemon/core/run_queue.h"
#include "daemon/core/scheduler.h"
#include "daemon/core/worker.h"
#include "daemon/process/link.h"
#include "daemon/process/spawn.h"
#include "daemon/python/builtin_module.h"

namespace ei {

struct ProcessWorkerOptions {
  WorkerSpec spec;             // what the process is started with
  std::uint64_t max_jobs = 0;  // pool workers end after this many jobs; 0: never
  // A pool worker that waited this long for a job asks on_idle whether it
  // may end; 0: it never asks.
  std::chrono::milliseconds idle_exit{0};
};

class ProcessWorker : public Worker {
 public:
  using Role = ProcessWorkerSnapshot::Role;
  struct Callbacks {
    /// On the worker's thread, once its process is ready (ok) or could not
    /// start (error; the thread then ends).
    std::function<void(ProcessWorker&, const Status&)> on_ready;
    /// On the worker's thread when it stops taking jobs on its own (its
    /// process died, it reached max_jobs, or a job left threads running),
    /// so that a fresh one takes its place.
    std::function<void(ProcessWorker&)> on_retire;
    /// On the worker's thread, last, after its process has ended.
    std::function<void(ProcessWorker&)> on_exit;
    /// When an abandoned job is skipped.
    std::function<void()> on_drop;
    /// On the worker's thread when it waited idle_exit for a job: true
    /// lets it end (the lane took it out of its pool, with no replacement).
    std::function<bool(ProcessWorker&)> on_idle;
  };

  /// `queues` serves the jobs' queue calls (the daemon's in-job service).
  ProcessWorker(int worker_id, Role role, std::shared_ptr<RunQueue> queue,
                const ProcessWorkerOptions& options, python::QueueService* queues,
                JobTotals* totals);
  ~ProcessWorker() override;  // joins the thread

  ProcessWorker(const ProcessWorker&) = delete;
  ProcessWorker& operator=(const ProcessWorker&) = delete;

  void Start(Callbacks callbacks);
  /// Closes the queue: the worker runs what is queued, then ends.
  void Stop() { queue_->Close(); }
  void Join();
  /// SIGKILL to the process: its job is given up, or the daemon stops.
  void Kill();

  void Interrupt(const std::shared_ptr<JobControl>& control) override;
  void MarkRetired() override { retired_ = true; }
  int worker_id() const override { return worker_id_; }
  void NoteWhere(JobReply& reply) const override {
    reply.process_worker = worker_id_;
    reply.pid = Snapshot().pid;
  }

  bool retired() const { return retired_; }
  void MarkLeased(std::uint64_t lease_id);
  RunQueue& queue() { return *queue_; }
  ProcessWorkerSnapshot Snapshot() const;

 private:
  void Main(Callbacks callbacks);
  std::string Launch();
  void Serve(const Callbacks& callbacks);
  std::optional<Job> NextJob(bool pool, const Callbacks& callbacks);
  JobReply RunOne(Job& job);
  void SendDefinitions(const std::vector<Definition>& definitions);
  bool Relay(Job& job, std::uint64_t run_id, JobOutcome* outcome);
  void ServeQueueCall(const proto::Frame& frame, const Job& job);
  std::string EndProcess();
  void SetState(ProcessWorkerSnapshot::State state);
  void SetCurrent(std::shared_ptr<JobControl> control, std::uint64_t run_id);

  const int worker_id_;
  const std::shared_ptr<RunQueue> queue_;
  const ProcessWorkerOptions options_;
  python::QueueService* const queues_;
  JobTotals* const totals_;
  std::thread thread_;
  std::unique_ptr<WorkerLink> link_;  // set by Launch, before any job
  std::atomic<pid_t> pid_{-1};
  UniqueFd pidfd_;  // guarded by mu_; signals reach this process even once reaped
  std::atomic<bool> retired_{false};
  bool ended_ = false;                 // worker thread: the process is gone
  std::set<std::string> defined_;      // worker thread: digests the process has
  std::uint64_t next_run_ = 1;         // worker thread
  JobWakeup wakeup_;  // ends a queue call of the running job when it is stopped

  mutable std::mutex mu_;
  ProcessWorkerSnapshot snapshot_;        // guarded by mu_
  std::shared_ptr<JobControl> current_;   // guarded by mu_
  std::uint64_t current_run_ = 0;         // guarded by mu_
};

}  // namespace ei
