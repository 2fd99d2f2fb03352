// The daemon's queues as a job in a process lane worker reaches them: each
// call goes over the link to the daemon, which makes it through its in-job
// queue service and answers. Worker process side.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "daemon/process/link.h"
#include "daemon/process/queue_messages.h"
#include "daemon/python/builtin_module.h"

namespace ei {

class WorkerQueues : public python::QueueService {
 public:
  /// `stop_consumed` is set to `current_job` when a call comes back
  /// "stopped": the job's stop was raised by that call, not by the stop
  /// signal (worker_main.cc).
  WorkerQueues(WorkerLink& link, const std::atomic<std::uint64_t>& current_job,
               std::atomic<std::uint64_t>& stop_consumed)
      : link_(link), current_job_(current_job), stop_consumed_(stop_consumed) {}

  /// The worker's JobCancelled and TimeoutError, raised by a stopped call.
  void SetStopTypes(_object* cancelled, _object* timeout) {
    cancelled_type_ = cancelled;
    timeout_type_ = timeout;
  }

  /// Reader thread: the daemon answered call `frame.header["id"]`.
  void Deliver(proto::Frame frame);
  /// The link ended: every waiting call fails.
  void Close();

  python::QueueCallResult Create(const std::optional<std::string>& name,
                                 std::size_t maxsize) override;
  python::QueueCallResult Open(const std::string& name) override;
  python::QueueCallResult Put(std::uint64_t queue, std::vector<char> item, bool block,
                              std::optional<double> timeout) override;
  python::QueueCallResult Get(std::uint64_t queue, bool block,
                              std::optional<double> timeout) override;
  python::QueueCallResult Info(std::uint64_t queue) override;
  python::QueueCallResult Delete(std::uint64_t queue) override;

 private:
  python::QueueCallResult Call(QueueCall call);

  WorkerLink& link_;
  const std::atomic<std::uint64_t>& current_job_;
  std::atomic<std::uint64_t>& stop_consumed_;
  _object* cancelled_type_ = nullptr;
  _object* timeout_type_ = nullptr;

  std::mutex mu_;
  std::condition_variable answered_;
  std::map<std::uint64_t, std::optional<proto::Frame>> waiting_;  // guarded by mu_
  std::uint64_t next_id_ = 1;                                     // guarded by mu_
  bool closed_ = false;                                           // guarded by mu_
};

}  // namespace ei
