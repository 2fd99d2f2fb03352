#include "daemon/core/interpreter_pool.h"

#include <algorithm>
#include <utility>

#include "daemon/base/log.h"

namespace ei {

// Lifecycle and ownership: the pool owns every Interpreter. Callbacks arrive
// on interpreter threads (and the watchdog's) and only move pointers between
// the pool's maps; an Interpreter is joined and destroyed later, by another
// thread (ReapLocked or Shutdown), never by itself. Lock order: a job's
// JobControl lock may be held while taking nothing else; the pool's mu_ is
// never held while calling into a JobControl that answers.

using Disposition = JobReply::Disposition;
using Role = InterpreterSnapshot::Role;

InterpreterPool::InterpreterPool(PoolOptions options, JobTotals* totals)
    : options_(std::move(options)),
      totals_(totals),
      workers_(options_.workers),
      stopper_(
          Lane::kInterpreter, options_.cancel_grace,
          [this](Worker* it) {
            it->MarkRetired();
            ++totals_->retired_stuck;  // before the answer, so status agrees with it
          },
          [this](Worker* it) { Retire(it); }) {}

InterpreterPool::~InterpreterPool() { Shutdown(); }

std::unique_ptr<Interpreter> InterpreterPool::MakeInterpreter(Role role,
                                                              std::shared_ptr<RunQueue> queue) {
  return std::make_unique<Interpreter>(next_worker_id_++, role, std::move(queue),
                                       options_.interpreter);
}

void InterpreterPool::Start(std::function<void(const Status&)> on_ready) {
  std::lock_guard lock(mu_);
  on_ready_ = std::move(on_ready);
  for (int i = 0; i < workers_; ++i) StartPoolWorkerLocked();
  if (workers_ < options_.max_interpreters) StartSpareLocked();
}

void InterpreterPool::StartPoolWorkerLocked() {
  pool_.push_back(MakeInterpreter(Role::kPool, pool_queue_));
  pool_.back()->Start({[this](Interpreter&, const Status& s) { OnPoolReady(s); },
                       [this](Interpreter& it) { OnExit(it); }, [this] { ++totals_->dropped; },
                       [this](Interpreter& it) { OnRetire(it); }});
}

void InterpreterPool::OnPoolReady(const Status& status) {
  std::function<void(const Status&)> report;
  {
    std::lock_guard lock(mu_);
    if (ready_reported_) return;
    if (status.ok() && ++pool_warm_ < options_.workers) return;
    ready_reported_ = true;
    report = on_ready_;
  }
  if (report) report(status);
}

void InterpreterPool::AnswerShuttingDown(Job& job) {
  if (job.is_abandoned()) return;
  JobReply reply;
  reply.disposition = Disposition::kShuttingDown;
  job.control->Answer(std::move(reply));
}

void InterpreterPool::Submit(Job job) {
  stopper_.Track(job.control);
  if (!pool_queue_->Push(job)) AnswerShuttingDown(job);
}

JobControl::State InterpreterPool::Cancel(const std::shared_ptr<JobControl>& control) {
  return stopper_.Cancel(control);
}

// A retired interpreter leaves the pool (or its lease) at once; its thread
// ends by itself if the job ever returns. A fresh one takes its place.
void InterpreterPool::Retire(Worker* interpreter) {
  std::vector<Job> orphans;
  std::uint64_t lost_lease = 0;
  {
    std::lock_guard lock(mu_);
    for (auto it = pool_.begin(); it != pool_.end(); ++it) {
      if (it->get() != interpreter) continue;
      retiring_.push_back(std::move(*it));
      pool_.erase(it);
      if (!shutting_down_) StartPoolWorkerLocked();
      break;
    }
    auto lost = leases_.Lose(interpreter);
    if (lost.worker) {
      lost_lease = lost.id;
      orphans = std::move(lost.orphans);
      retiring_.push_back(std::move(lost.worker));
      if (spare_ == nullptr && !shutting_down_) StartSpareLocked();
    }
  }
  exit_cv_.notify_all();  // Shutdown may be waiting for this interpreter
  log::Warning("interpreter retired: worker " + std::to_string(interpreter->worker_id()) +
               " did not end a stopped job within the grace period" +
               (lost_lease ? "; lease " + std::to_string(lost_lease) + " has ended" : ""));
  AnswerLeaseLost(orphans);
}

void InterpreterPool::StartSpareLocked() {
  spare_ = MakeInterpreter(Role::kSpare, std::make_shared<RunQueue>());
  spare_ready_ = false;
  spare_->Start({[this](Interpreter& it, const Status& s) { OnSpareReady(it, s); },
                 [this](Interpreter& it) { OnExit(it); }, [this] { ++totals_->dropped; },
                 [this](Interpreter& it) { OnRetire(it); }});
}

LeaseGrant InterpreterPool::AssignSpareLocked() {
  LeaseGrant grant;
  grant.ok = true;
  grant.interpreter_id = spare_->Snapshot().interpreter_id;
  grant.lease_id = leases_.NewId();
  spare_->MarkLeased(grant.lease_id);
  leases_.Grant(grant.lease_id, std::move(spare_));
  spare_ready_ = false;
  // Keep one warm interpreter ready while another lease could still fit.
  if (workers_ + static_cast<int>(leases_.size()) < options_.max_interpreters) {
    StartSpareLocked();
  }
  return grant;
}

void InterpreterPool::Lease(std::function<void(LeaseGrant)> done) {
  LeaseGrant grant;
  {
    std::lock_guard lock(mu_);
    ReapLocked();
    const int in_use = workers_ + static_cast<int>(leases_.size() + waiting_leases_.size());
    if (shutting_down_) {
      grant.error_code = "shutting_down";
      grant.message = "cannot lease an interpreter: the daemon is shutting down";
    } else if (in_use >= options_.max_interpreters) {
      grant.error_code = "lease_limit";
      grant.message = "cannot lease an interpreter: " + std::to_string(in_use) + " of " +
                      std::to_string(options_.max_interpreters) +
                      " interpreters are in use (max_interpreters); release a lease or raise "
                      "--max-interpreters";
    } else if (spare_ != nullptr && spare_ready_) {
      grant = AssignSpareLocked();
    } else {
      waiting_leases_.push_back(std::move(done));
      if (spare_ == nullptr) StartSpareLocked();
      return;
    }
  }
  done(std::move(grant));
}

void InterpreterPool::OnSpareReady(Interpreter& spare, const Status& status) {
  std::deque<std::function<void(LeaseGrant)>> answer;
  LeaseGrant grant;
  {
    std::lock_guard lock(mu_);
    if (shutting_down_ || spare_.get() != &spare) return;
    if (!status.ok()) {
      // Everyone waiting hears why; the next Lease call tries a new spare.
      retiring_.push_back(std::move(spare_));
      answer.swap(waiting_leases_);
      grant = {false, 0, -1, "internal", "cannot create an interpreter: " + status.message()};
    } else {
      spare_ready_ = true;
      if (waiting_leases_.empty()) return;
      answer.push_back(std::move(waiting_leases_.front()));
      waiting_leases_.pop_front();
      grant = AssignSpareLocked();
    }
  }
  for (auto& done : answer) done(grant);
}

Scheduler::LeaseSubmit InterpreterPool::SubmitToLease(std::uint64_t lease_id, Job& job) {
  std::lock_guard lock(mu_);
  Interpreter* leased = leases_.Find(lease_id);
  if (leased == nullptr) return leases_.Missing(lease_id);
  stopper_.Track(job.control);
  if (!leased->queue().Push(job)) AnswerShuttingDown(job);
  return Scheduler::LeaseSubmit::kQueued;
}

bool InterpreterPool::Release(std::uint64_t lease_id, std::function<void()> done) {
  std::unique_lock lock(mu_);
  // A lost lease has ended already; releasing it is no error.
  if (!leases_.End(lease_id, std::move(done), lock, &retiring_)) return false;
  if (lock.owns_lock() && spare_ == nullptr && !shutting_down_) StartSpareLocked();
  return true;
}

void InterpreterPool::OnExit(Interpreter& interpreter) {
  std::function<void()> done;
  {
    std::lock_guard lock(mu_);
    exited_.insert(&interpreter);
    exit_cv_.notify_all();
    done = leases_.TakeEnded(&interpreter);
  }
  if (done) done();
}

// A pool interpreter that stops taking jobs on its own (max_jobs reached, or
// a job left threads running) is replaced by a fresh one before it ends.
void InterpreterPool::OnRetire(Interpreter& interpreter) {
  const int threads = interpreter.threads_left();
  {
    std::lock_guard lock(mu_);
    if (shutting_down_) return;
    auto p = std::find_if(pool_.begin(), pool_.end(),
                          [&](const auto& it) { return it.get() == &interpreter; });
    if (p == pool_.end()) return;
    retiring_.push_back(std::move(*p));
    pool_.erase(p);
    StartPoolWorkerLocked();
    ++(threads > 0 ? totals_->retired_threads : totals_->retired_recycled);
    exit_cv_.notify_all();  // Shutdown may wait for it: it is retired now
  }
  if (threads > 0) {
    log::Warning("interpreter retired: worker " + std::to_string(interpreter.worker_id()) +
                 " had a job leave " + std::to_string(threads) +
                 " threads running; a fresh interpreter takes its place");
  }
}

// Joins interpreters whose threads are past their last callback, so the join
// cannot wait on mu_.
void InterpreterPool::ReapLocked() {
  std::erase_if(retiring_, [this](std::unique_ptr<Interpreter>& it) {
    if (!exited_.contains(it.get())) return false;
    exited_.erase(it.get());
    it->Join();
    return true;
  });
}

int InterpreterPool::Shutdown() {
  std::vector<std::unique_ptr<Interpreter>> all;
  std::vector<Job> unrun;
  std::deque<std::function<void(LeaseGrant)>> waiting;
  {
    std::lock_guard lock(mu_);
    if (shutting_down_ && pool_.empty() && leases_.empty() && !spare_ && retiring_.empty()) {
      return 0;
    }
    shutting_down_ = true;
    waiting.swap(waiting_leases_);
    TakeEverythingLocked(&all, &unrun);
  }
  for (auto& done : waiting) {
    done({false, 0, -1, "shutting_down", "cannot lease an interpreter: the daemon is shutting down"});
  }
  for (Job& job : unrun) {
    if (job.is_abandoned()) ++totals_->dropped;
    AnswerShuttingDown(job);
  }
  // The watchdog keeps running: a stopped job that never ends is given up
  // (retired) while we wait here, which is what lets the wait end.
  int let_go = 0;
  for (auto& it : all) {
    if (!AwaitExit(*it)) {
      // Stuck in a job for good: never joined, never destroyed (its thread
      // still uses it). The process ends without finalizing Python.
      it->Abandon();
      it.release();
      ++let_go;
    }
  }
  stopper_.Stop();
  std::lock_guard lock(mu_);
  exited_.clear();
  return let_go;
}

// Every interpreter, and every job still queued anywhere, leaves the pool.
void InterpreterPool::TakeEverythingLocked(std::vector<std::unique_ptr<Interpreter>>* all,
                                           std::vector<Job>* unrun) {
  *unrun = pool_queue_->CloseAndTake();
  for (auto& it : pool_) all->push_back(std::move(it));
  leases_.TakeAll(all);
  if (spare_) all->push_back(std::move(spare_));
  for (auto& it : retiring_) all->push_back(std::move(it));
  pool_.clear();
  retiring_.clear();
  for (auto& it : *all) {
    for (Job& job : it->queue().CloseAndTake()) unrun->push_back(std::move(job));
  }
}

// Waits until `interpreter`'s thread is past its last callback (and joins
// it: true) or it was retired, stuck in a job (false).
bool InterpreterPool::AwaitExit(Interpreter& interpreter) {
  bool exited;
  {
    std::unique_lock lock(mu_);
    exit_cv_.wait(lock, [&] {
      return exited_.contains(&interpreter) || interpreter.retired();
    });
    exited = exited_.contains(&interpreter);
  }
  if (exited) interpreter.Join();
  return exited;
}

std::size_t InterpreterPool::QueueDepth() const {
  std::lock_guard lock(mu_);
  std::size_t depth = pool_queue_->size();
  return depth + leases_.QueueDepth();
}

PoolSnapshot InterpreterPool::Snapshot() const {
  PoolSnapshot snap;
  std::lock_guard lock(mu_);
  snap.ready = ready_reported_ && pool_warm_ >= options_.workers && !shutting_down_;
  snap.max_interpreters = options_.max_interpreters;
  snap.active_leases = leases_.size();
  snap.queue_depth = pool_queue_->size();
  for (const auto& it : pool_) snap.interpreters.push_back(it->Snapshot());
  leases_.ForEach([&](const Interpreter& it) { snap.interpreters.push_back(it.Snapshot()); });
  snap.queue_depth += leases_.QueueDepth();
  if (spare_) snap.interpreters.push_back(spare_->Snapshot());
  return snap;
}

// Shrinking never interrupts: a leave job waits its turn behind the queued
// jobs, and the interpreter that runs it leaves only if the pool is still
// bigger than wanted by then (so a grow in between cancels it).
std::string InterpreterPool::Resize(int workers) {
  std::lock_guard lock(mu_);
  if (shutting_down_) return "the daemon is shutting down";
  const int leased = static_cast<int>(leases_.size());
  if (workers < 1 || workers + leased > options_.max_interpreters) {
    return "workers " + std::to_string(workers) + " is not between 1 and max_interpreters (" +
           std::to_string(options_.max_interpreters) + ") less the " + std::to_string(leased) +
           " leased interpreters";
  }
  workers_ = workers;
  ReapLocked();
  const int now = static_cast<int>(pool_.size());
  for (int i = now; i < workers; ++i) StartPoolWorkerLocked();
  for (int i = workers; i < now; ++i) {
    Job leave;
    leave.payload = NoOpJobPayload();
    leave.control = std::make_shared<JobControl>(
        [this](JobReply reply) { OnLeaveJobDone(reply.interpreter_id); }, std::nullopt);
    pool_queue_->Push(leave);  // takes only the queue's own lock
  }
  return "";
}

// On the worker thread that ran the leave job, right before it would take
// the next job: Leave() makes it end instead.
void InterpreterPool::OnLeaveJobDone(std::int64_t interpreter_id) {
  int worker_id = 0;
  int target = 0;
  {
    std::lock_guard lock(mu_);
    target = workers_;
    if (shutting_down_ || static_cast<int>(pool_.size()) <= workers_) return;
    for (auto it = pool_.begin(); it != pool_.end(); ++it) {
      if ((*it)->Snapshot().interpreter_id != interpreter_id) continue;
      worker_id = (*it)->worker_id();
      (*it)->Leave();
      retiring_.push_back(std::move(*it));
      pool_.erase(it);
      break;
    }
  }
  if (worker_id != 0) {
    log::Info("pool shrank: worker " + std::to_string(worker_id) +
              " ended after its last job; the pool is down to " + std::to_string(target) +
              " interpreters");
  }
}

}  // namespace ei
