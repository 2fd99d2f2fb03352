#include "daemon/session.h"

#include <unordered_map>

#include <boost/asio/post.hpp>

#include "daemon/job_reply.h"
#include "daemon/log.h"
#include "daemon/session_manager.h"
#include "daemon/version.h"

namespace ei {

namespace asio = boost::asio;
using Json = nlohmann::json;
using proto::Frame;

Session::Session(Socket socket, DaemonContext& context, std::uint64_t connection_id)
    : socket_(std::move(socket)), context_(context), id_(connection_id), decoder_(context.limits) {}

void Session::Start() { ReadMore(); }

void Session::ReadMore() {
  socket_.async_read_some(asio::buffer(read_buffer_),
                          [self = shared_from_this()](const boost::system::error_code& error,
                                                      std::size_t size) { self->OnRead(error, size); });
}

void Session::OnRead(const boost::system::error_code& error, std::size_t size) {
  if (closed_ || closing_) return;
  if (error) {
    // EOF is the client hanging up; aborted is our own Close().
    if (error != asio::error::eof && error != asio::error::operation_aborted) {
      log::Info("connection error: connection " + std::to_string(id_) + ": " + error.message());
    }
    Close();
    return;
  }
  std::size_t offset = 0;
  while (offset < size && !closing_) {
    std::size_t used = 0;
    auto result = decoder_.Feed(read_buffer_.data() + offset, size - offset, &used);
    offset += used;
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
  if (!closing_) ReadMore();
}

// One small handler per message type; PROTOCOL.md has every field.
void Session::Dispatch(Frame& frame) {
  static const std::unordered_map<std::string, Handler> kHandlers = {
      {"hello", &Session::OnHello},     {"run", &Session::OnRun},
      {"lease", &Session::OnLease},     {"release", &Session::OnRelease},
      {"status", &Session::OnStatus},   {"ping", &Session::OnPing},
      {"cancel", &Session::OnCancel},   {"define", &Session::OnDefine},
  };
  const std::string type = frame.header["type"].get<std::string>();
  if (!greeted_ && type != "hello") {
    SendError(frame.header["id"], "hello_required",
              "the first request must be hello, not " + type, /*fatal=*/true);
    return;
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
  greeted_ = true;
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
          {"cancel_grace_seconds", context_.cancel_grace_seconds}}}});
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
                               context_.stopping)}});
}

// {"type": "ping", "id": 5}
void Session::OnPing(Frame& frame) { Send({{"type", "ping"}, {"id", frame.header["id"]}}); }

void Session::SendError(const Json& request_id, std::string_view code, std::string message,
                        bool fatal, const python::PyErrorInfo* exception) {
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
  {
    // Under send_mu_: no interpreter thread may write to the descriptor
    // once it is closed (its number could be reused at once).
    std::lock_guard lock(send_mu_);
    send_closed_ = true;
    out_.clear();
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
  log::Info("connection closed: connection " + std::to_string(id_));
  context_.sessions->Remove(shared_from_this());
}

}  // namespace ei
