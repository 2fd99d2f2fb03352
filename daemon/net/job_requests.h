// run, cancel and define: a connection's jobs, from request to reply
// (PROTOCOL.md, "Jobs" and "Large data").
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/mapped_file.h"
#include "daemon/core/job.h"
#include "daemon/net/job_reply.h"
#include "proto/frame_codec.h"

namespace ei {

class LeaseRequests;
class Session;

/// Handlers run on the I/O thread; a job's reply and output arrive on the
/// thread that answers it (an interpreter's, the watchdog's), which writes
/// them itself.
class JobRequests {
 public:
  using Clock = std::chrono::steady_clock;

  JobRequests(Session& session, LeaseRequests& leases) : session_(session), leases_(leases) {}
  JobRequests(const JobRequests&) = delete;
  JobRequests& operator=(const JobRequests&) = delete;

  void OnRun(proto::Frame& frame);

  /// Whether a run (its header) may go in now: false when it must wait
  /// for room (the daemon's queue is full, or this connection has its
  /// window of jobs in flight) and it did not ask to be refused instead
  /// ("wait": false). I/O thread.
  bool HasRoom(const nlohmann::json& header);
  void OnCancel(proto::Frame& frame);
  void OnDefine(proto::Frame& frame);

  /// Whether a job is in flight; `*last_done` is when the last one ended.
  /// Any thread.
  bool InFlight(Clock::time_point* last_done);

  /// The connection closed: its queued jobs are dropped unrun, running
  /// ones finish unheard; definitions and mappings go.
  void Close();

  /// After Close: memory kept warm for this client's large transfers goes
  /// back now (its jobs still running trim again when they end).
  void TrimIfLarge();

 private:
  bool TakeOutOfBand(const nlohmann::json& header, Job* job);
  bool ReadLane(const nlohmann::json& header, Job* job);
  bool ReadRunOptions(const nlohmann::json& header,
                      std::optional<JobControl::Clock::time_point>* deadline,
                      std::vector<Definition>* definitions);
  bool Admit(const nlohmann::json& id);
  void Wire(std::uint64_t request_id, std::optional<JobControl::Clock::time_point> deadline,
            bool output, bool large, Job* job);
  bool Queue(const nlohmann::json& id, const nlohmann::json& lease, std::uint64_t request_id,
             Job& job);
  void OnDone(std::uint64_t request_id, Clock::time_point received, bool large, JobReply reply);
  void SettleRegion(bool lent, bool pinned, JobReplyFrame* frame);
  void Count(JobReplyFrame::Count count);
  void NoteLarge();

  Session& session_;
  LeaseRequests& leases_;
  // The client's reused argument files, mapped (I/O thread only).
  MappedFileCache argument_maps_;
  // Functions defined on this connection, by digest (I/O thread only).
  std::unordered_map<std::string, std::shared_ptr<const std::vector<char>>> definitions_;
  std::size_t definition_bytes_ = 0;
  // Large data moved on this connection: its memory is trimmed when it closes.
  std::atomic<bool> moved_large_{false};
  // Set when the connection closes: its queued jobs are dropped unrun.
  const std::shared_ptr<std::atomic<bool>> abandoned_ = std::make_shared<std::atomic<bool>>(false);

  // Jobs waiting for their reply, so a cancel can find them. Answering
  // threads erase them.
  std::mutex mu_;
  std::unordered_map<std::uint64_t, std::shared_ptr<JobControl>> jobs_;  // guarded by mu_
  Clock::time_point last_job_done_ = Clock::now();                        // guarded by mu_
};

}  // namespace ei
