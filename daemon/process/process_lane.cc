#include "daemon/process/process_lane.h"

#include <algorithm>
#include <utility>

#include "daemon/base/log.h"

namespace ei {

// Lifecycle and ownership, as in the interpreter pool: the lane owns every
// ProcessWorker; callbacks arrive on worker threads (and the watchdog's)
// and only move pointers between the lane's maps; a worker is joined and
// destroyed later by another thread (ReapLocked or Shutdown). The lane's
// mutex is taken before a worker's, never the other way round.

using Disposition = JobReply::Disposition;
using Role = ProcessWorker::Role;
using State = ProcessWorkerSnapshot::State;

ProcessLane::ProcessLane(ProcessLaneOptions options, JobTotals* totals,
                         python::QueueService* queues)
    : options_(std::move(options)),
      totals_(totals),
      queues_(queues),
      stopper_(
          Lane::kProcess, options_.cancel_grace,
          [this](Worker* it) {
            it->MarkRetired();
            ++totals_->retired_stuck;  // before the answer, so status agrees with it
          },
          [this](Worker* it) { Retire(it); }) {}

ProcessLane::~ProcessLane() { Shutdown(); }

std::unique_ptr<ProcessWorker> ProcessLane::MakeWorker(Role role, std::shared_ptr<RunQueue> queue) {
  ProcessWorkerOptions worker = options_.worker;
  worker.spec.worker_id = next_worker_id_;
  return std::make_unique<ProcessWorker>(next_worker_id_++, role, std::move(queue), worker,
                                         queues_, totals_);
}

ProcessWorker::Callbacks ProcessLane::CallbacksFor(bool pool) {
  return {[this, pool](ProcessWorker& it, const Status& s) { OnReady(it, s, pool); },
          [this](ProcessWorker& it) { OnRetire(it); }, [this](ProcessWorker& it) { OnExit(it); },
          [this] { ++totals_->dropped; },
          [this](ProcessWorker& it) { return OnIdle(it); }};
}

void ProcessLane::Start(std::function<void(const Status&)> on_ready) {
  bool none = false;
  {
    std::lock_guard lock(mu_);
    on_ready_ = std::move(on_ready);
    for (int i = 0; i < options_.workers; ++i) StartPoolWorkerLocked();
    none = options_.workers == 0;
    ready_reported_ = none;
  }
  if (none) on_ready_(Status::Ok());
}

void ProcessLane::StartPoolWorkerLocked() {
  pool_.push_back(MakeWorker(Role::kPool, pool_queue_));
  pool_.back()->Start(CallbacksFor(/*pool=*/true));
}

int ProcessLane::LeasedLocked() const {
  return static_cast<int>(leases_.size() + granting_.size());
}

// Grown on demand: another worker starts while more jobs wait than there
// are workers free (or starting) to take them, up to max_workers.
void ProcessLane::GrowIfBusyLocked() {
  if (shutting_down_ || static_cast<int>(pool_.size()) >= options_.max_workers) return;
  std::size_t free = 0;
  for (const auto& it : pool_) {
    const State state = it->Snapshot().state;
    if (state == State::kIdle || state == State::kStarting) ++free;
  }
  if (pool_queue_->size() > free) StartPoolWorkerLocked();
}

void ProcessLane::OnReady(ProcessWorker& worker, const Status& status, bool pool) {
  std::function<void(const Status&)> report;
  std::function<void(LeaseGrant)> grant_done;
  LeaseGrant grant;
  {
    std::lock_guard lock(mu_);
    if (!pool) {
      auto it = granting_.find(&worker);
      if (it == granting_.end()) return;
      grant_done = std::move(it->second);
      granting_.erase(it);
      grant = {status.ok(), 0, -1, status.ok() ? "" : "internal",
               status.ok() ? "" : "cannot start a process worker for the lease: " + status.message()};
      if (status.ok()) {
        grant.process_worker = worker.worker_id();
        grant.pid = worker.Snapshot().pid;
        grant.lease_id = leases_.NewId();
        worker.MarkLeased(grant.lease_id);
      }
    }
    if (pool && !ready_reported_ && (!status.ok() || ++warm_ >= options_.workers)) {
      ready_reported_ = true;
      start_failed_ = !status.ok();
      report = on_ready_;
    }
  }
  if (grant_done) {
    if (grant.ok) {
      std::lock_guard lock(mu_);
      // Moved from the starting set to the leases (see Lease).
      for (auto it = retiring_.begin(); it != retiring_.end(); ++it) {
        if (it->get() != &worker) continue;
        leases_.Grant(grant.lease_id, std::move(*it));
        retiring_.erase(it);
        break;
      }
    }
    grant_done(grant);
  }
  if (report) report(status);
}

void ProcessLane::AnswerShuttingDown(Job& job) {
  if (job.is_abandoned()) return;
  JobReply reply;
  reply.disposition = Disposition::kShuttingDown;
  job.control->Answer(std::move(reply));
}

void ProcessLane::Submit(Job job) {
  job.control->SetLane(Lane::kProcess);
  stopper_.Track(job.control);
  if (!pool_queue_->Push(job)) {
    AnswerShuttingDown(job);
    return;
  }
  std::lock_guard lock(mu_);
  ReapLocked();
  GrowIfBusyLocked();
}

JobControl::State ProcessLane::Cancel(const std::shared_ptr<JobControl>& control) {
  return stopper_.Cancel(control);
}

// A lease gets a worker process of its own, started for it. Until it is
// ready it waits among the retiring ones (owned, not yet a lease).
void ProcessLane::Lease(std::function<void(LeaseGrant)> done) {
  LeaseGrant refused;
  {
    std::lock_guard lock(mu_);
    ReapLocked();
    if (shutting_down_) {
      refused = {false, 0, -1, "shutting_down",
                 "cannot lease a process worker: the daemon is shutting down"};
    } else if (LeasedLocked() >= options_.max_workers) {
      refused = {false, 0, -1, "lease_limit",
                 "cannot lease a process worker: " + std::to_string(LeasedLocked()) + " of " +
                     std::to_string(options_.max_workers) +
                     " are leased (max_process_workers); release a lease or raise "
                     "--max-process-workers"};
    } else {
      std::unique_ptr<ProcessWorker> worker = MakeWorker(Role::kLease, std::make_shared<RunQueue>());
      granting_[worker.get()] = std::move(done);
      ProcessWorker* started = worker.get();
      retiring_.push_back(std::move(worker));
      started->Start(CallbacksFor(/*pool=*/false));
      return;
    }
  }
  done(std::move(refused));
}

Scheduler::LeaseSubmit ProcessLane::SubmitToLease(std::uint64_t lease_id, Job& job) {
  std::lock_guard lock(mu_);
  ProcessWorker* leased = leases_.Find(lease_id);
  if (leased == nullptr) return leases_.Missing(lease_id);
  job.control->SetLane(Lane::kProcess);
  stopper_.Track(job.control);
  if (!leased->queue().Push(job)) AnswerShuttingDown(job);
  return Scheduler::LeaseSubmit::kQueued;
}

bool ProcessLane::Release(std::uint64_t lease_id, std::function<void()> done) {
  std::unique_lock lock(mu_);
  return leases_.End(lease_id, std::move(done), lock, &retiring_);
}

// A worker given up on (its stopped job did not end in time) is killed; a
// fresh one takes its place in the pool, and its lease, if it had one, ends.
void ProcessLane::Retire(Worker* retired) {
  std::vector<Job> orphans;
  {
    std::lock_guard lock(mu_);
    ProcessWorker* worker = TakeOutLocked(retired, &orphans);
    if (worker == nullptr) return;
    worker->Kill();
  }
  log::Warning("process worker retired: worker " + std::to_string(retired->worker_id()) +
               " did not end a stopped job within the grace period; it was killed");
  AnswerLeaseLost(orphans);
}

// A worker that stops on its own (its process died, it reached max_jobs,
// a job left threads running) leaves the pool, and a fresh one starts; a
// leased one's lease ends.
void ProcessLane::OnRetire(ProcessWorker& worker) {
  std::vector<Job> orphans;
  {
    std::lock_guard lock(mu_);
    TakeOutLocked(&worker, &orphans);
  }
  AnswerLeaseLost(orphans);
}

// Moves `worker` from the pool or its lease to the retiring ones and
// returns it (null when it is in neither): a pool worker is replaced; a
// lease ends as lost, its queued jobs put in `orphans`.
ProcessWorker* ProcessLane::TakeOutLocked(const Worker* worker, std::vector<Job>* orphans) {
  for (auto it = pool_.begin(); it != pool_.end(); ++it) {
    if (it->get() != worker) continue;
    ProcessWorker* taken = it->get();
    retiring_.push_back(std::move(*it));
    pool_.erase(it);
    if (!shutting_down_) StartPoolWorkerLocked();
    exit_cv_.notify_all();
    return taken;
  }
  auto lost = leases_.Lose(worker);
  if (!lost.worker) return nullptr;
  ProcessWorker* taken = lost.worker.get();
  *orphans = std::move(lost.orphans);
  retiring_.push_back(std::move(lost.worker));
  exit_cv_.notify_all();
  return taken;
}

// Shrinking back: a pool worker idle for idle_exit ends while the pool is
// larger than its warm size and no job waits (Submit pushes before it
// takes mu_ to grow, so a job is either seen here or finds this worker
// gone and grows the pool).
bool ProcessLane::OnIdle(ProcessWorker& worker) {
  {
    std::lock_guard lock(mu_);
    if (shutting_down_ || static_cast<int>(pool_.size()) <= options_.workers ||
        pool_queue_->size() > 0) {
      return false;
    }
    auto it = std::find_if(pool_.begin(), pool_.end(),
                           [&](const auto& p) { return p.get() == &worker; });
    if (it == pool_.end()) return false;
    retiring_.push_back(std::move(*it));
    pool_.erase(it);
    exit_cv_.notify_all();
  }
  const auto idle_ms = options_.worker.idle_exit.count();
  log::Info("process worker " + std::to_string(worker.worker_id()) + " (pid " +
            std::to_string(worker.Snapshot().pid) + ") ends after " +
            (idle_ms % 1000 == 0 ? std::to_string(idle_ms / 1000) + " s"
                                 : std::to_string(idle_ms) + " ms") +
            " without a job; the pool shrinks back toward its " +
            std::to_string(options_.workers) + " warm workers");
  return true;
}

void ProcessLane::OnExit(ProcessWorker& worker) {
  std::function<void()> done;
  {
    std::lock_guard lock(mu_);
    exited_.insert(&worker);
    exit_cv_.notify_all();
    done = leases_.TakeEnded(&worker);
  }
  if (done) done();
}

void ProcessLane::ReapLocked() {
  std::erase_if(retiring_, [this](std::unique_ptr<ProcessWorker>& it) {
    if (!exited_.contains(it.get())) return false;
    exited_.erase(it.get());
    it->Join();
    return true;
  });
}

void ProcessLane::Shutdown() {
  std::vector<std::unique_ptr<ProcessWorker>> all;
  std::vector<Job> unrun;
  std::map<const ProcessWorker*, std::function<void(LeaseGrant)>> granting;
  {
    std::lock_guard lock(mu_);
    if (shutting_down_ && pool_.empty() && leases_.empty() && retiring_.empty()) return;
    shutting_down_ = true;
    granting.swap(granting_);
    unrun = pool_queue_->CloseAndTake();
    for (auto& it : pool_) all.push_back(std::move(it));
    leases_.TakeAll(&all);
    for (auto& it : retiring_) all.push_back(std::move(it));
    pool_.clear();
    retiring_.clear();
    for (auto& it : all) {
      for (Job& job : it->queue().CloseAndTake()) unrun.push_back(std::move(job));
    }
  }
  for (auto& [worker, done] : granting) {
    done({false, 0, -1, "shutting_down", "cannot lease a process worker: the daemon is shutting down"});
  }
  for (Job& job : unrun) {
    if (job.is_abandoned()) ++totals_->dropped;
    AnswerShuttingDown(job);
  }
  // Running jobs finish; one given up meanwhile has its process killed, so
  // every worker thread ends.
  for (auto& it : all) it->Join();
  stopper_.Stop();
  std::lock_guard lock(mu_);
  exited_.clear();
}

std::vector<ProcessWorkerSnapshot> ProcessLane::Snapshot() const {
  std::vector<ProcessWorkerSnapshot> snap;
  std::lock_guard lock(mu_);
  for (const auto& it : pool_) snap.push_back(it->Snapshot());
  leases_.ForEach([&](const ProcessWorker& it) { snap.push_back(it.Snapshot()); });
  return snap;
}

bool ProcessLane::ready() const {
  std::lock_guard lock(mu_);
  return ready_reported_ && !start_failed_ && !shutting_down_;
}

std::size_t ProcessLane::QueueDepth() const {
  std::lock_guard lock(mu_);
  std::size_t depth = pool_queue_->size();
  return depth + leases_.QueueDepth();
}

}  // namespace ei
