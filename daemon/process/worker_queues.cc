#include "daemon/process/worker_queues.h"

#include <utility>

namespace ei {

using python::QueueCallResult;

void WorkerQueues::Deliver(proto::Frame frame) {
  const std::uint64_t id = frame.header.value("id", std::uint64_t{0});
  {
    std::lock_guard lock(mu_);
    auto it = waiting_.find(id);
    if (it == waiting_.end()) return;
    it->second = std::move(frame);
  }
  answered_.notify_all();
}

void WorkerQueues::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  answered_.notify_all();
}

// Called by the job's thread, with or without its GIL (builtin_module.cc
// says when); waits for the daemon's answer, which comes at once unless
// the call blocks.
QueueCallResult WorkerQueues::Call(QueueCall call) {
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      QueueCallResult gone;
      gone.code = "queue_gone";
      gone.why = "the daemon is gone";
      return gone;
    }
    id = next_id_++;
    waiting_[id];
  }
  const std::vector<char> item = std::move(call.item);
  if (!link_.Send(QueueCallHeader(id, call), std::string_view(item.data(), item.size()))) {
    Close();
  }
  std::unique_lock lock(mu_);
  answered_.wait(lock, [&] { return closed_ || waiting_[id].has_value(); });
  std::optional<proto::Frame> reply = std::move(waiting_[id]);
  waiting_.erase(id);
  lock.unlock();
  if (!reply) {
    QueueCallResult gone;
    gone.code = "queue_gone";
    gone.why = "the daemon is gone";
    return gone;
  }
  QueueCallResult result = ReadQueueReply(reply->header, std::move(reply->payload),
                                          cancelled_type_, timeout_type_);
  if (result.code == "stopped") stop_consumed_.store(current_job_.load());
  return result;
}

QueueCallResult WorkerQueues::Create(const std::optional<std::string>& name,
                                     std::size_t maxsize) {
  QueueCall call;
  call.op = "create";
  call.name = name;
  call.maxsize = maxsize;
  return Call(std::move(call));
}

QueueCallResult WorkerQueues::Open(const std::string& name) {
  QueueCall call;
  call.op = "open";
  call.name = name;
  return Call(std::move(call));
}

QueueCallResult WorkerQueues::Put(std::uint64_t queue, std::vector<char> item, bool block,
                                  std::optional<double> timeout) {
  QueueCall call;
  call.op = "put";
  call.queue = queue;
  call.item = std::move(item);
  call.block = block;
  call.timeout = timeout;
  return Call(std::move(call));
}

QueueCallResult WorkerQueues::Get(std::uint64_t queue, bool block,
                                  std::optional<double> timeout) {
  QueueCall call;
  call.op = "get";
  call.queue = queue;
  call.block = block;
  call.timeout = timeout;
  return Call(std::move(call));
}

QueueCallResult WorkerQueues::Info(std::uint64_t queue) {
  QueueCall call;
  call.op = "info";
  call.queue = queue;
  return Call(std::move(call));
}

QueueCallResult WorkerQueues::Delete(std::uint64_t queue) {
  QueueCall call;
  call.op = "delete";
  call.queue = queue;
  return Call(std::move(call));
}

}  // namespace ei
