// A mutex for very short critical sections shared by busy threads: it
// spins briefly before it sleeps. std::mutex sleeps in the kernel at the
// first contention, and the futex wait and wake it then costs (several
// microseconds each side) dwarf sections of a few hundred nanoseconds:
// with two jobs passing items through one queue, that was a fifth of
// their time.
#pragma once

#include <mutex>
#include <thread>

namespace ei {

class SpinThenBlockMutex {
 public:
  void lock() {
    for (int i = 0; i < kSpins; ++i) {
      if (mu_.try_lock()) return;
      Relax();
    }
    mu_.lock();
  }
  bool try_lock() { return mu_.try_lock(); }
  void unlock() { mu_.unlock(); }

  /// One polite pause in a spin loop.
  static void Relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

 private:
  static constexpr int kSpins = 200;  // about 10 us of pauses at most
  std::mutex mu_;
};

}  // namespace ei
