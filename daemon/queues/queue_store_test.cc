#include "daemon/queues/queue_store.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ei {
namespace {

using Item = QueueStore::Item;
using Status = QueueStore::Status;

Item Bytes(const std::string& text) { return Item(text.begin(), text.end()); }
std::string Text(const Item& item) { return std::string(item.begin(), item.end()); }

// What the waiter callbacks saw, in the order they were called.
struct Calls {
  std::vector<std::string> seen;
  QueueStore::GetDone Getter(const std::string& who) {
    return [this, who](Status status, Item item, const std::string& why) {
      seen.push_back(who + (status == Status::kOk ? ":" + Text(item) : " gone: " + why));
    };
  }
  QueueStore::PutDone Putter(const std::string& who) {
    return [this, who](Status status, const std::string& why) {
      seen.push_back(who + (status == Status::kOk ? " stored" : " gone: " + why));
    };
  }
};

std::uint64_t MakeQueue(QueueStore& store, std::size_t maxsize = 0, std::uint64_t owner = 1) {
  const auto created = store.Create(std::nullopt, maxsize, owner);
  EXPECT_EQ(created.status, Status::kOk) << created.why;
  return created.queue;
}

TEST(QueueStore, KeepsFifoOrder) {
  QueueStore store({});
  const auto q = MakeQueue(store);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(store.Put(q, Bytes(std::to_string(i)), false, 1, nullptr).status, Status::kOk);
  }
  for (int i = 0; i < 100; ++i) {
    const auto got = store.Get(q, false, 1, nullptr);
    ASSERT_EQ(got.status, Status::kOk);
    EXPECT_EQ(Text(got.item), std::to_string(i));
  }
  EXPECT_EQ(store.Get(q, false, 1, nullptr).status, Status::kEmpty);
}

TEST(QueueStore, PutHandsItemToOldestWaitingGetter) {
  QueueStore store({});
  Calls calls;
  const auto q = MakeQueue(store);
  EXPECT_EQ(store.Get(q, true, 2, calls.Getter("a")).status, Status::kWaiting);
  EXPECT_EQ(store.Get(q, true, 3, calls.Getter("b")).status, Status::kWaiting);
  EXPECT_EQ(store.waiters(), 2u);
  EXPECT_TRUE(store.IsWaiting(3));
  EXPECT_FALSE(store.IsWaiting(1));
  EXPECT_EQ(store.Put(q, Bytes("x"), false, 1, nullptr).status, Status::kOk);
  EXPECT_EQ(store.Put(q, Bytes("y"), false, 1, nullptr).status, Status::kOk);
  EXPECT_EQ(calls.seen, (std::vector<std::string>{"a:x", "b:y"}));
  EXPECT_EQ(store.Describe(q)->size, 0u);  // handed over, never stored
  EXPECT_EQ(store.waiters(), 0u);
}

TEST(QueueStore, GetAdmitsWaitingPuttersInOrder) {
  QueueStore store({});
  Calls calls;
  const auto q = MakeQueue(store, 1);
  EXPECT_EQ(store.Put(q, Bytes("1"), true, 1, calls.Putter("p1")).status, Status::kOk);
  EXPECT_EQ(store.Put(q, Bytes("2"), false, 1, nullptr).status, Status::kFull);
  EXPECT_EQ(store.Put(q, Bytes("2"), true, 2, calls.Putter("p2")).status, Status::kWaiting);
  EXPECT_EQ(store.Put(q, Bytes("3"), true, 3, calls.Putter("p3")).status, Status::kWaiting);
  EXPECT_EQ(Text(store.Get(q, false, 9, nullptr).item), "1");
  EXPECT_EQ(calls.seen, (std::vector<std::string>{"p2 stored"}));
  EXPECT_EQ(Text(store.Get(q, false, 9, nullptr).item), "2");
  EXPECT_EQ(Text(store.Get(q, false, 9, nullptr).item), "3");
  EXPECT_EQ(calls.seen, (std::vector<std::string>{"p2 stored", "p3 stored"}));
}

