// queue_create, queue_open, queue_put, queue_get, queue_delete, queue_info
// and queue_cancel (PROTOCOL.md, "Queues"): a connection's use of the
// daemon's queues.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "daemon/queues/queue_store.h"
#include "proto/frame_codec.h"

namespace ei {

class Session;

/// Thread affinity: every handler and timer here runs on the I/O thread. A
/// waiter's callback runs on whichever thread answered it (a job's put or
/// get answers on its interpreter's thread) and hands its work to the I/O
/// thread with asio::dispatch: inline when it is already there. So this
/// connection's waits are only ever touched on the I/O thread. A blocked
/// put or get is a waiter in the store, an entry in waits_ (for
/// queue_cancel) and, when it has a timeout, a timer in timers_; whichever
/// ends the wait first (the store's answer, the timer or a queue_cancel)
/// removes the others. Close() drops them all, so a connection that goes
/// away leaves no waiter behind.
class QueueRequests {
 public:
  explicit QueueRequests(Session& session) : session_(session) {}
  QueueRequests(const QueueRequests&) = delete;
  QueueRequests& operator=(const QueueRequests&) = delete;

  void OnCreate(proto::Frame& frame);
  void OnOpen(proto::Frame& frame);
  void OnPut(proto::Frame& frame);
  void OnGet(proto::Frame& frame);
  void OnDelete(proto::Frame& frame);
  void OnInfo(proto::Frame& frame);
  void OnCancel(proto::Frame& frame);

  /// The connection closed: its blocked puts and gets end unanswered; its
  /// anonymous queues go.
  void Close();

 private:
  void PutBack(const nlohmann::json& id, std::uint64_t queue, std::vector<char> item);
  void EndWait(std::uint64_t request);
  void Wait(std::uint64_t request, QueueStore::WaiterId waiter, std::optional<double> timeout,
            std::string code, std::string why);

  Session& session_;
  std::unordered_map<std::uint64_t, std::unique_ptr<boost::asio::steady_timer>> timers_;
  std::unordered_map<std::uint64_t, QueueStore::WaiterId> waits_;
};

}  // namespace ei
