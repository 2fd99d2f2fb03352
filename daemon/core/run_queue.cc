#include "daemon/core/run_queue.h"

#include <sched.h>

namespace ei {

namespace {

std::atomic<std::chrono::microseconds::rep> idle_spin_us{0};

}  // namespace

void RunQueue::SetIdleSpin(std::chrono::microseconds spin) { idle_spin_us.store(spin.count()); }

std::chrono::microseconds RunQueue::IdleSpin() {
  return std::chrono::microseconds(idle_spin_us.load(std::memory_order_relaxed));
}

// sched_yield, not a pause loop: on a machine with fewer free CPUs than
// runnable threads, the thread that would push the job gets this CPU.
void RunQueue::Spin() {
  const auto spin = std::chrono::microseconds(idle_spin_us.load(std::memory_order_relaxed));
  if (spin.count() <= 0) return;
  spinners_.fetch_add(1);
  const auto end = std::chrono::steady_clock::now() + spin;
  while (queued_.load() == 0 && !closing_.load() && std::chrono::steady_clock::now() < end) {
    ::sched_yield();
  }
  // Before taking mu_: a Push that still counted this thread as spinning
  // and so woke nobody pushed its job before that, and the wait below
  // sees it.
  spinners_.fetch_sub(1);
}

void RunQueue::PublishLocked() {
  queued_.store(jobs_.size());
  closing_.store(closed_);
}

bool RunQueue::Push(Job& job) {
  std::size_t queued = 0;
  {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    jobs_.push_back(std::move(job));
    PublishLocked();
    queued = jobs_.size();
  }
  if (queued > static_cast<std::size_t>(spinners_.load())) ready_.notify_one();
  return true;
}

std::optional<Job> RunQueue::Pop() {
  if (queued_.load() == 0) Spin();
  std::unique_lock lock(mu_);
  ready_.wait(lock, [this] { return closed_ || !jobs_.empty(); });
  return TakeLocked();
}

std::optional<Job> RunQueue::PopWithin(std::chrono::milliseconds wait, bool* idle) {
  if (queued_.load() == 0) Spin();
  std::unique_lock lock(mu_);
  *idle = !ready_.wait_for(lock, wait, [this] { return closed_ || !jobs_.empty(); });
  return TakeLocked();
}

std::optional<Job> RunQueue::TakeLocked() {
  if (jobs_.empty()) return std::nullopt;
  Job job = std::move(jobs_.front());
  jobs_.pop_front();
  PublishLocked();
  return job;
}

void RunQueue::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    PublishLocked();
  }
  ready_.notify_all();
}

std::vector<Job> RunQueue::CloseAndTake() {
  std::vector<Job> taken;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    taken.assign(std::make_move_iterator(jobs_.begin()), std::make_move_iterator(jobs_.end()));
    jobs_.clear();
    PublishLocked();
  }
  ready_.notify_all();
  return taken;
}

std::size_t RunQueue::size() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

}  // namespace ei
