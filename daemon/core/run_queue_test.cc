// RunQueue with and without the idle spin: every job pushed reaches exactly
// one popper, whatever the timing (no lost wake-up when spinners and
// sleepers mix), and Close ends a waiting Pop.
#include "daemon/core/run_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <random>
#include <thread>
#include <vector>

namespace ei {
namespace {

using std::chrono::microseconds;

Job MakeJob(int n) {
  Job job;
  job.connection = static_cast<std::uint64_t>(n);
  return job;
}

class RunQueueTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { RunQueue::SetIdleSpin(microseconds(GetParam())); }
  void TearDown() override { RunQueue::SetIdleSpin(microseconds(0)); }
};

// Poppers take jobs until they see the end; the pushes come at uneven
// gaps, so poppers are caught spinning, going to sleep and asleep. A lost
// wake-up leaves a job in the queue and a popper waiting: the test then
// fails on the deadline instead of hanging.
TEST_P(RunQueueTest, EveryJobReachesOnePopperWhateverTheTiming) {
  constexpr int kPoppers = 4;
  constexpr int kJobs = 2000;
  RunQueue queue;
  std::vector<std::future<std::vector<int>>> poppers;
  for (int i = 0; i < kPoppers; ++i) {
    poppers.push_back(std::async(std::launch::async, [&queue] {
      std::vector<int> got;
      while (std::optional<Job> job = queue.Pop()) {
        got.push_back(static_cast<int>(job->connection));
      }
      return got;
    }));
  }
  std::mt19937 random(7);
  std::uniform_int_distribution<int> gap(0, 400);
  for (int n = 0; n < kJobs; ++n) {
    Job job = MakeJob(n);
    ASSERT_TRUE(queue.Push(job));
    if (n % 3 == 0) std::this_thread::sleep_for(microseconds(gap(random)));
  }
  // Every job must be taken before Close: Close would also wake everyone.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (queue.size() > 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << queue.size() << " jobs left unpopped";
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  queue.Close();
  std::vector<int> all;
  for (auto& popper : poppers) {
    ASSERT_EQ(popper.wait_for(std::chrono::seconds(60)), std::future_status::ready);
    std::vector<int> got = popper.get();
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));  // FIFO per popper
    all.insert(all.end(), got.begin(), got.end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kJobs));
  for (int n = 0; n < kJobs; ++n) ASSERT_EQ(all[n], n);
}

// One job at a time, each pushed while the single popper is most likely
// still spinning after the last: with the spin on, the popper is never
// woken through the condition variable, and must still get each job.
TEST_P(RunQueueTest, JobsPushedOneByOneReachASinglePopper) {
  RunQueue queue;
  std::promise<void> each[100];
  auto popper = std::async(std::launch::async, [&] {
    for (auto& done : each) {
      if (!queue.Pop()) return false;
      done.set_value();
    }
    return true;
  });
  for (int n = 0; n < 100; ++n) {
    Job job = MakeJob(n);
    ASSERT_TRUE(queue.Push(job));
    ASSERT_EQ(each[n].get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);
  }
  EXPECT_TRUE(popper.get());
}

TEST_P(RunQueueTest, CloseEndsAWaitingPop) {
  RunQueue queue;
  auto popper = std::async(std::launch::async, [&queue] { return queue.Pop().has_value(); });
  std::this_thread::sleep_for(microseconds(GetParam() / 2));  // spinning, or asleep
  queue.Close();
  ASSERT_EQ(popper.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_FALSE(popper.get());
  Job job = MakeJob(1);
  EXPECT_FALSE(queue.Push(job));
}

TEST_P(RunQueueTest, PopWithinTimesOutIdleAndTakesAJob) {
  RunQueue queue;
  bool idle = false;
  EXPECT_FALSE(queue.PopWithin(std::chrono::milliseconds(5), &idle).has_value());
  EXPECT_TRUE(idle);
  Job job = MakeJob(3);
  ASSERT_TRUE(queue.Push(job));
  std::optional<Job> got = queue.PopWithin(std::chrono::milliseconds(5), &idle);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->connection, 3u);
  EXPECT_FALSE(idle);
}

// 0: sleep at once (the old behaviour); 200: the default; 5000: spinners
// outlast most gaps between pushes.
INSTANTIATE_TEST_SUITE_P(IdleSpin, RunQueueTest, ::testing::Values(0, 200, 5000));

}  // namespace
}  // namespace ei
