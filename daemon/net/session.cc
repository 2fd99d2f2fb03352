#include "daemon/net/session.h"

#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "daemon/base/log.h"
#include "daemon/base/version.h"
#include "daemon/net/flow_gate.h"
#include "daemon/base/fd_passing.h"
#include "daemon/net/job_reply.h"
#include "daemon/net/session_manager.h"

namespace ei {

using Json = nlohmann::json;
using proto::Frame;

// Queues listed in the status document; "count" says how many there are.
constexpr std::size_t kStatusQueues = 100;

Session::Session(Socket socket, DaemonContext& context, std::uint64_t connection_id)
    : socket_(std::move(socket)),
      context_(context),
      id_(connection_id),
      decoder_(context.limits),
      writer_(socket_, context.connection_limits.max_output_buffer, connection_id),
      deadlines_(*this),
      leases_(*this),
      jobs_(*this, leases_),
      queues_(*this) {}

void Session::Start() {
  writer_.Start(weak_from_this(), [this] { Close(); });
  deadlines_.NoteBytes(/*frame_done=*/true);  // starts the idle clock
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
  if (closed_ || closing_ || held_) return;
  if (error) {
    if (error != boost::asio::error::operation_aborted) {
      log::Info("connection error: connection " + std::to_string(id_) + ": " + error.message());
    }
    Close();
    return;
  }
  // A few reads per wake-up, so one busy client cannot starve the others.
  for (int i = 0; i < 8 && !closing_ && !closed_ && !held_; ++i) {
    if (!ReceiveSome()) break;
  }
  if (!closing_ && !closed_ && !held_) ReadMore();
}

// One read: false when there is nothing more to read now (or the
// connection ended).
bool Session::ReceiveSome() {
  const Received got =
      ReceiveWithFds(socket_.native_handle(), read_buffer_.data(), read_buffer_.size(),
                     &received_fds_);
  if (got.bytes < 0 && got.error == EINTR) return true;
  if (got.bytes < 0 && (got.error == EAGAIN || got.error == EWOULDBLOCK)) return false;
  if (got.bytes <= 0) {
    // 0 is the client hanging up.
    if (got.bytes < 0) {
      log::Info("connection error: connection " + std::to_string(id_) + ": " +
                std::strerror(got.error));
    }
    Close();
    return false;
  }
  if (got.fds_truncated || received_fds_.size() > kMaxFdsPerRead) {
    SendError(nullptr, "bad_frame",
              "more than " + std::to_string(kMaxFdsPerRead) +
                  " file descriptors were sent without frames that take them",
              /*fatal=*/true);
    return false;
  }
  Consume(read_buffer_.data(), static_cast<std::size_t>(got.bytes));
  return static_cast<std::size_t>(got.bytes) == read_buffer_.size();
}

void Session::Consume(const char* data, std::size_t size) {
  std::size_t offset = 0;
  while (offset < size && !closing_ && !held_) {
    std::size_t used = 0;
    auto result = decoder_.Feed(data + offset, size - offset, &used);
    offset += used;
    deadlines_.NoteBytes(result == proto::FrameDecoder::Result::kFrame);
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
  if (held_ && offset < size) unread_.insert(unread_.end(), data + offset, data + size);
}

// Flow control: the run waits, and so does everything this client sent
// after it (requests of one connection are taken in order).
void Session::Hold(proto::Frame frame) {
  held_ = std::move(frame);
  context_.gate->Wait(shared_from_this());
}

bool Session::QueueHasRoom() const {
  return context_.pool->QueueDepth() < context_.connection_limits.max_queue_depth;
}

void Session::ResumeHeld() {
  if (!held_ || closed_) return;
  proto::Frame frame = std::move(*held_);
  held_.reset();
  Dispatch(frame);
  if (held_ || closing_ || closed_) return;  // no room again: back in line
  std::vector<char> rest = std::move(unread_);
  unread_.clear();
  Consume(rest.data(), rest.size());
  if (!held_ && !closing_ && !closed_) ReadMore();
}

// One small handler per message type, grouped by family in the
// *_requests files; PROTOCOL.md has every field.
void Session::Dispatch(Frame& frame) {
  using Handler = void (*)(Session&, Frame&);
  static const std::unordered_map<std::string, Handler> kHandlers = {
      {"hello", [](Session& s, Frame& f) { s.OnHello(f); }},
      {"status", [](Session& s, Frame& f) { s.OnStatus(f); }},
      {"ping", [](Session& s, Frame& f) { s.OnPing(f); }},
      {"run", [](Session& s, Frame& f) { s.jobs_.OnRun(f); }},
      {"cancel", [](Session& s, Frame& f) { s.jobs_.OnCancel(f); }},
      {"define", [](Session& s, Frame& f) { s.jobs_.OnDefine(f); }},
      {"lease", [](Session& s, Frame& f) { s.leases_.OnLease(f); }},
      {"release", [](Session& s, Frame& f) { s.leases_.OnRelease(f); }},
      {"queue_create", [](Session& s, Frame& f) { s.queues_.OnCreate(f); }},
      {"queue_open", [](Session& s, Frame& f) { s.queues_.OnOpen(f); }},
      {"queue_put", [](Session& s, Frame& f) { s.queues_.OnPut(f); }},
      {"queue_get", [](Session& s, Frame& f) { s.queues_.OnGet(f); }},
      {"queue_delete", [](Session& s, Frame& f) { s.queues_.OnDelete(f); }},
      {"queue_info", [](Session& s, Frame& f) { s.queues_.OnInfo(f); }},
      {"queue_cancel", [](Session& s, Frame& f) { s.queues_.OnCancel(f); }},
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
  if (type == "run" && !jobs_.HasRoom(frame.header)) {
    Hold(std::move(frame));
    return;
  }
  auto it = kHandlers.find(type);
  if (it == kHandlers.end()) {
    SendError(frame.header["id"], "unknown_type", "unknown request type \"" + type + "\"");
    return;
  }
  it->second(*this, frame);
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
  const ConnectionLimits& connection = context_.connection_limits;
  const QueueLimits& queues = context_.queues->limits();
  Send({{"type", "hello"},
        {"id", frame.header["id"]},
        {"protocol", kProtocolVersion},
        {"daemon_version", kDaemonVersion},
        {"pid", context_.info.pid},
        {"sys_path", context_.sys_path},
        {"python", context_.info.python_version},
        {"python_hexversion", context_.info.python_hexversion},
        {"workers", context_.workers},
        {"lanes", {"interpreter", "process"}},
        {"process_workers", context_.process_workers},
        {"process_modules", context_.process_modules},
        {"limits",
         {{"max_frame_bytes", context_.limits.max_frame_bytes},
          {"max_header_bytes", context_.limits.max_header_bytes},
          {"buffer_size", context_.buffer_size},
          {"max_interpreters", context_.pool->Snapshot().max_interpreters},
          {"max_definitions", context_.max_definitions},
          {"cancel_grace_seconds", context_.cancel_grace_seconds},
          {"max_connections", connection.max_connections},
          {"max_jobs_per_connection", connection.max_jobs_per_connection},
          {"max_queue_depth", connection.max_queue_depth},
          {"frame_deadline_seconds", connection.frame_deadline_seconds},
          {"idle_timeout_seconds", connection.idle_timeout_seconds},
          {"max_output_buffer", connection.max_output_buffer},
          {"max_queues", queues.max_queues},
          {"max_queue_items", queues.max_items},
          {"max_queue_bytes", queues.max_bytes},
          {"max_process_workers", context_.max_process_workers}}}});
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

UniqueFd Session::TakeReceivedFd() {
  if (received_fds_.empty()) return UniqueFd();
  UniqueFd fd = std::move(received_fds_.front());
  received_fds_.pop_front();
  return fd;
}

bool Session::Busy(Clock::time_point* last_done) {
  // A put or get blocked on a queue is a request in flight, like a job;
  // so is a run waiting for room.
  const bool jobs = jobs_.InFlight(last_done);
  return jobs || held_.has_value() || context_.queues->IsWaiting(id_);
}

void Session::CloseWhenFlushed() {
  if (closed_) return;
  closing_ = true;
  if (writer_.FlushedOrCloseLater()) Close();
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  closing_ = true;
  deadlines_.Cancel();
  jobs_.Close();  // first: a lease's queued jobs must see they are abandoned
  leases_.Close();
  if (result_region_ != nullptr) result_region_->Close();
  queues_.Close();
  held_.reset();
  unread_.clear();
  writer_.CloseSocket();
  log::Info("connection closed: connection " + std::to_string(id_));
  context_.sessions->Remove(shared_from_this());
  jobs_.TrimIfLarge();
}

}  // namespace ei
