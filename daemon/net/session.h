// One client connection: reads frames, answers each request through a
// handler table, and writes replies in order of completion.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "daemon/base/unique_fd.h"
#include "daemon/core/job_totals.h"
#include "daemon/core/scheduler.h"
#include "daemon/net/job_reply.h"
#include "daemon/net/latency_recorder.h"
#include "daemon/net/memory_trimmer.h"
#include "daemon/net/result_region.h"
#include "daemon/net/status_report.h"
#include "daemon/queues/queue_store.h"
#include "proto/frame_codec.h"

namespace ei {

class SessionManager;

/// What one client may hold (Config's limits; PROTOCOL.md, hello).
struct ConnectionLimits {
  std::size_t max_connections = 1024;  // after fitting RLIMIT_NOFILE
  std::size_t max_jobs_per_connection = 10000;
  std::size_t max_queue_depth = 100000;
  double frame_deadline_seconds = 30;
  double idle_timeout_seconds = 0;  // 0: never
  std::size_t max_output_buffer = 64u << 20;
};

/// What every session shares. Lives as long as the server.
struct DaemonContext {
  DaemonInfo info;
  proto::Limits limits;
  std::size_t buffer_size = 0;
  int workers = 0;
  int max_definitions = 4096;
  double cancel_grace_seconds = 5;
  ConnectionLimits connection_limits;
  Scheduler* pool = nullptr;
  JobTotals* totals = nullptr;
  LatencyRecorder* latency = nullptr;
  SessionManager* sessions = nullptr;
  QueueStore* queues = nullptr;  // I/O thread only
  MemoryTrimmer* trimmer = nullptr;
  bool stopping = false;  // set on the I/O thread when shutdown starts
  bool queue_full_logged = false;  // I/O thread: max_queue_depth was hit, logged once
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  using Socket = boost::asio::local::stream_protocol::socket;

  Session(Socket socket, DaemonContext& context, std::uint64_t connection_id);

  /// Starts reading. Call once, after the manager holds the session.
  void Start();

  /// Closes at once: queued jobs are dropped, running ones finish unheard,
  /// leases end.
  void Close();

  /// Closes after every reply already queued has been written.
  void CloseWhenFlushed();

  std::uint64_t id() const { return id_; }

 private:
  using Handler = void (Session::*)(proto::Frame&);
  using Clock = std::chrono::steady_clock;

  struct OutFrame {
    std::string head;
    std::vector<char> payload;
    UniqueFd fd;           // passed with the frame's first bytes, then closed
    std::size_t sent = 0;  // bytes of head + payload already written
  };

  void ReadMore();
  void OnReadable(const boost::system::error_code& error);
  bool ReceiveSome();
  void Consume(std::size_t size);
  bool TakeOutOfBand(const nlohmann::json& header, Job* job);
  void Dispatch(proto::Frame& frame);
  void OnHello(proto::Frame& frame);
  void OnRun(proto::Frame& frame);
  void OnLease(proto::Frame& frame);
  void OnRelease(proto::Frame& frame);
  void OnStatus(proto::Frame& frame);
  void OnPing(proto::Frame& frame);
  void OnCancel(proto::Frame& frame);
  void OnDefine(proto::Frame& frame);
  // Queues (session_queues.cc), I/O thread only.
  void OnQueueCreate(proto::Frame& frame);
  void OnQueueOpen(proto::Frame& frame);
  void OnQueuePut(proto::Frame& frame);
  void OnQueueGet(proto::Frame& frame);
  void OnQueueDelete(proto::Frame& frame);
  void OnQueueInfo(proto::Frame& frame);
  void OnQueueCancel(proto::Frame& frame);
  void PutBack(const nlohmann::json& id, std::uint64_t queue, std::vector<char> item);
  void EndQueueWait(std::uint64_t request);
  void ArmQueueTimer(std::uint64_t request, QueueStore::WaiterId waiter, double seconds,
                     std::string code, std::string why);
  bool ReadRunOptions(const nlohmann::json& header,
                      std::optional<JobControl::Clock::time_point>* deadline,
                      std::vector<Definition>* definitions);
  void Wire(std::uint64_t request_id, std::optional<JobControl::Clock::time_point> deadline,
            bool output, bool large, Job* job);
  void OnJobDone(std::uint64_t request_id, Clock::time_point received, bool large,
                 JobReply reply);
  void NoteLarge();
  void Count(JobReplyFrame::Count count);
  void OnOutput(std::uint64_t request_id, std::string_view stream, std::string_view text);
  void OnLeaseGranted(std::uint64_t request_id, const LeaseGrant& grant);

