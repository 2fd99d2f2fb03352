#include "daemon/net/session.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <unordered_map>
#include <utility>

#include <boost/asio/post.hpp>

#include "daemon/base/log.h"
#include "daemon/base/version.h"
#include "daemon/net/job_reply.h"
#include "daemon/net/session_manager.h"

namespace ei {

namespace asio = boost::asio;
using Json = nlohmann::json;
using proto::Frame;

// Queues listed in the status document; "count" says how many there are.
constexpr std::size_t kStatusQueues = 100;

Session::Session(Socket socket, DaemonContext& context, std::uint64_t connection_id)
    : socket_(std::move(socket)),
      context_(context),
      id_(connection_id),
      decoder_(context.limits),
      timer_(socket_.get_executor()) {}

void Session::Start() {
  NoteBytes(/*frame_done=*/true);  // starts the idle clock
  ReadMore();
}

// Reads with recvmsg rather than Asio's reads: frames may bring file
// descriptors (SCM_RIGHTS) with them.
void Session::ReadMore() {
  socket_.async_wait(Socket::wait_read, [self = shared_from_this()](
                                            const boost::system::error_code& error) {
    self->OnReadable(error);
  });
}

void Session::OnReadable(const boost::system::error_code& error) {
  if (closed_ || closing_) return;
  if (error) {
    if (error != asio::error::operation_aborted) {
      log::Info("connection error: connection " + std::to_string(id_) + ": " + error.message());
    }
    Close();
    return;
  }
  // A few reads per wake-up, so one busy client cannot starve the others.
  for (int i = 0; i < 8 && !closing_ && !closed_; ++i) {
    if (!ReceiveSome()) break;
  }
  if (!closing_ && !closed_) ReadMore();
}

// One recvmsg: false when there is nothing more to read now (or the
// connection ended).
bool Session::ReceiveSome() {
  constexpr std::size_t kMaxFds = 16;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  iovec part{read_buffer_.data(), read_buffer_.size()};
  msghdr message{};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(socket_.native_handle(), &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0 && errno == EINTR) return true;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
  if (n <= 0) {
    // 0 is the client hanging up.
    if (n < 0) log::Info("connection error: connection " + std::to_string(id_) + ": " +
                         std::strerror(errno));
    Close();
    return false;
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      received_fds_.emplace_back(fd);
    }
  }
  if ((message.msg_flags & MSG_CTRUNC) != 0 || received_fds_.size() > kMaxFds) {
    SendError(nullptr, "bad_frame",
              "more than " + std::to_string(kMaxFds) +
                  " file descriptors were sent without frames that take them",
              /*fatal=*/true);
    return false;
  }
  Consume(static_cast<std::size_t>(n));
  return static_cast<std::size_t>(n) == read_buffer_.size();
}

void Session::Consume(std::size_t size) {
  std::size_t offset = 0;
  while (offset < size && !closing_) {
    std::size_t used = 0;
    auto result = decoder_.Feed(read_buffer_.data() + offset, size - offset, &used);
    offset += used;
    NoteBytes(result == proto::FrameDecoder::Result::kFrame);
    if (result == proto::FrameDecoder::Result::kFrame) {
      Frame frame = decoder_.TakeFrame();
      Dispatch(frame);
    } else if (result == proto::FrameDecoder::Result::kBad) {
      const Json id = decoder_.error_id() >= 0 ? Json(decoder_.error_id()) : Json(nullptr);
      log::Warning("bad frame: connection " + std::to_string(id_) + ": " +
                   decoder_.error().message);
      SendError(id, decoder_.error().code, decoder_.error().message, /*fatal=*/true);
    }
  }
}

