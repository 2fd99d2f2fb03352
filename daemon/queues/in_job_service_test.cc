// InJobQueueService from threads standing in for interpreter threads: waits
// are answered across threads, and end on a stop or a timeout without
// losing an item.
#include "daemon/queues/in_job_service.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "daemon/core/job_wakeup.h"

namespace ei {
namespace {

using namespace std::chrono_literals;

QueueStore::Item Bytes(const std::string& text) { return {text.begin(), text.end()}; }
std::string Text(const std::vector<char>& item) { return {item.begin(), item.end()}; }

class JobQueueServiceTest : public ::testing::Test {
 protected:
  std::uint64_t MakeQueue(std::size_t maxsize = 0) {
    auto created = store_.Create("q" + std::to_string(++made_), maxsize, 0);
    EXPECT_EQ(created.status, QueueStore::Status::kOk);
    return created.queue;
  }
  // Waits until the store holds `n` waiters (a job is blocked).
  void AwaitWaiters(std::size_t n) {
    for (int i = 0; i < 5000 && store_.waiters() != n; ++i) std::this_thread::sleep_for(1ms);
    ASSERT_EQ(store_.waiters(), n);
  }

  QueueStore store_{QueueLimits{}};
  InJobQueueService service_{store_};
  int made_ = 0;
};

TEST_F(JobQueueServiceTest, BlockedGetIsAnsweredByAPutFromAnotherThread) {
  const auto queue = MakeQueue();
  auto got = std::async(std::launch::async, [&] { return service_.Get(queue, true, {}); });
  AwaitWaiters(1);
  EXPECT_EQ(service_.Put(queue, Bytes("hello"), true, {}).code, "");
  const auto result = got.get();
  EXPECT_EQ(result.code, "");
  EXPECT_EQ(Text(result.item), "hello");
  EXPECT_EQ(store_.waiters(), 0u);
}

TEST_F(JobQueueServiceTest, BlockedPutGetsInOnceAGetMakesRoom) {
  const auto queue = MakeQueue(1);
  ASSERT_EQ(service_.Put(queue, Bytes("a"), true, {}).code, "");
  auto put = std::async(std::launch::async, [&] { return service_.Put(queue, Bytes("b"), true, {}); });
  AwaitWaiters(1);
  EXPECT_EQ(Text(service_.Get(queue, true, {}).item), "a");
  EXPECT_EQ(put.get().code, "");
  EXPECT_EQ(Text(service_.Get(queue, false, {}).item), "b");
}

TEST_F(JobQueueServiceTest, TimeoutsAndNonBlockingCallsUseTheProtocolCodes) {
  const auto queue = MakeQueue(1);
  EXPECT_EQ(service_.Get(queue, false, {}).code, "queue_empty");
  const auto late = service_.Get(queue, true, 0.05);
  EXPECT_EQ(late.code, "queue_empty");
  EXPECT_NE(late.why.find("stayed empty for 0.05 s"), std::string::npos) << late.why;
  ASSERT_EQ(service_.Put(queue, Bytes("x"), false, {}).code, "");
  EXPECT_EQ(service_.Put(queue, Bytes("y"), true, 0.05).code, "queue_full");
  EXPECT_EQ(service_.Get(12345, true, {}).code, "unknown_queue");
  EXPECT_EQ(store_.waiters(), 0u);
}

TEST_F(JobQueueServiceTest, AStoppedJobStopsWaitingAndLeavesNoWaiter) {
  const auto queue = MakeQueue();
  JobWakeup wakeup;
  int stop_type = 0;  // stands in for the job's exception type
  auto* stop = reinterpret_cast<_object*>(&stop_type);
  auto got = std::async(std::launch::async, [&] {
    JobWakeup::SetCurrent(&wakeup);
    wakeup.Arm(7);
    auto result = service_.Get(queue, true, {});
    auto again = service_.Get(queue, true, {});  // still stopped: no new wait
    EXPECT_EQ(again.code, "stopped");
    return result;
  });
  AwaitWaiters(1);
  wakeup.Fire(stop);
  const auto result = got.get();
  EXPECT_EQ(result.code, "stopped");
  EXPECT_EQ(result.stop_type, stop);
  EXPECT_EQ(store_.waiters(), 0u);
  // The queue still works, and an item put now is not lost to the old wait.
  ASSERT_EQ(service_.Put(queue, Bytes("kept"), true, {}).code, "");
  EXPECT_EQ(Text(service_.Get(queue, false, {}).item), "kept");
}

TEST_F(JobQueueServiceTest, DeletingOrStoppingWakesWaitersWithQueueGone) {
  const auto queue = MakeQueue();
  auto got = std::async(std::launch::async, [&] { return service_.Get(queue, true, {}); });
  AwaitWaiters(1);
  EXPECT_EQ(service_.Delete(queue).code, "");
  EXPECT_EQ(got.get().code, "queue_gone");

  const auto other = MakeQueue();
  auto waiting = std::async(std::launch::async, [&] { return service_.Get(other, true, {}); });
  AwaitWaiters(1);
  store_.StopWaiting("the daemon is shutting down");
  const auto result = waiting.get();
  EXPECT_EQ(result.code, "queue_gone");
  EXPECT_EQ(result.why, "the daemon is shutting down");
  EXPECT_EQ(service_.Get(other, true, {}).code, "queue_gone");  // no new waits
}

TEST_F(JobQueueServiceTest, AnonymousQueuesBelongToTheJobsConnection) {
  EXPECT_EQ(service_.Create(std::nullopt, 0).code, "bad_request");  // no job here
  JobWakeup wakeup;
  JobWakeup::SetCurrent(&wakeup);
  wakeup.Arm(42);
  const auto created = service_.Create(std::nullopt, 3);
  JobWakeup::SetCurrent(nullptr);
  ASSERT_EQ(created.code, "");
  EXPECT_EQ(store_.Describe(created.queue)->owner, 42u);
  store_.DropOwner(42);
  EXPECT_EQ(service_.Info(created.queue).code, "unknown_queue");
}

TEST_F(JobQueueServiceTest, ManyItemsBetweenTwoThreadsArriveOnceInOrder) {
  const auto queue = MakeQueue(8);
  constexpr int kItems = 20000;
  auto producer = std::async(std::launch::async, [&] {
    for (int i = 0; i < kItems; ++i) {
      if (service_.Put(queue, Bytes(std::to_string(i)), true, {}).code != "") return false;
    }
    return true;
  });
  for (int i = 0; i < kItems; ++i) {
    const auto result = service_.Get(queue, true, {});
    ASSERT_EQ(result.code, "");
    ASSERT_EQ(Text(result.item), std::to_string(i));
  }
  EXPECT_TRUE(producer.get());
  EXPECT_EQ(service_.Info(queue).size, 0u);
}

}  // namespace
}  // namespace ei
