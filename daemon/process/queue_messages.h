// A job's queue calls as they cross the link between a process lane worker
// and the daemon: the worker sends a "queue" frame, the daemon makes the
// call through the in-job queue service and sends a "queue_reply".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/python/builtin_module.h"

namespace ei {

/// One queue call: its operation ("create", "open", "put", "get", "info",
/// "delete") and arguments.
struct QueueCall {
  std::string op;
  std::optional<std::string> name;  // create (null: anonymous), open
  std::size_t maxsize = 0;          // create
  std::uint64_t queue = 0;          // put, get, info, delete
  bool block = false;               // put, get
  std::optional<double> timeout;    // put, get
  std::vector<char> item;           // put: the payload
};

/// The "queue" frame's header for `call` (its item goes as the payload).
nlohmann::json QueueCallHeader(std::uint64_t id, const QueueCall& call);
/// The call a "queue" frame asks for; nullopt when the header is malformed.
std::optional<QueueCall> ReadQueueCall(const nlohmann::json& header, std::vector<char> payload);

/// Makes `call` through `service` (the daemon's in-job queue service).
python::QueueCallResult MakeQueueCall(python::QueueService& service, QueueCall call);

/// The "queue_reply" header for `result` (a get's item goes as the
/// payload). A stopped call says which stop: "cancel" or "timeout".
nlohmann::json QueueReplyHeader(std::uint64_t id, const python::QueueCallResult& result,
                                bool timed_out);
/// The result a "queue_reply" carries; `stop_types` are the worker's
/// JobCancelled and TimeoutError, for a stopped call.
python::QueueCallResult ReadQueueReply(const nlohmann::json& header, std::vector<char> payload,
                                       _object* cancelled_type, _object* timeout_type);

}  // namespace ei
