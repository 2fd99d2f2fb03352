// A timer thread for the pool: job deadlines and stop grace periods.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace ei {

class Watchdog {
 public:
  using Clock = std::chrono::steady_clock;

  Watchdog();
  ~Watchdog();  // Stop()

  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  /// Runs `fn` on the watchdog thread at `when`. `fn` must not block.
  void Schedule(Clock::time_point when, std::function<void()> fn);

  /// Drops every pending timer and joins the thread. Idempotent.
  void Stop();

 private:
  struct Timer {
    Clock::time_point when;
    std::uint64_t order;  // FIFO among equal times
    std::function<void()> fn;
    bool operator>(const Timer& other) const {
      return when != other.when ? when > other.when : order > other.order;
    }
  };

  void Main();

  std::mutex mu_;
  std::condition_variable changed_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  std::uint64_t next_order_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ei
