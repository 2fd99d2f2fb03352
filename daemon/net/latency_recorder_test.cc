#include "daemon/net/latency_recorder.h"

#include <gtest/gtest.h>

#include <chrono>

namespace ei {
namespace {

TEST(LatencyRecorder, NearestRankPercentilesOverTheRecentWindow) {
  LatencyRecorder recorder;
  EXPECT_EQ(recorder.Summarize().samples, 0u);
  EXPECT_FALSE(recorder.Summarize().p50_us.has_value());
  for (int us = 1; us <= 100; ++us) recorder.Record(std::chrono::microseconds(us));
  LatencyRecorder::Summary s = recorder.Summarize();
  EXPECT_EQ(s.samples, 100u);
  EXPECT_DOUBLE_EQ(*s.p50_us, 50);
  EXPECT_DOUBLE_EQ(*s.p99_us, 99);
  // Only the last kWindow samples count.
  for (std::size_t i = 0; i < LatencyRecorder::kWindow; ++i) {
    recorder.Record(std::chrono::microseconds(7));
  }
  s = recorder.Summarize();
  EXPECT_EQ(s.samples, LatencyRecorder::kWindow);
  EXPECT_DOUBLE_EQ(*s.p99_us, 7);
}

}  // namespace
}  // namespace ei