TEST(QueueStore, CancelledWaiterIsForgottenAndNotCalled) {
  QueueStore store({});
  Calls calls;
  const auto q = MakeQueue(store);
  const auto waiting = store.Get(q, true, 2, calls.Getter("a"));
  EXPECT_TRUE(store.CancelWaiter(waiting.waiter));
  EXPECT_FALSE(store.CancelWaiter(waiting.waiter));
  EXPECT_EQ(store.Put(q, Bytes("x"), false, 1, nullptr).status, Status::kOk);
  EXPECT_TRUE(calls.seen.empty());
  EXPECT_EQ(store.Describe(q)->size, 1u);
}

TEST(QueueStore, PutBackGoesFirstPastCapacityUpToTwice) {
  QueueStore store({/*max_queues=*/4, /*max_items=*/10, /*max_bytes=*/100});
  const auto q = MakeQueue(store, 2);
  EXPECT_EQ(store.Put(q, Bytes("a"), false, 1, nullptr).status, Status::kOk);
  EXPECT_EQ(store.Put(q, Bytes("b"), false, 1, nullptr).status, Status::kOk);
  EXPECT_EQ(store.Put(q, Bytes("c"), false, 1, nullptr).status, Status::kFull);
  EXPECT_EQ(store.PutBack(q, Bytes("x")).status, Status::kOk);  // past maxsize 2
  EXPECT_EQ(store.PutBack(q, Bytes("y")).status, Status::kOk);
  const auto over = store.PutBack(q, Bytes("z"));                // 4 = twice maxsize
  EXPECT_EQ(over.status, Status::kFull);
  EXPECT_NE(over.why.find("twice its bounds"), std::string::npos) << over.why;
  for (const char* expected : {"y", "x", "a", "b"}) {
    EXPECT_EQ(Text(store.Get(q, false, 1, nullptr).item), expected);
  }
  EXPECT_EQ(store.Describe(q)->bytes, 0u);
  const auto big = MakeQueue(store);
  EXPECT_EQ(store.Put(big, Item(90, 'a'), false, 1, nullptr).status, Status::kOk);
  EXPECT_EQ(store.PutBack(big, Item(100, 'b')).status, Status::kOk);  // 190 bytes <= 200
  EXPECT_EQ(store.PutBack(big, Item(20, 'c')).status, Status::kFull);
  EXPECT_EQ(store.PutBack(big, Item(101, 'd')).status, Status::kTooLarge);
  EXPECT_EQ(store.PutBack(99, Bytes("e")).status, Status::kUnknown);
}

TEST(QueueStore, PutBackHandsItemToOldestWaitingGetter) {
  QueueStore store({});
  Calls calls;
  const auto q = MakeQueue(store, 1);
  EXPECT_EQ(store.Get(q, true, 2, calls.Getter("a")).status, Status::kWaiting);
  EXPECT_EQ(store.PutBack(q, Bytes("x")).status, Status::kOk);
  EXPECT_EQ(calls.seen, (std::vector<std::string>{"a:x"}));
  EXPECT_EQ(store.Describe(q)->size, 0u);
  EXPECT_EQ(store.waiters(), 0u);
}

TEST(QueueStore, LimitsItemsBytesAndQueues) {
  QueueStore store({/*max_queues=*/2, /*max_items=*/3, /*max_bytes=*/10});
  const auto q = MakeQueue(store);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(store.Put(q, Bytes("a"), false, 1, nullptr).status, Status::kOk);
  EXPECT_EQ(store.Put(q, Bytes("a"), false, 1, nullptr).status, Status::kFull);
  const auto r = MakeQueue(store);
  EXPECT_EQ(store.Put(r, Bytes("12345678"), false, 1, nullptr).status, Status::kOk);
  const auto over = store.Put(r, Bytes("123"), false, 1, nullptr);
  EXPECT_EQ(over.status, Status::kFull);
  EXPECT_NE(over.why.find("max_queue_bytes"), std::string::npos) << over.why;
  EXPECT_EQ(store.Put(r, Bytes("12345678901"), true, 1, nullptr).status, Status::kTooLarge);
  const auto third = store.Create(std::nullopt, 0, 1);
  EXPECT_EQ(third.status, Status::kFull);
  EXPECT_NE(third.why.find("max_queues"), std::string::npos) << third.why;
  EXPECT_EQ(store.Create("big", 4, 1).status, Status::kFull);  // still max_queues
  EXPECT_TRUE(store.Delete(r, "test"));
  EXPECT_EQ(store.Create("big", 4, 1).status, Status::kTooLarge);  // maxsize > max_items
}

