#include "daemon/net/queue_requests.h"

#include <chrono>
#include <optional>
#include <utility>

#include <boost/asio/dispatch.hpp>

#include "daemon/net/session.h"

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

std::string Seconds(std::optional<double> seconds) {
  if (!seconds) return "";  // the wait has no timeout
  std::string text = std::to_string(*seconds);
  text.erase(text.find_last_not_of('0') + 1);
  if (text.back() == '.') text.pop_back();
  return text + " s";
}

}  // namespace

// {"type": "queue_create", "id": 9, "name": "results", "maxsize": 100}
void QueueRequests::OnCreate(Frame& frame) {
  const Json& id = frame.header["id"];
  const Json name = frame.header.value("name", Json(nullptr));
  const Json maxsize = frame.header.value("maxsize", Json(0));
  if (!(name.is_null() || (name.is_string() && !name.get<std::string>().empty() &&
                           name.get<std::string>().size() <= kMaxQueueNameBytes)) ||
      !maxsize.is_number_unsigned()) {
    session_.SendError(id, "bad_request",
              "queue_create needs \"name\" (null, or a string of 1 to 256 bytes) and an "
              "unsigned integer \"maxsize\", not " + name.dump() + " and " + maxsize.dump());
    return;
  }
  const auto created = session_.context().queues->Create(
      name.is_null() ? std::nullopt : std::optional<std::string>(name.get<std::string>()),
      maxsize.get<std::size_t>(), session_.id());
  switch (created.status) {
    case Status::kOk:
      session_.Send({{"type", "queue_create"}, {"id", id}, {"queue", created.queue}});
      return;
    case Status::kFull: session_.SendError(id, "queue_limit", created.why); return;
    case Status::kGone: session_.SendError(id, "queue_exists", created.why); return;
    default: session_.SendError(id, "bad_request", created.why); return;
  }
}

// {"type": "queue_open", "id": 10, "name": "results"}
void QueueRequests::OnOpen(Frame& frame) {
  const Json& id = frame.header["id"];
  const Json name = frame.header.value("name", Json(nullptr));
  if (!name.is_string()) {
    session_.SendError(id, "bad_request", "queue_open needs a string \"name\", not " + name.dump());
    return;
  }
  const auto queue = session_.context().queues->Find(name.get<std::string>());
  // A job may delete it in between.
  const auto info = queue ? session_.context().queues->Describe(*queue) : std::nullopt;
  if (!info) {
    session_.SendError(id, "unknown_queue", "there is no queue named " + name.dump());
    return;
  }
  session_.Send({{"type", "queue_open"},
        {"id", id},
        {"queue", *queue},
        {"maxsize", info->maxsize}});
}

// {"type": "queue_put", "id": 11, "queue": 3, "block": true, "timeout": 2.5}
//   + the pickled item
void QueueRequests::OnPut(Frame& frame) {
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
    session_.SendError(id, "bad_request", "queue_put " + why);
    return;
  }
  if (front.get<bool>()) {
    PutBack(id, queue, std::move(frame.payload));
    return;
  }
  const std::uint64_t request = id.get<std::uint64_t>();
  auto done = [this, self = session_.shared_from_this(), request](Status status,
                                                                  const std::string& why) {
    asio::dispatch(self->executor(), [this, self, request, status, why] {
      EndWait(request);
      if (status == Status::kOk) {
        self->Send({{"type", "queue_put"}, {"id", request}});
      } else {
        self->SendError(Json(request), "queue_gone", why);
      }
    });
  };
  auto outcome = session_.context().queues->Put(queue, std::move(frame.payload), block, session_.id(), done);
  switch (outcome.status) {
    case Status::kOk: session_.Send({{"type", "queue_put"}, {"id", id}}); return;
    case Status::kWaiting:
      Wait(request, outcome.waiter, timeout, "queue_full",
           "queue " + std::to_string(queue) + " stayed full for " + Seconds(timeout));
      return;
    case Status::kFull: session_.SendError(id, "queue_full", outcome.why); return;
    case Status::kTooLarge: session_.SendError(id, "item_too_large", outcome.why); return;
    case Status::kGone: session_.SendError(id, "queue_gone", outcome.why); return;
    default: session_.SendError(id, "unknown_queue", outcome.why); return;
  }
}

// {"type": "queue_get", "id": 12, "queue": 3, "block": true, "timeout": null}
void QueueRequests::OnGet(Frame& frame) {
  const Json& id = frame.header["id"];
  std::uint64_t queue = 0;
  bool block = true;
  std::optional<double> timeout;
  if (std::string why = ReadWait(frame.header, &queue, &block, &timeout); !why.empty()) {
    session_.SendError(id, "bad_request", "queue_get " + why);
    return;
  }
  const std::uint64_t request = id.get<std::uint64_t>();
  auto done = [this, self = session_.shared_from_this(), request](
                  Status status, QueueStore::Item item, const std::string& why) {
    asio::dispatch(self->executor(),
                   [this, self, request, status, item = std::move(item), why]() mutable {
                     EndWait(request);
                     if (status == Status::kOk) {
                       self->Send({{"type", "queue_get"}, {"id", request}}, std::move(item));
                     } else {
                       self->SendError(Json(request), "queue_gone", why);
                     }
                   });
  };
  auto outcome = session_.context().queues->Get(queue, block, session_.id(), done);
  switch (outcome.status) {
    case Status::kOk: session_.Send({{"type", "queue_get"}, {"id", id}}, std::move(outcome.item)); return;
    case Status::kWaiting:
      Wait(request, outcome.waiter, timeout, "queue_empty",
           "queue " + std::to_string(queue) + " stayed empty for " + Seconds(timeout));
      return;
    case Status::kEmpty: session_.SendError(id, "queue_empty", outcome.why); return;
    case Status::kGone: session_.SendError(id, "queue_gone", outcome.why); return;
    default: session_.SendError(id, "unknown_queue", outcome.why); return;
  }
}