// One small handler per message type; PROTOCOL.md has every field.
void Session::Dispatch(Frame& frame) {
  static const std::unordered_map<std::string, Handler> kHandlers = {
      {"hello", &Session::OnHello},     {"run", &Session::OnRun},
      {"lease", &Session::OnLease},     {"release", &Session::OnRelease},
      {"status", &Session::OnStatus},   {"ping", &Session::OnPing},
      {"cancel", &Session::OnCancel},   {"define", &Session::OnDefine},
      {"queue_create", &Session::OnQueueCreate}, {"queue_open", &Session::OnQueueOpen},
      {"queue_put", &Session::OnQueuePut},       {"queue_get", &Session::OnQueueGet},
      {"queue_delete", &Session::OnQueueDelete}, {"queue_info", &Session::OnQueueInfo},
      {"queue_cancel", &Session::OnQueueCancel},
  };
  const std::string type = frame.header["type"].get<std::string>();
  if (!greeted_ && type != "hello") {
    SendError(frame.header["id"], "hello_required",
              "the first request must be hello, not " + type, /*fatal=*/true);
    return;
  }
  if (result_region_ != nullptr && frame.header.value("free_region", false) == true) {
    result_region_->FreeFromClient();
  }
  if (type != "run" && frame.header.value("fd", false) == true && !received_fds_.empty()) {
    received_fds_.pop_front();  // only run takes one; drop it, do not pass it on
  }
  auto it = kHandlers.find(type);
  if (it == kHandlers.end()) {
    SendError(frame.header["id"], "unknown_type", "unknown request type \"" + type + "\"");
    return;
  }
  (this->*(it->second))(frame);
}

// {"type": "hello", "id": 1, "protocol": 1, "client": "..."}
void Session::OnHello(Frame& frame) {
  const Json& protocol = frame.header["protocol"];
  if (!protocol.is_number_integer() || protocol.get<long>() != kProtocolVersion) {
    SendError(frame.header["id"], "unsupported_version",
              "protocol " + protocol.dump() + " is not supported (this daemon speaks " +
                  std::to_string(kProtocolVersion) + ")",
              /*fatal=*/true);
    return;
  }
  // Interpreter threads read result_region_ once jobs exist, so it is set
  // only by the first hello, before any job.
  const bool first = !std::exchange(greeted_, true);
  takes_fds_ = frame.header.value("fds", false) == true;
  if (first && takes_fds_ && frame.header.value("regions", false) == true) {
    result_region_ = std::make_shared<ResultRegion>(context_.limits.max_frame_bytes);
  }
  const Json& client = frame.header["client"];
  log::Info("client hello: connection " + std::to_string(id_) + " is " +
            (client.is_string() ? client.get<std::string>() : std::string("an unnamed client")));
  Send({{"type", "hello"},
        {"id", frame.header["id"]},
        {"protocol", kProtocolVersion},
        {"daemon_version", kDaemonVersion},
        {"pid", context_.info.pid},
        {"python", context_.info.python_version},
        {"python_hexversion", context_.info.python_hexversion},
        {"workers", context_.workers},
        {"limits",
         {{"max_frame_bytes", context_.limits.max_frame_bytes},
          {"max_header_bytes", context_.limits.max_header_bytes},
          {"buffer_size", context_.buffer_size},
          {"max_interpreters", context_.pool->Snapshot().max_interpreters},
          {"max_definitions", context_.max_definitions},
          {"cancel_grace_seconds", context_.cancel_grace_seconds},
          {"max_connections", context_.connection_limits.max_connections},
          {"max_jobs_per_connection", context_.connection_limits.max_jobs_per_connection},
          {"max_queue_depth", context_.connection_limits.max_queue_depth},
          {"frame_deadline_seconds", context_.connection_limits.frame_deadline_seconds},
          {"idle_timeout_seconds", context_.connection_limits.idle_timeout_seconds},
          {"max_output_buffer", context_.connection_limits.max_output_buffer},
          {"max_queues", context_.queues->limits().max_queues},
          {"max_queue_items", context_.queues->limits().max_items},
          {"max_queue_bytes", context_.queues->limits().max_bytes}}}});
}

// {"type": "lease", "id": 2}
void Session::OnLease(Frame& frame) {
  const std::uint64_t request_id = frame.header["id"].get<std::uint64_t>();
  context_.pool->Lease([self = shared_from_this(), request_id](LeaseGrant grant) {
    asio::post(self->socket_.get_executor(),
               [self, request_id, grant]() { self->OnLeaseGranted(request_id, grant); });
  });
}