TEST(QueueStore, NamesAreUniqueAndFound) {
  QueueStore store({});
  const auto created = store.Create("jobs", 5, 1);
  ASSERT_EQ(created.status, Status::kOk);
  EXPECT_EQ(store.Find("jobs"), created.queue);
  EXPECT_EQ(store.Create("jobs", 5, 2).status, Status::kGone);
  EXPECT_EQ(store.Describe(created.queue)->maxsize, 5u);
  EXPECT_FALSE(store.Find("other"));
}

TEST(QueueStore, DropOwnerDeletesItsQueuesAndForgetsItsWaiters) {
  QueueStore store({});
  Calls calls;
  const auto mine = MakeQueue(store, 0, /*owner=*/1);
  const auto named = store.Create("shared", 1, 1).queue;
  const auto theirs = MakeQueue(store, 0, /*owner=*/2);
  EXPECT_EQ(store.Get(mine, true, 3, calls.Getter("other")).status, Status::kWaiting);
  EXPECT_EQ(store.Get(theirs, true, 1, calls.Getter("own")).status, Status::kWaiting);
  EXPECT_EQ(store.Put(named, Bytes("a"), false, 1, nullptr).status, Status::kOk);
  EXPECT_EQ(store.Put(named, Bytes("b"), true, 1, calls.Putter("own put")).status,
            Status::kWaiting);
  store.DropOwner(1);
  ASSERT_EQ(calls.seen.size(), 1u);
  EXPECT_NE(calls.seen[0].find("other gone: queue " + std::to_string(mine)), std::string::npos);
  EXPECT_NE(calls.seen[0].find("connection 1, which created it, closed"), std::string::npos);
  EXPECT_FALSE(store.Describe(mine));
  EXPECT_TRUE(store.Describe(named));  // named queues outlive their creator
  EXPECT_EQ(store.Describe(named)->size, 1u);
  EXPECT_EQ(store.waiters(), 0u);
  EXPECT_EQ(store.Put(theirs, Bytes("x"), false, 2, nullptr).status, Status::kOk);
  EXPECT_EQ(calls.seen.size(), 1u);  // the dropped getter was not called
}

TEST(QueueStore, DeleteAnswersWaitersWithGone) {
  QueueStore store({});
  Calls calls;
  const auto q = MakeQueue(store);
  EXPECT_EQ(store.Get(q, true, 2, calls.Getter("a")).status, Status::kWaiting);
  EXPECT_TRUE(store.Delete(q, "connection 4 deleted it"));
  ASSERT_EQ(calls.seen.size(), 1u);
  EXPECT_NE(calls.seen[0].find("connection 4 deleted it"), std::string::npos);
  EXPECT_EQ(store.Get(q, false, 2, nullptr).status, Status::kUnknown);
  EXPECT_FALSE(store.Delete(q, "again"));
}

TEST(QueueStore, StatusListIsBounded) {
  QueueStore store({});
  for (int i = 0; i < 5; ++i) MakeQueue(store);
  const auto status = store.StatusJson(3);
  EXPECT_EQ(status["count"], 5);
  EXPECT_EQ(status["list"].size(), 3u);
  EXPECT_EQ(status["list"][0]["owner"], 1);
}

}  // namespace
}  // namespace ei
