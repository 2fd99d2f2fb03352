// The queue half of Session: queue_create, queue_open, queue_put,
// queue_get, queue_delete, queue_info and queue_cancel (PROTOCOL.md,
// "Queues").
//
// Thread affinity: every handler and timer here runs on the I/O thread.
// A waiter's callback runs on whichever thread answered it (a job's put or
// get answers on its interpreter's thread) and hands its work to the I/O
// thread with asio::dispatch: inline when it is already there. So this
// connection's waits are only ever touched on the I/O thread. A blocked put or get is a waiter in the store, an entry in
// queue_waits_ (for queue_cancel) and, when it has a timeout, a timer in
// queue_timers_; whichever ends the wait first (the store's answer, the
// timer or a queue_cancel) removes the others. Close() drops them all, so
// a connection that goes away leaves no waiter behind.
#include <chrono>
#include <utility>

#include <boost/asio/dispatch.hpp>

#include "daemon/base/log.h"
#include "daemon/net/session.h"
#include "daemon/queues/queue_store.h"

namespace ei {

namespace asio = boost::asio;
using Json = nlohmann::json;
using proto::Frame;
using Status = QueueStore::Status;

namespace {

constexpr std::size_t kMaxQueueNameBytes = 256;

// The "queue", "block" and "timeout" of a put or get; "" or what is wrong.
// A timeout of 0, or block false, means: do not wait.
std::string ReadWait(const Json& header, std::uint64_t* queue, bool* block,
                     std::optional<double>* timeout) {
  const Json id = header.value("queue", Json(nullptr));
  if (!id.is_number_unsigned()) return "needs an unsigned integer \"queue\", not " + id.dump();
  *queue = id.get<std::uint64_t>();
  const Json wait = header.value("block", Json(true));
  if (!wait.is_boolean()) return "\"block\" must be true or false, not " + wait.dump();
  const Json limit = header.value("timeout", Json(nullptr));
  if (!limit.is_null() && (!limit.is_number() || !(limit.get<double>() >= 0) ||
                           limit.get<double>() > 1e9)) {
    return "\"timeout\" must be null or a number of seconds from 0 to 1e9, not " + limit.dump();
  }
  if (!limit.is_null()) *timeout = limit.get<double>();
  *block = wait.get<bool>() && !(timeout->has_value() && **timeout == 0);
  return "";
}

std::string Seconds(double seconds) {
  std::string text = std::to_string(seconds);
  text.erase(text.find_last_not_of('0') + 1);
  if (text.back() == '.') text.pop_back();
  return text + " s";
}

}  // namespace

// {"type": "queue_create", "id": 9, "name": "results", "maxsize": 100}
void Session::OnQueueCreate(Frame& frame) {
  const Json& id = frame.header["id"];
  const Json name = frame.header.value("name", Json(nullptr));
  const Json maxsize = frame.header.value("maxsize", Json(0));
  if (!(name.is_null() || (name.is_string() && !name.get<std::string>().empty() &&
                           name.get<std::string>().size() <= kMaxQueueNameBytes)) ||
      !maxsize.is_number_unsigned()) {
    SendError(id, "bad_request",
              "queue_create needs \"name\" (null, or a string of 1 to 256 bytes) and an "
              "unsigned integer \"maxsize\", not " + name.dump() + " and " + maxsize.dump());
    return;
  }
  const auto created = context_.queues->Create(
      name.is_null() ? std::nullopt : std::optional<std::string>(name.get<std::string>()),
      maxsize.get<std::size_t>(), id_);
  switch (created.status) {
    case Status::kOk:
      Send({{"type", "queue_create"}, {"id", id}, {"queue", created.queue}});
      return;
    case Status::kFull: SendError(id, "queue_limit", created.why); return;
    case Status::kGone: SendError(id, "queue_exists", created.why); return;
    default: SendError(id, "bad_request", created.why); return;
  }
}

// {"type": "queue_open", "id": 10, "name": "results"}
void Session::OnQueueOpen(Frame& frame) {
  const Json& id = frame.header["id"];
  const Json name = frame.header.value("name", Json(nullptr));
  if (!name.is_string()) {
    SendError(id, "bad_request", "queue_open needs a string \"name\", not " + name.dump());
    return;
  }
  const auto queue = context_.queues->Find(name.get<std::string>());
  // A job may delete it in between.
  const auto info = queue ? context_.queues->Describe(*queue) : std::nullopt;
  if (!info) {
    SendError(id, "unknown_queue", "there is no queue named " + name.dump());
    return;
  }
  Send({{"type", "queue_open"},
        {"id", id},
        {"queue", *queue},
        {"maxsize", info->maxsize}});
}

// {"type": "queue_put", "id": 11, "queue": 3, "block": true, "timeout": 2.5}
//   + the pickled item
void Session::OnQueuePut(Frame& frame) {
  const Json& id = frame.header["id"];
  std::uint64_t queue = 0;
  bool block = true;
  std::optional<double> timeout;
  std::string why = ReadWait(frame.header, &queue, &block, &timeout);
  const Json front = frame.header.value("front", Json(false));
  if (why.empty() && frame.payload.empty()) why = "needs a payload: the pickled item";
  if (why.empty() && !front.is_boolean()) {
    why = "\"front\" must be true or false, not " + front.dump();
  }
  if (!why.empty()) {
    SendError(id, "bad_request", "queue_put " + why);
    return;
  }
  if (front.get<bool>()) {
    PutBack(id, queue, std::move(frame.payload));
    return;
  }
  const std::uint64_t request = id.get<std::uint64_t>();
  auto done = [self = shared_from_this(), request](Status status, const std::string& why) {
    asio::dispatch(self->socket_.get_executor(), [self, request, status, why] {
      self->EndQueueWait(request);
      if (status == Status::kOk) {
        self->Send({{"type", "queue_put"}, {"id", request}});
      } else {
        self->SendError(Json(request), "queue_gone", why);
      }
    });
  };
  auto outcome = context_.queues->Put(queue, std::move(frame.payload), block, id_, done);
  switch (outcome.status) {
    case Status::kOk: Send({{"type", "queue_put"}, {"id", id}}); return;
    case Status::kWaiting:
      queue_waits_[request] = outcome.waiter;
      if (timeout) {
        ArmQueueTimer(request, outcome.waiter, *timeout, "queue_full",
                      "queue " + std::to_string(queue) + " stayed full for " + Seconds(*timeout));
      }
      return;
    case Status::kFull: SendError(id, "queue_full", outcome.why); return;
    case Status::kTooLarge: SendError(id, "item_too_large", outcome.why); return;
    case Status::kGone: SendError(id, "queue_gone", outcome.why); return;
    default: SendError(id, "unknown_queue", outcome.why); return;
  }
}

// {"type": "queue_get", "id": 12, "queue": 3, "block": true, "timeout": null}
void Session::OnQueueGet(Frame& frame) {
  const Json& id = frame.header["id"];
  std::uint64_t queue = 0;
  bool block = true;
  std::optional<double> timeout;
  if (std::string why = ReadWait(frame.header, &queue, &block, &timeout); !why.empty()) {
    SendError(id, "bad_request", "queue_get " + why);
    return;
  }
  const std::uint64_t request = id.get<std::uint64_t>();
  auto done = [self = shared_from_this(), request](Status status, QueueStore::Item item,
                                                   const std::string& why) {
    asio::dispatch(self->socket_.get_executor(),
                   [self, request, status, item = std::move(item), why]() mutable {
                     self->EndQueueWait(request);
                     if (status == Status::kOk) {
                       self->Send({{"type", "queue_get"}, {"id", request}}, std::move(item));
                     } else {
                       self->SendError(Json(request), "queue_gone", why);
                     }
                   });
  };
  auto outcome = context_.queues->Get(queue, block, id_, done);
  switch (outcome.status) {
    case Status::kOk: Send({{"type", "queue_get"}, {"id", id}}, std::move(outcome.item)); return;
    case Status::kWaiting:
      queue_waits_[request] = outcome.waiter;
      if (timeout) {
        ArmQueueTimer(request, outcome.waiter, *timeout, "queue_empty",
                      "queue " + std::to_string(queue) + " stayed empty for " + Seconds(*timeout));
      }
      return;
    case Status::kEmpty: SendError(id, "queue_empty", outcome.why); return;
    case Status::kGone: SendError(id, "queue_gone", outcome.why); return;
    default: SendError(id, "unknown_queue", outcome.why); return;
  }
}

// Answers a waiting put or get with `code` once `seconds` pass, unless the
// store answered it first (its callback then drops this timer).
void Session::ArmQueueTimer(std::uint64_t request, QueueStore::WaiterId waiter, double seconds,
                            std::string code, std::string why) {
  auto timer = std::make_unique<asio::steady_timer>(socket_.get_executor());
  timer->expires_after(std::chrono::duration_cast<asio::steady_timer::duration>(
      std::chrono::duration<double>(seconds)));
  timer->async_wait([self = shared_from_this(), request, waiter, code = std::move(code),
                     why = std::move(why)](const boost::system::error_code& error) {
    if (error || self->closed_) return;
    self->EndQueueWait(request);
    if (self->context_.queues->CancelWaiter(waiter)) self->SendError(Json(request), code, why);
  });
  queue_timers_[request] = std::move(timer);
}

// A wait of this connection ended (answered, timed out or withdrawn): its
// timer and its entry for queue_cancel go.
void Session::EndQueueWait(std::uint64_t request) {
  queue_timers_.erase(request);
  queue_waits_.erase(request);
}

// {"type": "queue_put", "id": 11, "queue": 3, "front": true} + the item: an
// item a get of this client took but could not deliver, returned to the
// front of its queue (QueueStore::PutBack). It never waits.
void Session::PutBack(const Json& id, std::uint64_t queue, std::vector<char> item) {
  auto outcome = context_.queues->PutBack(queue, std::move(item));
  switch (outcome.status) {
    case Status::kOk: Send({{"type", "queue_put"}, {"id", id}}); return;
    case Status::kFull: SendError(id, "queue_full", outcome.why); return;
    case Status::kTooLarge: SendError(id, "item_too_large", outcome.why); return;
    default: SendError(id, "unknown_queue", outcome.why); return;
  }
}

// {"type": "queue_cancel", "id": 15, "request": 12}: withdraws the waiting
// put or get 12 of this connection, which is answered first with
// "cancelled" (a put's item never stored). "answered" when it was answered
// but its answer is still on its way (it follows this reply); "unknown"
// when this connection has no such wait: answered before (that answer came
// first), or never received.
void Session::OnQueueCancel(Frame& frame) {
  const Json& id = frame.header["id"];
  const Json request = frame.header.value("request", Json(nullptr));
  if (!request.is_number_unsigned()) {
    SendError(id, "bad_request",
              "queue_cancel needs an unsigned integer \"request\", not " + request.dump());
    return;
  }
  const std::uint64_t waiting = request.get<std::uint64_t>();
  std::string state = "unknown";
  if (auto it = queue_waits_.find(waiting); it != queue_waits_.end()) {
    const QueueStore::WaiterId waiter = it->second;
    // A job's put or get may have answered it on its own thread just now:
    // the answer, handed to this thread, is then still on its way.
    state = "answered";
    EndQueueWait(waiting);
    if (context_.queues->CancelWaiter(waiter)) {
      state = "withdrawn";
      SendError(request, "cancelled",
                "queue request " + request.dump() + " was withdrawn by queue_cancel " +
                    id.dump() + " before it was answered");
    }
  }
  Send({{"type", "queue_cancel"}, {"id", id}, {"request", request}, {"state", state}});
}

// {"type": "queue_delete", "id": 13, "queue": 3}
void Session::OnQueueDelete(Frame& frame) {
  const Json& id = frame.header["id"];
  const Json queue = frame.header.value("queue", Json(nullptr));
  if (!queue.is_number_unsigned()) {
    SendError(id, "bad_request", "queue_delete needs an unsigned integer \"queue\", not " +
                                     queue.dump());
    return;
  }
  if (!context_.queues->Delete(queue.get<std::uint64_t>(),
                               "connection " + std::to_string(id_) + " deleted it")) {
    SendError(id, "unknown_queue", "queue " + queue.dump() + " does not exist");
    return;
  }
  Send({{"type", "queue_delete"}, {"id", id}});
}

// {"type": "queue_info", "id": 14, "queue": 3}
void Session::OnQueueInfo(Frame& frame) {
  const Json& id = frame.header["id"];
  const Json queue = frame.header.value("queue", Json(nullptr));
  const auto info = queue.is_number_unsigned()
                        ? context_.queues->Describe(queue.get<std::uint64_t>())
                        : std::nullopt;
  if (!queue.is_number_unsigned()) {
    SendError(id, "bad_request", "queue_info needs an unsigned integer \"queue\", not " +
                                     queue.dump());
  } else if (!info) {
    SendError(id, "unknown_queue", "queue " + queue.dump() + " does not exist");
  } else {
    Send({{"type", "queue_info"},  {"id", id},
          {"queue", info->id},     {"name", info->name ? Json(*info->name) : Json(nullptr)},
          {"size", info->size},    {"bytes", info->bytes},
          {"maxsize", info->maxsize},
          {"waiters", info->getters + info->putters},
          {"getters", info->getters}, {"putters", info->putters}});
  }
}

}  // namespace ei