// A put or get waits: queue_cancel can withdraw it, and with a timeout it
// is answered with `code` once that passes, unless the store answered it
// first (its callback then drops this timer).
void QueueRequests::Wait(std::uint64_t request, QueueStore::WaiterId waiter,
                         std::optional<double> timeout, std::string code, std::string why) {
  waits_[request] = waiter;
  if (!timeout) return;
  auto timer = std::make_unique<asio::steady_timer>(session_.executor());
  timer->expires_after(std::chrono::duration_cast<asio::steady_timer::duration>(
      std::chrono::duration<double>(*timeout)));
  timer->async_wait([this, self = session_.shared_from_this(), request, waiter,
                     code = std::move(code),
                     why = std::move(why)](const boost::system::error_code& error) {
    if (error || self->closed()) return;
    EndWait(request);
    if (self->context().queues->CancelWaiter(waiter)) self->SendError(Json(request), code, why);
  });
  timers_[request] = std::move(timer);
}

// A wait of this connection ended (answered, timed out or withdrawn): its
// timer and its entry for queue_cancel go.
void QueueRequests::EndWait(std::uint64_t request) {
  timers_.erase(request);
  waits_.erase(request);
}

// {"type": "queue_put", "id": 11, "queue": 3, "front": true} + the item: an
// item a get of this client took but could not deliver, returned to the
// front of its queue (QueueStore::PutBack). It never waits.
void QueueRequests::PutBack(const Json& id, std::uint64_t queue, std::vector<char> item) {
  auto outcome = session_.context().queues->PutBack(queue, std::move(item));
  switch (outcome.status) {
    case Status::kOk: session_.Send({{"type", "queue_put"}, {"id", id}}); return;
    case Status::kFull: session_.SendError(id, "queue_full", outcome.why); return;
    case Status::kTooLarge: session_.SendError(id, "item_too_large", outcome.why); return;
    default: session_.SendError(id, "unknown_queue", outcome.why); return;
  }
}

// {"type": "queue_cancel", "id": 15, "request": 12}: withdraws the waiting
// put or get 12 of this connection, which is answered first with
// "cancelled" (a put's item never stored). "answered" when it was answered
// but its answer is still on its way (it follows this reply); "unknown"
// when this connection has no such wait: answered before (that answer came
// first), or never received.
void QueueRequests::OnCancel(Frame& frame) {
  const Json& id = frame.header["id"];
  const Json request = frame.header.value("request", Json(nullptr));
  if (!request.is_number_unsigned()) {
    session_.SendError(id, "bad_request",
              "queue_cancel needs an unsigned integer \"request\", not " + request.dump());
    return;
  }
  const std::uint64_t waiting = request.get<std::uint64_t>();
  std::string state = "unknown";
  if (auto it = waits_.find(waiting); it != waits_.end()) {
    const QueueStore::WaiterId waiter = it->second;
    // A job's put or get may have answered it on its own thread just now:
    // the answer, handed to this thread, is then still on its way.
    state = "answered";
    EndWait(waiting);
    if (session_.context().queues->CancelWaiter(waiter)) {
      state = "withdrawn";
      session_.SendError(request, "cancelled",
                "queue request " + request.dump() + " was withdrawn by queue_cancel " +
                    id.dump() + " before it was answered");
    }
  }
  session_.Send({{"type", "queue_cancel"}, {"id", id}, {"request", request}, {"state", state}});
}

// {"type": "queue_delete", "id": 13, "queue": 3}
void QueueRequests::OnDelete(Frame& frame) {
  const Json& id = frame.header["id"];
  const Json queue = frame.header.value("queue", Json(nullptr));
  if (!queue.is_number_unsigned()) {
    session_.SendError(id, "bad_request", "queue_delete needs an unsigned integer \"queue\", not " +
                                     queue.dump());
    return;
  }
  if (!session_.context().queues->Delete(queue.get<std::uint64_t>(),
                               "connection " + std::to_string(session_.id()) + " deleted it")) {
    session_.SendError(id, "unknown_queue", "queue " + queue.dump() + " does not exist");
    return;
  }
  session_.Send({{"type", "queue_delete"}, {"id", id}});
}

// {"type": "queue_info", "id": 14, "queue": 3}
void QueueRequests::OnInfo(Frame& frame) {
  const Json& id = frame.header["id"];
  const Json queue = frame.header.value("queue", Json(nullptr));
  const auto info = queue.is_number_unsigned()
                        ? session_.context().queues->Describe(queue.get<std::uint64_t>())
                        : std::nullopt;
  if (!queue.is_number_unsigned()) {
    session_.SendError(id, "bad_request", "queue_info needs an unsigned integer \"queue\", not " +
                                     queue.dump());
  } else if (!info) {
    session_.SendError(id, "unknown_queue", "queue " + queue.dump() + " does not exist");
  } else {
    session_.Send({{"type", "queue_info"},  {"id", id},
          {"queue", info->id},     {"name", info->name ? Json(*info->name) : Json(nullptr)},
          {"size", info->size},    {"bytes", info->bytes},
          {"maxsize", info->maxsize},
          {"waiters", info->getters + info->putters},
          {"getters", info->getters}, {"putters", info->putters}});
  }
}

void QueueRequests::Close() {
  timers_.clear();
  waits_.clear();
  session_.context().queues->DropOwner(session_.id());
}

}  // namespace ei
