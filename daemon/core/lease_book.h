#pragma once

// The leases of one lane: which worker each lease id holds, the ids whose
// worker was given up (reported "lost" until their holder releases them),
// and what to call once a released worker has ended. Both lanes keep one
// (W = Interpreter or ProcessWorker; W has queue() -> RunQueue&).
//
// Not locked: the lane's own mutex guards it, as it guards the lane's pool.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "daemon/core/job.h"
#include "daemon/core/scheduler.h"

namespace ei {

/// Answers jobs queued on a lease that ended under them (kLeaseLost).
inline void AnswerLeaseLost(std::vector<Job>& jobs) {
  for (Job& job : jobs) {
    if (job.is_abandoned()) continue;
    JobReply reply;
    reply.disposition = JobReply::Disposition::kLeaseLost;
    job.control->Answer(std::move(reply));
  }
}

template <typename W>
class LeaseBook {
 public:
  /// Lease ids count from `first_id` (the lanes keep apart number spaces).
  explicit LeaseBook(std::uint64_t first_id) : next_id_(first_id) {}

  /// A new lease id, never given before; Grant files the worker under it.
  std::uint64_t NewId() { return next_id_++; }

  /// Lease `id` (from NewId) holds `worker` from now on.
  void Grant(std::uint64_t id, std::unique_ptr<W> worker) { leases_[id] = std::move(worker); }

  /// The worker of lease `id`, or null.
  W* Find(std::uint64_t id) const {
    auto it = leases_.find(id);
    return it == leases_.end() ? nullptr : it->second.get();
  }

  /// Why there is no worker for `id`: its worker was given up (kLost), or
  /// there never was such a lease here (kUnknown).
  Scheduler::LeaseSubmit Missing(std::uint64_t id) const {
    return lost_.contains(id) ? Scheduler::LeaseSubmit::kLost : Scheduler::LeaseSubmit::kUnknown;
  }

  /// Ends lease `id` for its holder: its worker moves to `retiring` and is
  /// told to Stop(), and `done` is kept for TakeEnded. A lease lost before
  /// has ended already: `done` is called at once, after `lock` (the lane's,
  /// held by the caller) is let go. False when there is no such lease.
  template <typename Lock>
  bool End(std::uint64_t id, std::function<void()> done, Lock& lock,
           std::vector<std::unique_ptr<W>>* retiring) {
    auto it = leases_.find(id);
    if (it == leases_.end()) {
      if (lost_.erase(id) == 0) return false;
      lock.unlock();
      done();
      return true;
    }
    W* ending = it->second.get();
    ended_[ending] = std::move(done);
    retiring->push_back(std::move(it->second));
    leases_.erase(it);
    ending->Stop();
    return true;
  }

  /// What to call now that `worker`, released by End, has ended (or null).
  std::function<void()> TakeEnded(const W* worker) {
    auto it = ended_.find(worker);
    if (it == ended_.end()) return nullptr;
    std::function<void()> done = std::move(it->second);
    ended_.erase(it);
    return done;
  }

  struct Lost {
    std::uint64_t id = 0;            // 0: the worker held no lease
    std::unique_ptr<W> worker;       // moved out of the book
    std::vector<Job> orphans;        // its queued jobs, for AnswerLeaseLost
  };
  /// `worker` (a W, or its base class) was given up: its lease, if it held
  /// one, is reported lost from now on, and its queue is closed.
  template <typename P>
  Lost Lose(const P* worker) {
    Lost lost;
    for (auto it = leases_.begin(); it != leases_.end(); ++it) {
      if (it->second.get() != worker) continue;
      lost.id = it->first;
      lost_.insert(it->first);
      lost.orphans = it->second->queue().CloseAndTake();
      lost.worker = std::move(it->second);
      leases_.erase(it);
      break;
    }
    return lost;
  }

  /// Moves every leased worker to `all` (shutdown).
  void TakeAll(std::vector<std::unique_ptr<W>>* all) {
    for (auto& [id, worker] : leases_) all->push_back(std::move(worker));
    leases_.clear();
  }

  std::size_t size() const { return leases_.size(); }
  bool empty() const { return leases_.empty(); }

  /// Jobs queued on every lease, not yet started.
  std::size_t QueueDepth() const {
    std::size_t depth = 0;
    for (const auto& [id, worker] : leases_) depth += worker->queue().size();
    return depth;
  }

  template <typename F>
  void ForEach(F&& f) const {
    for (const auto& [id, worker] : leases_) f(*worker);
  }

 private:
  std::map<std::uint64_t, std::unique_ptr<W>> leases_;
  std::set<std::uint64_t> lost_;  // given up under their holder, not yet released
  std::map<const W*, std::function<void()>> ended_;  // released, not yet ended
  std::uint64_t next_id_;
};

}  // namespace ei
