#include "daemon/core/run_queue.h"

namespace ei {

bool RunQueue::Push(Job& job) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    jobs_.push_back(std::move(job));
  }
  ready_.notify_one();
  return true;
}

std::optional<Job> RunQueue::Pop() {
  std::unique_lock lock(mu_);
  ready_.wait(lock, [this] { return closed_ || !jobs_.empty(); });
  if (jobs_.empty()) return std::nullopt;
  Job job = std::move(jobs_.front());
  jobs_.pop_front();
  return job;
}

std::optional<Job> RunQueue::PopWithin(std::chrono::milliseconds wait, bool* idle) {
  std::unique_lock lock(mu_);
  *idle = !ready_.wait_for(lock, wait, [this] { return closed_ || !jobs_.empty(); });
  if (jobs_.empty()) return std::nullopt;
  Job job = std::move(jobs_.front());
  jobs_.pop_front();
  return job;
}

void RunQueue::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
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
  }
  ready_.notify_all();
  return taken;
}

std::size_t RunQueue::size() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

}  // namespace ei
