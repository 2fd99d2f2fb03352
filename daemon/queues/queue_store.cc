// Invariants, kept by every call: a queue has waiting getters only while it
// holds no item (a put hands its item straight to the oldest getter), and
// waiting putters only while the oldest one's item does not fit (a get that
// makes room admits them, oldest first). So nothing ever polls: each change
// of a queue answers exactly the waiters it satisfies.
#include "daemon/queues/queue_store.h"

#include <algorithm>
#include <utility>

namespace ei {

using Json = nlohmann::json;

std::string QueueStore::Label(std::uint64_t id, const Queue& queue) {
  if (queue.name) return "queue " + std::to_string(id) + " (\"" + *queue.name + "\")";
  return "queue " + std::to_string(id) + " (anonymous, of connection " +
         std::to_string(queue.owner) + ")";
}

QueueStore::Created QueueStore::Create(const std::optional<std::string>& name,
                                       std::size_t maxsize, std::uint64_t owner) {
  std::lock_guard lock(mu_);
  const std::string what = name ? "queue \"" + *name + "\"" : std::string("an anonymous queue");
  if (queues_.size() >= limits_.max_queues) {
    return {Status::kFull, 0,
            "cannot create " + what + ": the daemon already holds " +
                std::to_string(queues_.size()) + " queues (max_queues)"};
  }
  if (maxsize > limits_.max_items) {
    return {Status::kTooLarge, 0,
            "cannot create " + what + " with maxsize " + std::to_string(maxsize) +
                ": the daemon's max_queue_items is " + std::to_string(limits_.max_items)};
  }
  if (name && names_.contains(*name)) {
    return {Status::kGone, 0, "cannot create " + what + ": a queue of that name exists"};
  }
  const std::uint64_t id = next_queue_++;
  Queue& queue = queues_[id];
  queue.name = name;
  queue.owner = name ? 0 : owner;
  queue.maxsize = maxsize;
  queue.capacity = maxsize == 0 ? limits_.max_items : maxsize;
  if (name) names_[*name] = id;
  return {Status::kOk, id, ""};
}

std::optional<std::uint64_t> QueueStore::Find(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = names_.find(name);
  if (it == names_.end()) return std::nullopt;
  return it->second;
}

bool QueueStore::Fits(const Queue& queue, std::size_t item_bytes) const {
  return queue.items.size() < queue.capacity && queue.bytes + item_bytes <= limits_.max_bytes;
}

void QueueStore::Store(Queue& queue, Item item) {
  queue.bytes += item.size();
  queue.items.push_back(std::move(item));
}

// Room was made: the oldest waiting putters get in, as many as now fit.
void QueueStore::AdmitPutters(Queue& queue) {
  while (!queue.putters.empty() && Fits(queue, queue.putters.front().item.size())) {
    Putter putter = std::move(queue.putters.front());
    queue.putters.pop_front();
    waiter_index_.erase(putter.id);
    Store(queue, std::move(putter.item));
    putter.done(Status::kOk, "");
  }
}

// What every put does first: the queue must exist and the item be able to
// fit, and the oldest waiting getter, if any, takes the item at once. The
// outcome when that settled the put; else nullopt, with `*queue` set.
std::optional<QueueStore::Outcome> QueueStore::BeginPut(std::uint64_t id, Item& item,
                                                        Queue** queue) {
  auto it = queues_.find(id);
  if (it == queues_.end()) {
    return Outcome{Status::kUnknown, {}, 0, "queue " + std::to_string(id) + " does not exist"};
  }
  if (item.size() > limits_.max_bytes) {
    return Outcome{Status::kTooLarge, {}, 0,
                   "an item of " + std::to_string(item.size()) + " bytes can never fit " +
                       Label(id, it->second) + ": max_queue_bytes is " +
                       std::to_string(limits_.max_bytes)};
  }
  std::deque<Getter>& getters = it->second.getters;
  if (!getters.empty()) {
    Getter getter = std::move(getters.front());
    getters.pop_front();
    waiter_index_.erase(getter.id);
    getter.done(Status::kOk, std::move(item), "");
    return Outcome{};
  }
  *queue = &it->second;
  return std::nullopt;
}

QueueStore::Outcome QueueStore::Put(std::uint64_t id, Item item, bool block,
                                    std::uint64_t caller, PutDone done) {
  std::lock_guard lock(mu_);
  Queue* found = nullptr;
  if (auto settled = BeginPut(id, item, &found)) return *std::move(settled);
  Queue& queue = *found;
  // Waiting putters go first, so items keep the order their puts came in.
  if (queue.putters.empty() && Fits(queue, item.size())) {
    Store(queue, std::move(item));
    return {};
  }
  if (!block) {
    return {Status::kFull, {}, 0,
            Label(id, queue) + " is full: it holds " + std::to_string(queue.items.size()) +
                " items (at most " + std::to_string(queue.capacity) + ") of " +
                std::to_string(queue.bytes) + " bytes (at most " +
                std::to_string(limits_.max_bytes) + ", max_queue_bytes)"};
  }
  if (stopped_) return {Status::kGone, {}, 0, *stopped_};
  const WaiterId waiter = next_waiter_++;
  queue.putters.push_back({waiter, caller, std::move(item), std::move(done)});
  waiter_index_[waiter] = id;
  return {Status::kWaiting, {}, waiter, ""};
}

// A returned item was the oldest one when its get took it, so it goes back
// to the front; any getter waiting now would have received it anyway.
QueueStore::Outcome QueueStore::PutBack(std::uint64_t id, Item item) {
  std::lock_guard lock(mu_);
  Queue* found = nullptr;
  if (auto settled = BeginPut(id, item, &found)) return *std::move(settled);
  Queue& queue = *found;
  if (queue.items.size() >= 2 * queue.capacity ||
      queue.bytes + item.size() > 2 * limits_.max_bytes) {
    return {Status::kFull, {}, 0,
            "cannot return an item to " + Label(id, queue) + ": it holds " +
                std::to_string(queue.items.size()) + " items of " + std::to_string(queue.bytes) +
                " bytes, twice its bounds, which returned items may not pass"};
  }
  queue.bytes += item.size();
  queue.items.push_front(std::move(item));
  return {};
}

QueueStore::Outcome QueueStore::Get(std::uint64_t id, bool block, std::uint64_t caller,
                                    GetDone done) {
  std::lock_guard lock(mu_);
  auto it = queues_.find(id);
  if (it == queues_.end()) {
    return {Status::kUnknown, {}, 0, "queue " + std::to_string(id) + " does not exist"};
  }
  Queue& queue = it->second;
  if (!queue.items.empty()) {
    Outcome outcome{Status::kOk, std::move(queue.items.front()), 0, ""};
    queue.items.pop_front();
    queue.bytes -= outcome.item.size();
    AdmitPutters(queue);
    return outcome;
  }
  if (!block) return {Status::kEmpty, {}, 0, Label(id, queue) + " is empty"};
  if (stopped_) return {Status::kGone, {}, 0, *stopped_};
  const WaiterId waiter = next_waiter_++;
  queue.getters.push_back({waiter, caller, std::move(done)});
  waiter_index_[waiter] = id;
  return {Status::kWaiting, {}, waiter, ""};
}

bool QueueStore::CancelWaiter(WaiterId waiter) {
  std::lock_guard lock(mu_);
  auto index = waiter_index_.find(waiter);
  if (index == waiter_index_.end()) return false;
  Queue& queue = queues_.at(index->second);
  waiter_index_.erase(index);
  std::erase_if(queue.getters, [waiter](const Getter& g) { return g.id == waiter; });
  // A big item at the front may have held smaller ones back.
  if (std::erase_if(queue.putters, [waiter](const Putter& p) { return p.id == waiter; }) > 0) {
    AdmitPutters(queue);
  }
  return true;
}

void QueueStore::Erase(std::map<std::uint64_t, Queue>::iterator it, const std::string& why) {
  Queue queue = std::move(it->second);
  queues_.erase(it);
  if (queue.name) names_.erase(*queue.name);
  for (const Getter& g : queue.getters) waiter_index_.erase(g.id);
  for (const Putter& p : queue.putters) waiter_index_.erase(p.id);
  // Callbacks last: the store is consistent by now.
  for (Getter& g : queue.getters) g.done(Status::kGone, {}, why);
  for (Putter& p : queue.putters) p.done(Status::kGone, why);
}

bool QueueStore::Delete(std::uint64_t id, const std::string& why) {
  std::lock_guard lock(mu_);
  auto it = queues_.find(id);
  if (it == queues_.end()) return false;
  Erase(it, Label(id, it->second) + " was deleted: " + why);
  return true;
}

void QueueStore::StopWaiting(const std::string& why) {
  std::lock_guard lock(mu_);
  stopped_ = why;
  for (auto& [id, queue] : queues_) {
    std::deque<Getter> getters = std::move(queue.getters);
    std::deque<Putter> putters = std::move(queue.putters);
    queue.getters.clear();
    queue.putters.clear();
    for (Getter& g : getters) {
      waiter_index_.erase(g.id);
      g.done(Status::kGone, {}, why);
    }
    for (Putter& p : putters) {
      waiter_index_.erase(p.id);
      p.done(Status::kGone, why);
    }
  }
}

void QueueStore::DropOwner(std::uint64_t owner) {
  std::lock_guard lock(mu_);
  for (auto& [id, queue] : queues_) {
    auto mine = [this, owner](const auto& waiter) {
      if (waiter.caller != owner) return false;
      waiter_index_.erase(waiter.id);
      return true;
    };
    std::erase_if(queue.getters, mine);
    if (std::erase_if(queue.putters, mine) > 0) AdmitPutters(queue);
  }
  for (auto it = queues_.begin(); it != queues_.end();) {
    auto next = std::next(it);
    if (!it->second.name && it->second.owner == owner) {
      Erase(it, Label(it->first, it->second) + " was deleted: connection " +
                    std::to_string(owner) + ", which created it, closed");
    }
    it = next;
  }
}

bool QueueStore::IsWaiting(std::uint64_t caller) const {
  std::lock_guard lock(mu_);
  for (const auto& [id, queue] : queues_) {
    for (const Getter& g : queue.getters) if (g.caller == caller) return true;
    for (const Putter& p : queue.putters) if (p.caller == caller) return true;
  }
  return false;
}

QueueStore::Info QueueStore::InfoOf(std::uint64_t id, const Queue& queue) {
  return {id,          queue.name,          queue.owner,           queue.items.size(),
          queue.bytes, queue.maxsize, queue.getters.size(), queue.putters.size()};
}

std::optional<QueueStore::Info> QueueStore::Describe(std::uint64_t id) const {
  std::lock_guard lock(mu_);
  auto it = queues_.find(id);
  if (it == queues_.end()) return std::nullopt;
  return InfoOf(id, it->second);
}

std::vector<QueueStore::Info> QueueStore::List(std::size_t limit) const {
  std::lock_guard lock(mu_);
  return ListLocked(limit);
}

std::vector<QueueStore::Info> QueueStore::ListLocked(std::size_t limit) const {
  std::vector<Info> out;
  for (auto it = queues_.begin(); it != queues_.end() && out.size() < limit; ++it) {
    out.push_back(InfoOf(it->first, it->second));
  }
  return out;
}

std::size_t QueueStore::size() const {
  std::lock_guard lock(mu_);
  return queues_.size();
}

std::size_t QueueStore::waiters() const {
  std::lock_guard lock(mu_);
  return waiter_index_.size();
}

Json QueueStore::StatusJson(std::size_t limit) const {
  std::lock_guard lock(mu_);
  Json list = Json::array();
  for (const Info& q : ListLocked(limit)) {
    list.push_back({{"id", q.id},
                    {"name", q.name ? Json(*q.name) : Json(nullptr)},
                    {"owner", q.name ? Json(nullptr) : Json(q.owner)},
                    {"size", q.size},
                    {"bytes", q.bytes},
                    {"maxsize", q.maxsize},
                    {"waiters", q.getters + q.putters}});
  }
  return {{"count", queues_.size()}, {"waiters", waiter_index_.size()}, {"list", list}};
}

}  // namespace ei
