// The daemon's queues (PROTOCOL.md, "Queues"): bounded FIFOs of pickled
// items that clients put to and get from, with blocked callers kept as
// waiters and answered the moment an item or a slot arrives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/spin_mutex.h"

namespace ei {

/// Bounds on what queues may hold (Config: max_queues, max_queue_items,
/// max_queue_bytes).
struct QueueLimits {
  std::size_t max_queues = 1024;
  std::size_t max_items = 100000;         // per queue; a maxsize of 0 means this
  std::size_t max_bytes = 256ull << 20;  // per queue, pickled items together
};

/// All queues of the daemon. Thread-safe: sessions use it on the I/O thread,
/// jobs on interpreter threads (daemon/queues/in_job_service.h). Every call
/// holds one mutex for its whole length, so a waiter's callback runs under
/// that mutex, on whichever thread made the put, get, or delete that
/// answers it, after the store's state is consistent again: it must be
/// short, must not block, and must not call back into the store.
class QueueStore {
 public:
  using Item = std::vector<char>;
  using WaiterId = std::uint64_t;
  /// The `caller` of puts and gets made by jobs; connections are numbered
  /// from 1, and DropOwner(0) is never called.
  static constexpr std::uint64_t kJobCaller = 0;
  enum class Status { kOk, kWaiting, kEmpty, kFull, kUnknown, kGone, kTooLarge };

  /// Called once for a waiting get: kOk with the item, or kGone.
  using GetDone = std::function<void(Status, Item, const std::string& why)>;
  /// Called once for a waiting put: kOk once stored or handed over, or kGone.
  using PutDone = std::function<void(Status, const std::string& why)>;

  struct Created {
    // kOk, kFull (max_queues), kTooLarge (maxsize), kGone (the name is taken)
    Status status = Status::kOk;
    std::uint64_t queue = 0;
    std::string why;
  };
  struct Outcome {
    Status status = Status::kOk;
    Item item;            // a get's item, when kOk
    WaiterId waiter = 0;  // when kWaiting: its callback comes later
    std::string why;      // when not kOk or kWaiting
  };
  struct Info {
    std::uint64_t id = 0;
    std::optional<std::string> name;
    std::uint64_t owner = 0;  // the connection of an anonymous queue; 0 for named ones
    std::size_t size = 0, bytes = 0, maxsize = 0, getters = 0, putters = 0;
  };

  explicit QueueStore(QueueLimits limits) : limits_(limits) {}
  QueueStore(const QueueStore&) = delete;
  QueueStore& operator=(const QueueStore&) = delete;

  const QueueLimits& limits() const { return limits_; }

  /// A named queue (name set) or one owned by connection `owner`.
  Created Create(const std::optional<std::string>& name, std::size_t maxsize,
                 std::uint64_t owner);
  /// The named queue's id, if there is one.
  std::optional<std::uint64_t> Find(const std::string& name) const;

  /// Stores the item, hands it to the oldest waiting getter, or (when full
  /// and `block`) waits: kOk, kWaiting, kFull, kUnknown, kTooLarge.
  Outcome Put(std::uint64_t queue, Item item, bool block, std::uint64_t caller, PutDone done);
  /// Takes the oldest item, or (when empty and `block`) waits: kOk,
  /// kWaiting, kEmpty, kUnknown.
  Outcome Get(std::uint64_t queue, bool block, std::uint64_t caller, GetDone done);

  /// Returns an item that a get took but could not deliver (its caller
  /// withdrew the wait as the item arrived): hands it to the oldest waiting
  /// getter, or stores it ahead of every other item. It may take the queue
  /// past its capacity and max_bytes, up to twice each, so a return fails
  /// for lack of room only under abuse; it never waits: kOk, kFull,
  /// kUnknown, kTooLarge.
  Outcome PutBack(std::uint64_t queue, Item item);

  /// Forgets a waiter whose time ran out, without calling it. False when it
  /// was already answered.
  bool CancelWaiter(WaiterId waiter);
  /// Deletes a queue; its waiters get kGone with `why`. False if unknown.
  bool Delete(std::uint64_t queue, const std::string& why);
  /// The daemon is stopping: every waiter gets kGone with `why`, and no
  /// put or get waits from now on (they get kGone at once instead of
  /// waiting). Puts and gets that need no wait still work.
  void StopWaiting(const std::string& why);
  /// A connection closed: forgets its waiters (uncalled) and deletes the
  /// queues it owned.
  void DropOwner(std::uint64_t owner);

  std::optional<Info> Describe(std::uint64_t queue) const;
  /// The first `limit` queues by id, and how many there are.
  std::vector<Info> List(std::size_t limit) const;
  std::size_t size() const;
  /// Whether connection `caller` has a put or get waiting. Scans every
  /// waiter: for the idle check, which runs rarely.
  bool IsWaiting(std::uint64_t caller) const;
  /// Waiters of every queue together.
  std::size_t waiters() const;

  /// The status document's "queues" object (PROTOCOL.md, "status").
  nlohmann::json StatusJson(std::size_t limit) const;

 private:
  struct Getter {
    WaiterId id;
    std::uint64_t caller;
    GetDone done;
  };
  struct Putter {
    WaiterId id;
    std::uint64_t caller;
    Item item;
    PutDone done;
  };
  struct Queue {
    std::optional<std::string> name;
    std::uint64_t owner = 0;
    std::size_t maxsize = 0;   // as asked; 0: limits_.max_items
    std::size_t capacity = 0;  // in items
    std::deque<Item> items;
    std::size_t bytes = 0;
    std::deque<Getter> getters;  // only while items is empty
    std::deque<Putter> putters;  // only while the queue is full
  };

  std::optional<Outcome> BeginPut(std::uint64_t id, Item& item, Queue** queue);
  bool Fits(const Queue& queue, std::size_t item_bytes) const;
  void Store(Queue& queue, Item item);
  void AdmitPutters(Queue& queue);
  void Erase(std::map<std::uint64_t, Queue>::iterator it, const std::string& why);
  std::vector<Info> ListLocked(std::size_t limit) const;
  static Info InfoOf(std::uint64_t id, const Queue& queue);
  static std::string Label(std::uint64_t id, const Queue& queue);

  const QueueLimits limits_;
  mutable SpinThenBlockMutex mu_;  // guards everything below
  std::map<std::uint64_t, Queue> queues_;  // by id, so listings come oldest first
  std::unordered_map<std::string, std::uint64_t> names_;
  std::unordered_map<WaiterId, std::uint64_t> waiter_index_;  // waiter -> its queue
  std::optional<std::string> stopped_;  // why no call may wait any more
  std::uint64_t next_queue_ = 1;
  WaiterId next_waiter_ = 1;
};

}  // namespace ei
