// Round-trip latencies of recent jobs inside the daemon, for status.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>

namespace ei {

class LatencyRecorder {
 public:
  static constexpr std::size_t kWindow = 1024;

  struct Summary {
    std::optional<double> p50_us, p99_us;
    std::size_t samples = 0;
  };

  void Record(std::chrono::steady_clock::duration latency);
  Summary Summarize() const;

 private:
  mutable std::mutex mu_;
  std::array<double, kWindow> samples_us_{};
  std::size_t next_ = 0;
  std::size_t count_ = 0;
};

}  // namespace ei
