// Lock order: the store's mutex, then a JobWakeup's. A waiter's callback
// runs under the store's mutex and takes the wakeup's to hand over its
// answer; a waiting job holds only the wakeup's while it sleeps, and lets
// go of it before it calls the store to give up.
#include "daemon/queues/in_job_service.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <utility>

#include "daemon/base/spin_mutex.h"
#include "daemon/core/job_wakeup.h"

namespace ei {

using python::QueueCallResult;
using Status = QueueStore::Status;

// What the store answered a waiting put or get. Guarded by the wakeup's
// mutex; `done` is also read without it, while the waiter spins.
struct InJobQueueService::Answer {
  std::atomic<bool> done{false};
  Status status = Status::kOk;
  QueueStore::Item item;
  std::string why;
};

namespace {

// How long a waiting job spins before it sleeps.
constexpr std::chrono::microseconds kSpin(50);

QueueCallResult Failed(const char* code, std::string why) {
  QueueCallResult result;
  result.code = code;
  result.why = std::move(why);
  return result;
}

// The PROTOCOL.md code for a refused put or get, as sessions send it.
const char* CodeOf(Status status) {
  switch (status) {
    case Status::kEmpty: return "queue_empty";
    case Status::kFull: return "queue_full";
    case Status::kTooLarge: return "item_too_large";
    case Status::kGone: return "queue_gone";
    default: return "unknown_queue";
  }
}

QueueCallResult Stopped(JobWakeup& wakeup, std::uint64_t queue) {
  QueueCallResult result = Failed("stopped", "the job was told to stop while it waited on queue " +
                                                 std::to_string(queue));
  std::lock_guard lock(wakeup.mutex());
  result.stop_type = wakeup.fired();
  return result;
}

// The current worker's wakeup; off interpreter threads (tests), `local`,
// made only then.
JobWakeup& WakeupOr(std::optional<JobWakeup>& local) {
  JobWakeup* current = JobWakeup::Current();
  return current != nullptr ? *current : local.emplace();
}

// A call that may wait: blocking, and not with a timeout of 0.
bool Waits(bool block, const std::optional<double>& timeout) {
  return block && !(timeout && *timeout == 0);
}

bool IsFired(JobWakeup& wakeup) {
  std::lock_guard lock(wakeup.mutex());
  return wakeup.fired() != nullptr;
}

}  // namespace

QueueCallResult InJobQueueService::Create(const std::optional<std::string>& name,
                                        std::size_t maxsize) {
  JobWakeup* wakeup = JobWakeup::Current();
  const std::uint64_t owner = wakeup != nullptr ? wakeup->connection() : 0;
  if (!name && owner == 0) {
    return Failed("bad_request",
                  "cannot create an anonymous queue here: it would belong to no connection");
  }
  const auto created = store_.Create(name, maxsize, owner);
  switch (created.status) {
    case Status::kOk: {
      QueueCallResult result;
      result.queue = created.queue;
      result.maxsize = maxsize;
      return result;
    }
    case Status::kFull: return Failed("queue_limit", created.why);
    case Status::kGone: return Failed("queue_exists", created.why);
    default: return Failed("bad_request", created.why);
  }
}

QueueCallResult InJobQueueService::Open(const std::string& name) {
  const auto id = store_.Find(name);
  const auto info = id ? store_.Describe(*id) : std::nullopt;
  if (!info) return Failed("unknown_queue", "there is no queue named \"" + name + "\"");
  QueueCallResult result;
  result.queue = info->id;
  result.maxsize = info->maxsize;
  return result;
}

// A job's put or get that waits: the store's answer lands in an Answer
// and wakes the waiting thread.
struct InJobQueueService::Pending {
  std::shared_ptr<Answer> answer = std::make_shared<Answer>();
  JobWakeup& wakeup;