  /// Queues a frame and writes what the socket takes at once. Any thread:
  /// interpreter threads answer their jobs directly, without a hop through
  /// the I/O thread.
  void Send(nlohmann::json header, std::vector<char> payload = {}, UniqueFd fd = UniqueFd());
  void SendError(const nlohmann::json& request_id, std::string_view code, std::string message,
                 bool fatal = false, const PyErrorInfo* exception = nullptr);
  void FlushLocked();
  void OnWritable(const boost::system::error_code& error);
  bool OverOutputLimitLocked(std::size_t frame_bytes);
  bool AdmitJob(const nlohmann::json& id);
  bool QueueJob(const nlohmann::json& id, const nlohmann::json& lease, std::uint64_t request_id,
                Job& job);

  // Deadlines (session_deadlines.cc): one timer for both the frame deadline
  // and the idle timeout, I/O thread only.
  void NoteBytes(bool frame_done);
  void ArmTimer(Clock::time_point due);
  void OnTimer(const boost::system::error_code& error);
  void CheckIdle(Clock::time_point now);
  void DropForDeadline(std::string_view code, const std::string& why);

  Socket socket_;
  DaemonContext& context_;
  const std::uint64_t id_;
  proto::FrameDecoder decoder_;
  std::array<char, 64 * 1024> read_buffer_;
  std::deque<UniqueFd> received_fds_;  // SCM_RIGHTS, in arrival order
  bool greeted_ = false;
  bool takes_fds_ = false;  // hello said "fds": true
  // Large results go here while it is free (hello said "regions": true).
  std::shared_ptr<ResultRegion> result_region_;
  // The client's reused argument file, mapped (I/O thread only).
  std::shared_ptr<MappedFile> argument_map_;
  bool closing_ = false;  // no more reads; close once every reply is written
  bool closed_ = false;   // I/O thread's view; writers check send_closed_
  std::set<std::uint64_t> leases_;
  boost::asio::steady_timer timer_;
  Clock::time_point timer_due_ = Clock::time_point::max();  // max: not armed
  bool in_frame_ = false;  // part of a frame has arrived
  Clock::time_point frame_started_;
  Clock::time_point last_frame_ = Clock::now();

  // The write side, shared by the I/O thread and interpreter threads.
  std::mutex send_mu_;
  std::deque<OutFrame> out_;         // guarded by send_mu_
  bool waiting_writable_ = false;    // guarded by send_mu_: the I/O thread waits for room
  bool close_when_flushed_ = false;  // guarded by send_mu_
  bool send_closed_ = false;         // guarded by send_mu_: the socket is closed
  std::size_t out_bytes_ = 0;        // guarded by send_mu_: unsent bytes in out_

  // Jobs waiting for their reply, so a cancel can find them. Interpreter
  // threads erase answered jobs.
  std::mutex jobs_mu_;
  std::unordered_map<std::uint64_t, std::shared_ptr<JobControl>> jobs_;  // guarded by jobs_mu_
  Clock::time_point last_job_done_ = Clock::now();                        // guarded by jobs_mu_
  // Functions defined on this connection, by digest.
  std::unordered_map<std::string, std::shared_ptr<const std::vector<char>>> definitions_;
  std::size_t definition_bytes_ = 0;
  // Timeouts of this connection's blocked queue puts and gets, by request
  // id. I/O thread only.
  std::unordered_map<std::uint64_t, std::unique_ptr<boost::asio::steady_timer>> queue_timers_;
  // This connection's blocked queue puts and gets, by request id, so that a
  // queue_cancel can withdraw them. I/O thread only.
  std::unordered_map<std::uint64_t, QueueStore::WaiterId> queue_waits_;
  // Large data moved on this connection: its memory is trimmed when it closes.
  std::atomic<bool> moved_large_{false};
  const std::shared_ptr<std::atomic<bool>> abandoned_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace ei
