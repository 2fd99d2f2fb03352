#include "daemon/process/queue_messages.h"

#include <utility>

namespace ei {

using Json = nlohmann::json;
using python::QueueCallResult;

Json QueueCallHeader(std::uint64_t id, const QueueCall& call) {
  Json header = {{"type", "queue"}, {"id", id}, {"op", call.op}};
  if (call.op == "create" || call.op == "open") {
    header["name"] = call.name ? Json(*call.name) : Json(nullptr);
    header["maxsize"] = call.maxsize;
  } else {
    header["queue"] = call.queue;
  }
  if (call.op == "put" || call.op == "get") {
    header["block"] = call.block;
    header["timeout"] = call.timeout ? Json(*call.timeout) : Json(nullptr);
  }
  return header;
}

std::optional<QueueCall> ReadQueueCall(const Json& header, std::vector<char> payload) {
  QueueCall call;
  call.op = header.value("op", std::string());
  const Json name = header.value("name", Json(nullptr));
  if (name.is_string()) call.name = name.get<std::string>();
  const Json timeout = header.value("timeout", Json(nullptr));
  if (timeout.is_number()) call.timeout = timeout.get<double>();
  call.maxsize = header.value("maxsize", std::size_t{0});
  call.queue = header.value("queue", std::uint64_t{0});
  call.block = header.value("block", false);
  call.item = std::move(payload);
  if (call.op == "open" && !call.name) return std::nullopt;
  if (call.op != "create" && call.op != "open" && call.op != "put" && call.op != "get" &&
      call.op != "info" && call.op != "delete") {
    return std::nullopt;
  }
  return call;
}

QueueCallResult MakeQueueCall(python::QueueService& service, QueueCall call) {
  if (call.op == "create") return service.Create(call.name, call.maxsize);
  if (call.op == "open") return service.Open(*call.name);
  if (call.op == "put") return service.Put(call.queue, std::move(call.item), call.block, call.timeout);
  if (call.op == "get") return service.Get(call.queue, call.block, call.timeout);
  if (call.op == "info") return service.Info(call.queue);
  return service.Delete(call.queue);
}

Json QueueReplyHeader(std::uint64_t id, const QueueCallResult& result, bool timed_out) {
  Json header = {{"type", "queue_reply"},
                 {"id", id},
                 {"code", result.code},
                 {"why", result.why},
                 {"queue", result.queue},
                 {"maxsize", result.maxsize},
                 {"name", result.name ? Json(*result.name) : Json(nullptr)},
                 {"size", result.size},
                 {"bytes", result.bytes},
                 {"getters", result.getters},
                 {"putters", result.putters}};
  if (result.code == "stopped") header["stop"] = timed_out ? "timeout" : "cancel";
  return header;
}

QueueCallResult ReadQueueReply(const Json& header, std::vector<char> payload,
                               _object* cancelled_type, _object* timeout_type) {
  QueueCallResult result;
  result.code = header.value("code", std::string("bad_request"));
  result.why = header.value("why", std::string());
  result.queue = header.value("queue", std::uint64_t{0});
  result.maxsize = header.value("maxsize", std::size_t{0});
  const Json name = header.value("name", Json(nullptr));
  if (name.is_string()) result.name = name.get<std::string>();
  result.size = header.value("size", std::size_t{0});
  result.bytes = header.value("bytes", std::size_t{0});
  result.getters = header.value("getters", std::size_t{0});
  result.putters = header.value("putters", std::size_t{0});
  result.item = std::move(payload);
  if (result.code == "stopped") {
    result.stop_type = header.value("stop", std::string()) == "timeout" ? timeout_type
                                                                        : cancelled_type;
  }
  return result;
}

}  // namespace ei