void Session::OnLeaseGranted(std::uint64_t request_id, const LeaseGrant& grant) {
  if (!grant.ok) {
    SendError(Json(request_id), grant.error_code, grant.message);
    return;
  }
  if (closed_) {
    // The client left while the lease was being made: give it straight back.
    context_.pool->Release(grant.lease_id, [] {});
    return;
  }
  leases_.insert(grant.lease_id);
  log::Info("lease granted: lease " + std::to_string(grant.lease_id) + " to connection " +
            std::to_string(id_) + " on interpreter " + std::to_string(grant.interpreter_id));
  Send({{"type", "lease"},
        {"id", request_id},
        {"lease", grant.lease_id},
        {"interpreter", grant.interpreter_id}});
}

// {"type": "release", "id": 3, "lease": 5}
void Session::OnRelease(Frame& frame) {
  const Json& id = frame.header["id"];
  const Json& lease = frame.header["lease"];
  if (!lease.is_number_unsigned()) {
    SendError(id, "bad_request", "release needs an unsigned integer \"lease\", not " + lease.dump());
    return;
  }
  const std::uint64_t lease_id = lease.get<std::uint64_t>();
  if (leases_.erase(lease_id) == 0) {
    SendError(id, "unknown_lease", "lease " + lease.dump() + " is not held by this connection");
    return;
  }
  auto reply = [self = shared_from_this(), id, lease_id]() {
    asio::post(self->socket_.get_executor(), [self, id, lease_id]() {
      if (!self->closed_) self->Send({{"type", "release"}, {"id", id}, {"lease", lease_id}});
    });
  };
  if (!context_.pool->Release(lease_id, reply)) {
    SendError(id, "unknown_lease", "lease " + lease.dump() + " has already ended");
  }
}

// {"type": "status", "id": 4}
void Session::OnStatus(Frame& frame) {
  Send({{"type", "status"},
        {"id", frame.header["id"]},
        {"status", BuildStatus(context_.info, context_.pool->Snapshot(), *context_.totals,
                               context_.latency->Summarize(), context_.sessions->size(),
                               context_.stopping, context_.queues->StatusJson(kStatusQueues))}});
}

// {"type": "ping", "id": 5}
void Session::OnPing(Frame& frame) { Send({{"type", "ping"}, {"id", frame.header["id"]}}); }

void Session::SendError(const Json& request_id, std::string_view code, std::string message,
                        bool fatal, const PyErrorInfo* exception) {
  Send(ErrorHeader(request_id, code, std::move(message), fatal, exception));
  if (fatal) CloseWhenFlushed();
}

void Session::CloseWhenFlushed() {
  if (closed_) return;
  closing_ = true;
  {
    std::lock_guard lock(send_mu_);
    if (!out_.empty()) {
      close_when_flushed_ = true;  // FlushLocked posts Close once empty
      return;
    }
  }
  Close();
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  closing_ = true;
  abandoned_->store(true);
  timer_.cancel();
  for (std::uint64_t lease : leases_) context_.pool->Release(lease, [] {});
  if (!leases_.empty()) {
    log::Info("leases released: " + std::to_string(leases_.size()) + " of connection " +
              std::to_string(id_) + ", which closed");
  }
  leases_.clear();
  {
    std::lock_guard lock(jobs_mu_);
    jobs_.clear();
  }
  definitions_.clear();
  if (result_region_ != nullptr) result_region_->Close();
  argument_map_.reset();  // unmapped now, or when its running job ends
  // Its blocked puts and gets end unanswered; its anonymous queues go.
  queue_timers_.clear();
  queue_waits_.clear();
  context_.queues->DropOwner(id_);
  {
    // Under send_mu_: no interpreter thread may write to the descriptor
    // once it is closed (its number could be reused at once).
    std::lock_guard lock(send_mu_);
    send_closed_ = true;
    out_.clear();
    out_bytes_ = 0;
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
  log::Info("connection closed: connection " + std::to_string(id_));
  context_.sessions->Remove(shared_from_this());
  // Memory kept warm for this client's large transfers goes back now (jobs
  // of it still running trim again when they end: OnJobDone).
  if (moved_large_.load() && context_.trimmer != nullptr) context_.trimmer->TrimNow();
}

}  // namespace ei
