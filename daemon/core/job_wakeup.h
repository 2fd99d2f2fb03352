// Wakes a job's blocking call into the daemon (a queue get or put, which
// waits on a condition variable with its GIL released) when the job is told
// to stop: the stop exception that PyThreadState_SetAsyncExc leaves pending
// is only seen once that call returns.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

struct _object;

namespace ei {

/// One per worker. Its thread makes it current, so code called from a job
/// (the QueueService) finds it without being handed it.
class JobWakeup {
 public:
  /// The wakeup of the worker running on this thread, or nullptr.
  static JobWakeup* Current();
  /// Makes `wakeup` this thread's (nullptr: none).
  static void SetCurrent(JobWakeup* wakeup);

  /// A job starts: not stopped. `connection` submitted it (its anonymous
  /// queues belong to that connection).
  void Arm(std::uint64_t connection);
  /// The running job must stop with `stop_type`: wakes whatever it waits on.
  void Fire(_object* stop_type);

  /// Waits use this mutex and condition variable; whoever answers a wait
  /// notifies cv() with mutex() held.
  std::mutex& mutex() { return mu_; }
  std::condition_variable& cv() { return cv_; }
  /// The stop exception type once fired, else nullptr. Needs mutex().
  _object* fired() const { return fired_; }
  std::uint64_t connection() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  _object* fired_ = nullptr;       // guarded by mu_
  std::uint64_t connection_ = 0;  // guarded by mu_
};

}  // namespace ei