  void Hand(Status status, QueueStore::Item item, const std::string& why) const {
    std::lock_guard lock(wakeup.mutex());
    answer->status = status;
    answer->item = std::move(item);
    answer->why = why;
    answer->done.store(true, std::memory_order_release);
    wakeup.cv().notify_all();
  }
};

QueueCallResult InJobQueueService::Put(std::uint64_t queue, std::vector<char> item, bool block,
                                     std::optional<double> timeout) {
  std::optional<JobWakeup> local;
  JobWakeup& wakeup = WakeupOr(local);
  if (IsFired(wakeup)) return Stopped(wakeup, queue);
  const bool waits = Waits(block, timeout);
  std::optional<Pending> pending;
  QueueStore::PutDone done;
  if (waits) {  // only then: a try spares the allocations
    pending.emplace(Pending{.wakeup = wakeup});
    done = [p = *pending](Status status, const std::string& why) { p.Hand(status, {}, why); };
  }
  auto outcome = store_.Put(queue, std::move(item), waits, QueueStore::kJobCaller, done);
  if (outcome.status == Status::kOk) return {};
  if (outcome.status != Status::kWaiting) return Failed(CodeOf(outcome.status), outcome.why);
  return Await(pending->answer, wakeup, outcome.waiter, queue, timeout, "queue_full", "full");
}

QueueCallResult InJobQueueService::Get(std::uint64_t queue, bool block,
                                     std::optional<double> timeout) {
  std::optional<JobWakeup> local;
  JobWakeup& wakeup = WakeupOr(local);
  if (IsFired(wakeup)) return Stopped(wakeup, queue);
  const bool waits = Waits(block, timeout);
  std::optional<Pending> pending;
  QueueStore::GetDone done;
  if (waits) {
    pending.emplace(Pending{.wakeup = wakeup});
    done = [p = *pending](Status status, QueueStore::Item item, const std::string& why) {
      p.Hand(status, std::move(item), why);
    };
  }
  auto outcome = store_.Get(queue, waits, QueueStore::kJobCaller, done);
  if (outcome.status == Status::kOk) {
    QueueCallResult result;
    result.item = std::move(outcome.item);
    return result;
  }
  if (outcome.status != Status::kWaiting) return Failed(CodeOf(outcome.status), outcome.why);
  return Await(pending->answer, wakeup, outcome.waiter, queue, timeout, "queue_empty", "empty");
}

// The waiter stays in the store until it is answered or withdrawn here; a
// store answer that comes while this gives up has already been handed over
// (callbacks run under the store's mutex, which CancelWaiter takes), so no
// item is ever dropped on the floor.
QueueCallResult InJobQueueService::Await(const std::shared_ptr<Answer>& answer,
                                       JobWakeup& wakeup, QueueStore::WaiterId waiter,
                                       std::uint64_t queue, std::optional<double> timeout,
                                       const char* timeout_code, const char* timeout_state) {
  // A short spin first: between two busy jobs the answer often comes
  // within microseconds, and sleeping would cost the answering side a futex
  // wake and this side a wake-up, tens of microseconds each on a VM.
  const auto spin_end = std::chrono::steady_clock::now() + kSpin;
  for (unsigned i = 1; !answer->done.load(std::memory_order_acquire); ++i) {
    SpinThenBlockMutex::Relax();
    if (i % 64 == 0 && std::chrono::steady_clock::now() >= spin_end) break;
  }
  std::unique_lock lock(wakeup.mutex());
  auto ended = [&] { return answer->done.load() || wakeup.fired() != nullptr; };
  if (timeout) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(*timeout));
    wakeup.cv().wait_until(lock, deadline, ended);
  } else {
    wakeup.cv().wait(lock, ended);
  }
  if (!answer->done.load()) {
    const bool stopped = wakeup.fired() != nullptr;
    lock.unlock();
    if (store_.CancelWaiter(waiter)) {
      if (stopped) return Stopped(wakeup, queue);
      char seconds[32];
      std::snprintf(seconds, sizeof seconds, "%g", *timeout);
      return Failed(timeout_code, "queue " + std::to_string(queue) + " stayed " + timeout_state +
                                      " for " + seconds + " s");
    }
    lock.lock();  // answered meanwhile: the answer is in already
  }
  if (answer->status != Status::kOk) return Failed(CodeOf(answer->status), answer->why);
  QueueCallResult result;
  result.item = std::move(answer->item);
  return result;
}

QueueCallResult InJobQueueService::Info(std::uint64_t queue) {
  const auto info = store_.Describe(queue);
  if (!info) return Failed("unknown_queue", "queue " + std::to_string(queue) + " does not exist");
  QueueCallResult result;
  result.queue = info->id;
  result.name = info->name;
  result.maxsize = info->maxsize;
  result.size = info->size;
  result.bytes = info->bytes;
  result.getters = info->getters;
  result.putters = info->putters;
  return result;
}

QueueCallResult InJobQueueService::Delete(std::uint64_t queue) {
  if (!store_.Delete(queue, "a job deleted it")) {
    return Failed("unknown_queue", "queue " + std::to_string(queue) + " does not exist");
  }
  return {};
}

}  // namespace ei
