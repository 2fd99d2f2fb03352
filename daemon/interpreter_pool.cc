#include "daemon/interpreter_pool.h"

#include <utility>

namespace ei {

// Lifecycle and ownership: the pool owns every Interpreter. Callbacks arrive
// on interpreter threads and only move pointers between the pool's maps; an
// Interpreter is joined and destroyed later, by another thread (ReapLocked or
// Shutdown), never by itself.

InterpreterPool::InterpreterPool(PoolOptions options) : options_(std::move(options)) {}

InterpreterPool::~InterpreterPool() { Shutdown(); }

std::unique_ptr<Interpreter> InterpreterPool::MakeInterpreter(InterpreterSnapshot::Role role,
                                                              std::shared_ptr<JobQueue> queue) {
  return std::make_unique<Interpreter>(next_worker_id_++, role, std::move(queue),
                                       options_.interpreter);
}

void InterpreterPool::Start(std::function<void(const python::Status&)> on_ready) {
  std::lock_guard lock(mu_);
  on_ready_ = std::move(on_ready);
  for (int i = 0; i < options_.workers; ++i) {
    pool_.push_back(MakeInterpreter(InterpreterSnapshot::Role::kPool, pool_queue_));
    pool_.back()->Start([this](Interpreter&, const python::Status& s) { OnPoolReady(s); },
                        [this](Interpreter& it) { OnExit(it); },
                        [this](Interpreter::JobEnd end) { OnJob(end); });
  }
  if (options_.workers < options_.max_interpreters) StartSpareLocked();
}

void InterpreterPool::OnPoolReady(const python::Status& status) {
  std::function<void(const python::Status&)> report;
  {
    std::lock_guard lock(mu_);
    if (ready_reported_) return;
    if (status.ok() && ++pool_warm_ < options_.workers) return;
    ready_reported_ = true;
    report = on_ready_;
  }
  if (report) report(status);
}

void InterpreterPool::OnJob(Interpreter::JobEnd end) {
  switch (end) {
    case Interpreter::JobEnd::kCompleted: ++completed_; break;
    case Interpreter::JobEnd::kFailed: ++failed_; break;
    case Interpreter::JobEnd::kDropped: ++dropped_; break;
  }
}

void InterpreterPool::AnswerShuttingDown(Job& job) {
  if (job.is_abandoned()) return;
  JobReply reply;
  reply.disposition = JobReply::Disposition::kShuttingDown;
  job.on_done(std::move(reply));
}

void InterpreterPool::Submit(Job job) {
  ++submitted_;
  if (!pool_queue_->Push(job)) {
    ++failed_;
    AnswerShuttingDown(job);
  }
}

void InterpreterPool::StartSpareLocked() {
  spare_ = MakeInterpreter(InterpreterSnapshot::Role::kSpare, std::make_shared<JobQueue>());
  spare_ready_ = false;
  spare_->Start([this](Interpreter& it, const python::Status& s) { OnSpareReady(it, s); },
                [this](Interpreter& it) { OnExit(it); },
                [this](Interpreter::JobEnd end) { OnJob(end); });
}

LeaseGrant InterpreterPool::AssignSpareLocked() {
  LeaseGrant grant;
  grant.ok = true;
  grant.lease_id = next_lease_id_++;
  grant.interpreter_id = spare_->Snapshot().interpreter_id;
  spare_->MarkLeased(grant.lease_id);
  leases_[grant.lease_id] = std::move(spare_);
  spare_ready_ = false;
  // Keep one warm interpreter ready while another lease could still fit.
  if (options_.workers + static_cast<int>(leases_.size()) < options_.max_interpreters) {
    StartSpareLocked();
  }
  return grant;
}

void InterpreterPool::Lease(std::function<void(LeaseGrant)> done) {
  LeaseGrant grant;
  {
    std::lock_guard lock(mu_);
    ReapLocked();
    const int in_use = options_.workers + static_cast<int>(leases_.size() + waiting_leases_.size());
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

void InterpreterPool::OnSpareReady(Interpreter& spare, const python::Status& status) {
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

bool InterpreterPool::SubmitToLease(std::uint64_t lease_id, Job& job) {
  std::lock_guard lock(mu_);
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return false;
  ++submitted_;
  if (!it->second->queue().Push(job)) {
    ++failed_;
    AnswerShuttingDown(job);
  }
  return true;
}

bool InterpreterPool::Release(std::uint64_t lease_id, std::function<void()> done) {
  std::lock_guard lock(mu_);
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return false;
  Interpreter* leased = it->second.get();
  release_done_[leased] = std::move(done);
  retiring_.push_back(std::move(it->second));
  leases_.erase(it);
  leased->Stop();
  if (spare_ == nullptr && !shutting_down_) StartSpareLocked();
  return true;
}

void InterpreterPool::OnExit(Interpreter& interpreter) {
  std::function<void()> done;
  {
    std::lock_guard lock(mu_);
    exited_.insert(&interpreter);
    auto it = release_done_.find(&interpreter);
    if (it != release_done_.end()) {
      done = std::move(it->second);
      release_done_.erase(it);
    }
  }
  if (done) done();
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

void InterpreterPool::Shutdown() {
  std::vector<std::unique_ptr<Interpreter>> all;
  std::vector<Job> unrun;
  std::deque<std::function<void(LeaseGrant)>> waiting;
  {
    std::lock_guard lock(mu_);
    if (shutting_down_ && pool_.empty() && leases_.empty() && !spare_ && retiring_.empty()) return;
    shutting_down_ = true;
    waiting.swap(waiting_leases_);
    unrun = pool_queue_->CloseAndTake();
    for (auto& it : pool_) all.push_back(std::move(it));
    for (auto& [id, it] : leases_) all.push_back(std::move(it));
    if (spare_) all.push_back(std::move(spare_));
    for (auto& it : retiring_) all.push_back(std::move(it));
    pool_.clear();
    leases_.clear();
    retiring_.clear();
    for (auto& it : all) {
      std::vector<Job> taken = it->queue().CloseAndTake();
      for (Job& job : taken) unrun.push_back(std::move(job));
    }
  }
  for (auto& done : waiting) {
    done({false, 0, -1, "shutting_down", "cannot lease an interpreter: the daemon is shutting down"});
  }
  for (Job& job : unrun) {
    ++(job.is_abandoned() ? dropped_ : failed_);
    AnswerShuttingDown(job);
  }
  for (auto& it : all) it->Join();
  std::lock_guard lock(mu_);
  exited_.clear();
}

PoolSnapshot InterpreterPool::Snapshot() const {
  PoolSnapshot snap;
  std::lock_guard lock(mu_);
  snap.ready = ready_reported_ && pool_warm_ == options_.workers && !shutting_down_;
  snap.max_interpreters = options_.max_interpreters;
  snap.active_leases = leases_.size();
  snap.queue_depth = pool_queue_->size();
  for (const auto& it : pool_) snap.interpreters.push_back(it->Snapshot());
  for (const auto& [id, it] : leases_) {
    snap.interpreters.push_back(it->Snapshot());
    snap.queue_depth += it->queue().size();
  }
  if (spare_) snap.interpreters.push_back(spare_->Snapshot());
  snap.totals = {submitted_.load(), completed_.load(), failed_.load(), dropped_.load()};
  return snap;
}

}  // namespace ei
