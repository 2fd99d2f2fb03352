#include "daemon/core/watchdog.h"

namespace ei {

Watchdog::Watchdog() : thread_(&Watchdog::Main, this) {}

Watchdog::~Watchdog() { Stop(); }

void Watchdog::Schedule(Clock::time_point when, std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    timers_.push({when, next_order_++, std::move(fn)});
  }
  changed_.notify_one();
}

void Watchdog::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    timers_ = {};
  }
  changed_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::Main() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (timers_.empty()) {
      changed_.wait(lock);
      continue;
    }
    const Clock::time_point next = timers_.top().when;
    if (Clock::now() < next) {
      changed_.wait_until(lock, next);
      continue;
    }
    std::function<void()> fn = std::move(const_cast<Timer&>(timers_.top()).fn);
    timers_.pop();
    lock.unlock();
    fn();
    lock.lock();
  }
}

}  // namespace ei
