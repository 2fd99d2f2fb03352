#include "daemon/routing/lane_router.h"

#include <utility>

#include "daemon/routing/pickle_scan.h"

namespace ei {

namespace {

// How many functions (and definitions) the router remembers.
constexpr std::size_t kMaxRemembered = 4096;

}  // namespace

LaneRouter::LaneRouter(InterpreterPool& interpreters, ProcessLane& processes,
                       RouterOptions options, JobTotals* totals)
    : interpreters_(interpreters),
      processes_(processes),
      process_modules_(options.process_modules.begin(), options.process_modules.end()),
      rerun_(options.rerun),
      totals_(totals) {}

// I/O thread (every run request) and, for a job handed back, an
// interpreter thread (HandBack).
void LaneRouter::Submit(Job job) {
  std::string key;
  const Lane lane = Choose(job, &key);
  job.control->SetLane(lane);
  if (lane == Lane::kProcess) {
    ++totals_->lane_process;
    processes_.Submit(std::move(job));
    return;
  }
  ++totals_->lane_interpreter;
  if (job.lane == Lane::kAuto) {
    job.rerun = job.rerun && rerun_;
    job.hand_back = [this, key](Job handed, Refusal refusal) {
      HandBack(std::move(handed), refusal, key);
    };
  }
  interpreters_.Submit(std::move(job));
}

// The lane for a new job; `*key` is its function, for remembering.
Lane LaneRouter::Choose(Job& job, std::string* key) {
  if (job.lane != Lane::kAuto) return job.lane;
  if (NamesProcessModule(job, key)) {
    ++totals_->routed_module;
    return Lane::kProcess;
  }
  if (!key->empty() && Remembers(*key)) {
    ++totals_->routed_remembered;
    return Lane::kProcess;
  }
  return Lane::kInterpreter;
}

// Whether the job's pickle, or a by-value definition it uses, refers to a
// module of --process-modules. Sets `*key` from the job's pickle.
bool LaneRouter::NamesProcessModule(const Job& job, std::string* key) {
  const PickleRefs refs = ScanPickle({job.payload.data(), job.payload.size()});
  *key = refs.function_key;
  auto any_process_module = [this](const std::set<std::string>& modules) {
    for (const std::string& module : modules) {
      if (process_modules_.contains(module)) return true;
    }
    return false;
  };
  if (any_process_module(refs.modules)) return true;
  for (const auto& [digest, blob] : job.definitions) {
    auto it = definition_uses_module_.find(digest);
    if (it == definition_uses_module_.end()) {
      if (definition_uses_module_.size() >= kMaxRemembered) definition_uses_module_.clear();
      const bool uses = any_process_module(ScanPickle({blob->data(), blob->size()}).modules);
      it = definition_uses_module_.emplace(digest, uses).first;
    }
    if (it->second) return true;
  }
  return false;
}

// On the interpreter thread that ran the job: a sub-interpreter refused it.
void LaneRouter::HandBack(Job job, Refusal refusal, const std::string& key) {
  ++(refusal == Refusal::kLoad ? totals_->routed_load : totals_->routed_run);
  ++totals_->lane_process;
  if (!key.empty()) Remember(key);
  job.hand_back = nullptr;
  job.control->SetLane(Lane::kProcess);
  processes_.Submit(std::move(job));
}

void LaneRouter::Remember(const std::string& key) {
  std::lock_guard lock(mu_);
  if (!remembered_.insert(key).second) return;
  remembered_order_.push_back(key);
  if (remembered_order_.size() > kMaxRemembered) {
    remembered_.erase(remembered_order_.front());
    remembered_order_.pop_front();
  }
}

bool LaneRouter::Remembers(const std::string& key) const {
  std::lock_guard lock(mu_);
  return remembered_.contains(key);
}

void LaneRouter::Lease(Lane lane, std::function<void(LeaseGrant)> done) {
  if (lane == Lane::kProcess) {
    processes_.Lease(std::move(done));
  } else {
    interpreters_.Lease(std::move(done));
  }
}

// A lease's jobs run where the lease is, whatever lane they asked for.
Scheduler::LeaseSubmit LaneRouter::SubmitToLease(std::uint64_t lease_id, Job& job) {
  if (ProcessLane::IsLease(lease_id)) {
    job.control->SetLane(Lane::kProcess);
    return processes_.SubmitToLease(lease_id, job);
  }
  return interpreters_.SubmitToLease(lease_id, job);
}

JobControl::State LaneRouter::Cancel(const std::shared_ptr<JobControl>& control) {
  if (control->lane() == Lane::kProcess) return processes_.Cancel(control);
  return interpreters_.Cancel(control);
}

bool LaneRouter::Release(std::uint64_t lease_id, std::function<void()> done) {
  if (ProcessLane::IsLease(lease_id)) return processes_.Release(lease_id, std::move(done));
  return interpreters_.Release(lease_id, std::move(done));
}

PoolSnapshot LaneRouter::Snapshot() const {
  PoolSnapshot snapshot = interpreters_.Snapshot();
  snapshot.ready = snapshot.ready && processes_.ready();
  snapshot.process_workers = processes_.Snapshot();
  snapshot.queue_depth += processes_.QueueDepth();
  return snapshot;
}

std::size_t LaneRouter::QueueDepth() const {
  return interpreters_.QueueDepth() + processes_.QueueDepth();
}

}  // namespace ei
