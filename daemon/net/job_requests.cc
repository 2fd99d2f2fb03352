#include "daemon/net/job_requests.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "daemon/base/log.h"
#include "daemon/net/flow_gate.h"
#include "daemon/net/lease_requests.h"
#include "daemon/net/memory_trimmer.h"
#include "daemon/net/session.h"

namespace ei {

using Json = nlohmann::json;
using proto::Frame;

namespace {

bool IsDigest(const Json& value) {
  if (!value.is_string()) return false;
  const std::string& text = value.get_ref<const std::string&>();
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

// {"type": "run", "id": 7, "lease": 3, "timeout": 2.5, "output": true,
//  "uses": ["<digest>"]} + pickle of (fn, args, kwargs)
void JobRequests::OnRun(Frame& frame) {
  const Json& id = frame.header["id"];
  const Json lease = frame.header.value("lease", Json(nullptr));
  // First of all, so that a refused run never leaves its descriptor for the
  // next frame.
  Job job;
  if (!TakeOutOfBand(frame.header, &job)) return;
  if (frame.payload.empty()) {
    session_.SendError(id, "bad_request",
                       "a run request needs a payload: pickle.dumps((fn, args, kwargs), "
                       "protocol=5)");
    return;
  }
  if (!lease.is_null() && !lease.is_number_unsigned()) {
    session_.SendError(id, "bad_request",
                       "\"lease\" must be an unsigned integer, not " + lease.dump());
    return;
  }
  if (!lease.is_null() && !leases_.Holds(lease.get<std::uint64_t>())) {
    session_.SendError(id, "unknown_lease",
                       "lease " + lease.dump() + " is not held by this connection");
    return;
  }
  if (session_.context().stopping) {
    session_.SendError(id, "shutting_down",
                       "job " + id.dump() + " was not run: the daemon is shutting down");
    return;
  }
  std::optional<JobControl::Clock::time_point> deadline;
  if (!Admit(id)) return;
  if (!ReadRunOptions(frame.header, &deadline, &job.definitions)) return;
  if (!ReadLane(frame.header, &job)) return;
  job.payload = std::move(frame.payload);
  job.share_result = session_.takes_fds();
  job.connection = session_.id();
  if (session_.result_region() != nullptr) {
    job.lend_result = [region = session_.result_region()](std::size_t size, int* fd) {
      return region->Lend(size, fd);
    };
  }
  const bool large = job.out_of_band_fd || job.payload.size() >= MemoryTrimmer::kLargeBytes;
  if (large) NoteLarge();
  const std::uint64_t request_id = id.get<std::uint64_t>();
  Wire(request_id, deadline, frame.header.value("output", false) == true, large, &job);
  if (Queue(id, lease, request_id, job)) ++session_.context().totals->submitted;
}

// Queues a wired job on the pool or on its lease; on a lease that has
// ended, answers and returns false.
bool JobRequests::Queue(const Json& id, const Json& lease, std::uint64_t request_id, Job& job) {
  {
    // Before the job is queued: its reply may come at once, from another
    // thread, and must find it here to take it out again.
    std::lock_guard lock(mu_);
    jobs_[request_id] = job.control;
  }
  Scheduler& scheduler = *session_.context().pool;
  if (lease.is_null()) {
    scheduler.Submit(std::move(job));
    return true;
  }
  const auto queued = scheduler.SubmitToLease(lease.get<std::uint64_t>(), job);
  if (queued == Scheduler::LeaseSubmit::kQueued) return true;
  {
    std::lock_guard lock(mu_);
    jobs_.erase(request_id);
  }
  if (queued == Scheduler::LeaseSubmit::kLost) {
    leases_.Forget(lease.get<std::uint64_t>());
    session_.SendError(id, "lease_lost",
                       "lease " + lease.dump() +
                           " has ended: its interpreter was retired after a stopped job did "
                           "not end");
  } else {
    session_.SendError(id, "unknown_lease", "lease " + lease.dump() + " has ended");
  }
  return false;
}

bool JobRequests::HasRoom(const Json& header) {
  if (header.value("wait", true) != true) return true;  // Admit refuses it if full
  const ConnectionLimits& limits = session_.context().connection_limits;
  {
    std::lock_guard lock(mu_);
    if (jobs_.size() >= limits.max_jobs_per_connection) return false;
  }
  return session_.context().pool->QueueDepth() < limits.max_queue_depth;
}

// Refuses a run past max_jobs_per_connection or max_queue_depth with a
// busy error, when it asked not to wait ("wait": false; others wait for
// room: HasRoom). I/O thread: the only one that queues jobs, so the queue
// cannot grow past the limit between this check and the submit.
bool JobRequests::Admit(const Json& id) {
  DaemonContext& context = session_.context();
  const ConnectionLimits& limits = context.connection_limits;
  std::size_t in_flight = 0;
  {
    std::lock_guard lock(mu_);
    in_flight = jobs_.size();
  }
  if (in_flight >= limits.max_jobs_per_connection) {
    session_.SendError(id, "busy",
                       "job " + id.dump() + " was not run: connection " +
                           std::to_string(session_.id()) + " has " + std::to_string(in_flight) +
                           " jobs in flight (max_jobs_per_connection)");
    return false;
  }
  if (const std::size_t depth = context.pool->QueueDepth(); depth >= limits.max_queue_depth) {
    // Once per episode: a client retrying in a loop must not flood the log.
    if (!std::exchange(context.queue_full_logged, true)) {
      log::Warning("queue full: job " + id.dump() + " of connection " +
                   std::to_string(session_.id()) + " refused with busy: " +
                   std::to_string(depth) +
                   " jobs queued (max_queue_depth); refusing jobs until it drains");
    }
    session_.SendError(id, "busy", "job " + id.dump() + " was not run: " +
                                       std::to_string(depth) +
                                       " jobs are queued in the daemon (max_queue_depth)");
    return false;
  }
  context.queue_full_logged = false;
  return true;
}

// Takes the descriptor and buffer lengths of a run with out-of-band data
// (PROTOCOL.md, "Large data"); on a bad one, answers and returns false.
bool JobRequests::TakeOutOfBand(const Json& header, Job* job) {
  if (header.value("fd", false) != true) return true;
  const Json& id = header.at("id");
  job->out_of_band_fd = session_.TakeReceivedFd();
  if (!job->out_of_band_fd) {
    session_.SendError(id, "bad_request", "job " + id.dump() + " says \"fd\": true, but no file "
                                          "descriptor came with it");
    return false;
  }
  const Json lengths = header.value("oob", Json::array());
  std::uint64_t total = 0;
  for (const Json& n : lengths) {
    if (!n.is_number_unsigned()) {
      session_.SendError(id, "bad_request",
                         "\"oob\" must list buffer lengths, not " + lengths.dump());
      return false;
    }
    total += n.get<std::uint64_t>();
    job->out_of_band_lengths.push_back(n.get<std::size_t>());
  }
  struct stat st {};
  if (!lengths.is_array() || ::fstat(job->out_of_band_fd.get(), &st) != 0 ||
      static_cast<std::uint64_t>(st.st_size) < total ||
      total > session_.context().limits.max_frame_bytes) {
    session_.SendError(id, "bad_request",
                       "job " + id.dump() + "'s out-of-band buffers (" + std::to_string(total) +
                           " bytes) do not fit the file sent with it, or pass max_frame_bytes");
    return false;
  }
  if (header.value("region", false) == true) {
    // A reused file of the client's: mapped once for this connection (again
    // when it has grown, or when a job kept a view of the old mapping).
    job->out_of_band_map = argument_maps_.Get(job->out_of_band_fd.get(), st.st_dev, st.st_ino,
                                              static_cast<std::size_t>(st.st_size));
  }
  return true;
}

// Reads `lane` and `rerun`; on a bad one, answers and returns false.
bool JobRequests::ReadLane(const Json& header, Job* job) {
  const Json& id = header.at("id");
  const Json lane = header.value("lane", Json("auto"));
  if (lane == "auto") {
    job->lane = Lane::kAuto;
  } else if (lane == "interpreter") {
    job->lane = Lane::kInterpreter;
  } else if (lane == "process") {
    job->lane = Lane::kProcess;
  } else {
    session_.SendError(id, "bad_request",
                       "\"lane\" must be \"auto\", \"interpreter\" or \"process\", not " +
                           lane.dump());
    return false;
  }
  const Json rerun = header.value("rerun", Json(true));
  if (!rerun.is_boolean()) {
    session_.SendError(id, "bad_request", "\"rerun\" must be true or false, not " + rerun.dump());
    return false;
  }
  job->rerun = rerun.get<bool>();
  return true;
}

// Reads `timeout` and `uses`; on a bad one, answers and returns false.
bool JobRequests::ReadRunOptions(const Json& header,
                                 std::optional<JobControl::Clock::time_point>* deadline,
                                 std::vector<Definition>* definitions) {
  const Json& id = header.at("id");
  if (const Json timeout = header.value("timeout", Json(nullptr)); !timeout.is_null()) {
    if (!timeout.is_number() || !(timeout.get<double>() > 0) || timeout.get<double>() > 1e9) {
      session_.SendError(id, "bad_request",
                         "\"timeout\" must be a positive number of seconds, not " +
                             timeout.dump());
      return false;
    }
    *deadline = JobControl::Clock::now() +
                std::chrono::duration_cast<JobControl::Clock::duration>(
                    std::chrono::duration<double>(timeout.get<double>()));
  }
  const Json uses = header.value("uses", Json::array());
  if (!uses.is_array()) {
    session_.SendError(id, "bad_request", "\"uses\" must be a list of digests, not " + uses.dump());
    return false;
  }
  for (const Json& digest : uses) {
    auto it = digest.is_string() ? definitions_.find(digest.get<std::string>()) : definitions_.end();
    if (it == definitions_.end()) {
      session_.SendError(id, "unknown_definition",
                         "job " + id.dump() + " uses definition " + digest.dump() +
                             ", which was not defined on this connection");
      return false;
    }
    definitions->emplace_back(it->first, it->second);
  }
  return true;
}

// Wires a job's answer and output back to this connection.
void JobRequests::Wire(std::uint64_t request_id,
                       std::optional<JobControl::Clock::time_point> deadline, bool output,
                       bool large, Job* job) {
  job->abandoned = abandoned_;
  // Called on the thread that answers the job, which writes the reply.
  auto on_done = [this, self = session_.shared_from_this(), request_id, large,
                  received = Clock::now()](JobReply reply) {
    OnDone(request_id, received, large, std::move(reply));
  };
  job->control = std::make_shared<JobControl>(std::move(on_done), deadline);
  if (output) {
    job->on_output = [self = session_.shared_from_this(), request_id](std::string_view stream,
                                                                     std::string_view text) {
      self->Send({{"type", "output"}, {"id", request_id}, {"stream", stream}, {"data", text}});
    };
  }
}

// Any thread: the answering interpreter, the watchdog, or the I/O thread.
void JobRequests::OnDone(std::uint64_t request_id, Clock::time_point received, bool large,
                         JobReply reply) {
  {
    std::lock_guard lock(mu_);
    jobs_.erase(request_id);
    last_job_done_ = Clock::now();
  }
  DaemonContext& context = session_.context();
  if (context.gate != nullptr) context.gate->Wake();  // room for a waiting run
  context.latency->Record(Clock::now() - received);
  const JobOutcome& outcome = reply.outcome;
  const bool out_of_band_done = outcome.out_of_band_done;
  const bool lent = outcome.result_lent, pinned = outcome.result_space_pinned;
  JobReplyFrame frame = MakeJobReply(request_id, std::move(reply), context.limits);
  large = large || frame.fd || frame.payload.size() >= MemoryTrimmer::kLargeBytes;
  if (abandoned_->load()) {
    // Nobody reads the reply, and nobody sends this connection a job again:
    // its memory goes back before the job counts as done.
    if (lent && !pinned) session_.result_region()->TakeBack();
    const JobReplyFrame::Count count = frame.count;
    frame = {};
    if (large && context.trimmer != nullptr) context.trimmer->TrimNow();
    Count(count);
    return;
  }
  if (out_of_band_done) frame.header["oob_done"] = true;
  SettleRegion(lent, pinned, &frame);
  Count(frame.count);
  if (large) NoteLarge();
  session_.Send(std::move(frame.header), std::move(frame.payload), std::move(frame.fd));
}

// The connection's result region, lent to the job: kept for good when a
// view of it lives on, the client's when the reply carries it, else back.
void JobRequests::SettleRegion(bool lent, bool pinned, JobReplyFrame* frame) {
  if (!lent) return;
  ResultRegion& region = *session_.result_region();
  if (pinned) {
    region.Pin();
  } else if (frame->fd) {
    region.GiveToClient();
    frame->header["region"] = true;
  } else {
    region.TakeBack();
  }
}

// Counts an answered job in the totals.
void JobRequests::Count(JobReplyFrame::Count count) {
  JobTotals& totals = *session_.context().totals;
  switch (count) {
    case JobReplyFrame::Count::kCompleted: ++totals.completed; break;
    case JobReplyFrame::Count::kFailed: ++totals.failed; break;
    case JobReplyFrame::Count::kCancelled:
      ++totals.failed;
      ++totals.cancelled;
      break;
    case JobReplyFrame::Count::kTimedOut:
      ++totals.failed;
      ++totals.timeouts;
      break;
  }
}

// Any thread: large data moved on this connection.
void JobRequests::NoteLarge() {
  moved_large_.store(true);
  if (session_.context().trimmer != nullptr) session_.context().trimmer->NoteLarge();
}

// {"type": "cancel", "id": 8, "job": 7}
void JobRequests::OnCancel(Frame& frame) {
  const Json& id = frame.header["id"];
  const Json job = frame.header.value("job", Json(nullptr));
  if (!job.is_number_unsigned()) {
    session_.SendError(id, "bad_request",
                       "cancel needs an unsigned integer \"job\", not " + job.dump());
    return;
  }
  const char* state = "unknown";
  std::shared_ptr<JobControl> control;
  {
    std::lock_guard lock(mu_);
    if (auto it = jobs_.find(job.get<std::uint64_t>()); it != jobs_.end()) control = it->second;
  }
  if (control != nullptr) {
    switch (session_.context().pool->Cancel(control)) {
      case JobControl::State::kQueued: state = "queued"; break;
      case JobControl::State::kRunning: state = "running"; break;
      case JobControl::State::kFinished: break;
    }
  }
  session_.Send({{"type", "cancel"}, {"id", id}, {"job", job}, {"state", state}});
}

// {"type": "define", "id": 6, "digest": "<sha-256 hex>"} + pickle of a function
void JobRequests::OnDefine(Frame& frame) {
  const Json& id = frame.header["id"];
  const Json digest = frame.header.value("digest", Json(nullptr));
  if (!IsDigest(digest) || frame.payload.empty()) {
    session_.SendError(id, "bad_request",
                       "define needs a \"digest\" of 64 lower-case hex digits and a payload, "
                       "not " + digest.dump());
    return;
  }
  const std::string key = digest.get<std::string>();
  const auto max_definitions = static_cast<std::size_t>(session_.context().max_definitions);
  if (!definitions_.contains(key) &&
      (definitions_.size() >= max_definitions ||
       definition_bytes_ + frame.payload.size() > session_.context().limits.max_frame_bytes)) {
    session_.SendError(id, "define_limit",
                       "connection " + std::to_string(session_.id()) + " already holds " +
                           std::to_string(definitions_.size()) + " definitions (" +
                           std::to_string(definition_bytes_) + " bytes); the limit is " +
                           std::to_string(max_definitions) +
                           " definitions and max_frame_bytes");
    return;
  }
  auto& slot = definitions_[key];
  if (slot) definition_bytes_ -= slot->size();
  definition_bytes_ += frame.payload.size();
  slot = std::make_shared<const std::vector<char>>(std::move(frame.payload));
  session_.Send({{"type", "define"}, {"id", id}, {"digest", key}});
}

bool JobRequests::InFlight(Clock::time_point* last_done) {
  std::lock_guard lock(mu_);
  *last_done = last_job_done_;
  return !jobs_.empty();
}

void JobRequests::Close() {
  abandoned_->store(true);
  {
    std::lock_guard lock(mu_);
    jobs_.clear();
  }
  definitions_.clear();
  argument_maps_.Clear();  // unmapped now, or when their running jobs end
}

void JobRequests::TrimIfLarge() {
  if (moved_large_.load() && session_.context().trimmer != nullptr) {
    session_.context().trimmer->TrimNow();
  }
}

}  // namespace ei
