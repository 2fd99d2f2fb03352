#include "daemon/net/latency_recorder.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ei {

void LatencyRecorder::Record(std::chrono::steady_clock::duration latency) {
  const double us = std::chrono::duration<double, std::micro>(latency).count();
  std::lock_guard lock(mu_);
  samples_us_[next_] = us;
  next_ = (next_ + 1) % kWindow;
  count_ = std::min(count_ + 1, kWindow);
}

LatencyRecorder::Summary LatencyRecorder::Summarize() const {
  std::vector<double> sorted;
  {
    std::lock_guard lock(mu_);
    sorted.assign(samples_us_.begin(), samples_us_.begin() + count_);
  }
  Summary summary;
  summary.samples = sorted.size();
  if (sorted.empty()) return summary;
  std::sort(sorted.begin(), sorted.end());
  // Nearest-rank percentiles.
  auto rank = [&sorted](double p) {
    const auto i = static_cast<std::size_t>(std::ceil(p * sorted.size()));
    return sorted[std::clamp<std::size_t>(i, 1, sorted.size()) - 1];
  };
  summary.p50_us = rank(0.50);
  summary.p99_us = rank(0.99);
  return summary;
}

}  // namespace ei
