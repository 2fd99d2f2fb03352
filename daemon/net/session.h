// One client connection: reads frames, hands each request to the handler of
// its family, and writes replies in order of completion.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/local/stream_protocol.hpp>
#include <nlohmann/json.hpp>

#include "daemon/base/job_outcome.h"
#include "daemon/base/unique_fd.h"
#include "daemon/net/daemon_context.h"
#include "daemon/net/deadlines.h"
#include "daemon/net/frame_writer.h"
#include "daemon/net/job_requests.h"
#include "daemon/net/lease_requests.h"
#include "daemon/net/queue_requests.h"
#include "daemon/net/result_region.h"
#include "proto/frame_codec.h"

namespace ei {

/// The connection itself (reading, the handshake, the handler table,
/// closing) and what its request handlers use of it. Lives while the
/// manager holds it, or a job, timer or wait of it is still out.
class Session : public std::enable_shared_from_this<Session> {
 public:
  using Socket = boost::asio::local::stream_protocol::socket;
  using Clock = std::chrono::steady_clock;

  Session(Socket socket, DaemonContext& context, std::uint64_t connection_id);

  /// Starts reading. Call once, after the manager holds the session.
  void Start();

  /// Closes at once: queued jobs are dropped, running ones finish unheard,
  /// leases end.
  void Close();

  /// Closes after every reply already queued has been written.
  void CloseWhenFlushed();

  // For the request handlers (net/*_requests.*).

  /// Queues a frame. Any thread: interpreter threads answer their jobs
  /// directly, without a hop through the I/O thread.
  void Send(const nlohmann::json& header, std::vector<char> payload = {}, UniqueFd fd = UniqueFd()) {
    writer_.Send(header, std::move(payload), std::move(fd));
  }
  /// An `error` reply; a fatal one closes the connection once it is written.
  void SendError(const nlohmann::json& request_id, std::string_view code, std::string message,
                 bool fatal = false, const PyErrorInfo* exception = nullptr);

  std::uint64_t id() const { return id_; }
  DaemonContext& context() { return context_; }
  Socket::executor_type executor() { return socket_.get_executor(); }
  /// The I/O thread's view: Close has run.
  bool closed() const { return closed_; }
  /// No more reads: closing once every reply is written (or Close ran).
  bool closing() const { return closing_; }
  /// The client takes descriptors with its replies (hello "fds").
  bool takes_fds() const { return takes_fds_; }
  /// The connection's reused result file (hello "regions"), or nullptr.
  /// Set by the first hello, before any job, and never again.
  const std::shared_ptr<ResultRegion>& result_region() const { return result_region_; }
  /// The oldest descriptor received and not yet taken, or an empty one.
  UniqueFd TakeReceivedFd();
  /// Whether a job or a queue wait is in flight, or a run waits for room;
  /// `*last_done` is when the last job ended.
  bool Busy(Clock::time_point* last_done);

  // Flow control (net/flow_gate.h), I/O thread.

  /// Whether the daemon's queue has room for another job.
  bool QueueHasRoom() const;
  /// There may be room: the held run goes in (or waits again), then the
  /// rest of what was read, then reading goes on.
  void ResumeHeld();

 private:
  void ReadMore();
  void OnReadable(const boost::system::error_code& error);
  bool ReceiveSome();
  void Consume(const char* data, std::size_t size);
  void Hold(proto::Frame frame);
  void Dispatch(proto::Frame& frame);
  void OnHello(proto::Frame& frame);
  void OnStatus(proto::Frame& frame);
  void OnPing(proto::Frame& frame);

  Socket socket_;
  DaemonContext& context_;
  const std::uint64_t id_;
  proto::FrameDecoder decoder_;
  std::array<char, 64 * 1024> read_buffer_;
  std::deque<UniqueFd> received_fds_;  // SCM_RIGHTS, in arrival order
  bool greeted_ = false;
  bool takes_fds_ = false;
  std::shared_ptr<ResultRegion> result_region_;
  // A run that found no room, and what was read after it (not decoded):
  // nothing more is read until the run goes in.
  std::optional<proto::Frame> held_;
  std::vector<char> unread_;
  bool closing_ = false;  // no more reads; close once every reply is written
  bool closed_ = false;   // I/O thread's view; writers check the writer's own flag

  FrameWriter writer_;
  Deadlines deadlines_;
  LeaseRequests leases_;
  JobRequests jobs_;
  QueueRequests queues_;
};

}  // namespace ei
