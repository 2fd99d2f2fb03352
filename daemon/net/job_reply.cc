#include "daemon/net/job_reply.h"

#include "daemon/base/log.h"

namespace ei {
namespace {

using Json = nlohmann::json;
using Count = JobReplyFrame::Count;

// Cuts Python error text down to `max` bytes, keeping the start (a message)
// or the end (a traceback's last frames and its exception line). A reply's
// header must stay under the client's max_header_bytes: a KeyError of a
// huge key has to fail its job, not the client's whole connection.
std::string Clip(const std::string& text, std::size_t max, bool keep_end) {
  if (text.size() <= max) return text;
  const std::string cut = "[... " + std::to_string(text.size() - max) + " bytes cut ...]";
  if (keep_end) return cut + text.substr(text.size() - max);
  return text.substr(0, max) + cut;
}

bool FitsInFrame(const Json& header, std::size_t payload_size, const proto::Limits& limits) {
  const std::uint64_t head = proto::EncodeHead(header, payload_size).size();
  return head + payload_size <= limits.max_frame_bytes;
}

// Whether a plain result reply's frame fits: its header, without "fd" and
// "oob", is well under 128 bytes, so only a payload near the limit needs
// the exact (encoding) check.
bool ResultFits(const Json& header, std::size_t payload_size, const proto::Limits& limits) {
  constexpr std::size_t kPlainResultHead = 16 + 128;
  if (payload_size <= limits.max_frame_bytes &&
      limits.max_frame_bytes - payload_size >= kPlainResultHead) {
    return true;
  }
  return FitsInFrame(header, payload_size, limits);
}

JobReplyFrame Error(const Json& id, std::string_view code, std::string message,
                    const PyErrorInfo* exception = nullptr, Count count = Count::kFailed) {
  return {ErrorHeader(id, code, std::move(message), false, exception), {}, UniqueFd(), count};
}

// "process worker 2 (pid 4711)", for a job of the process lane.
std::string ProcessWorker(const JobReply& reply) {
  return "process worker " + std::to_string(reply.process_worker) + " (pid " +
         std::to_string(reply.pid) + ")";
}

// " in interpreter 3", or " in process worker 2 (pid 4711)".
std::string Where(const JobReply& reply) {
  if (reply.process_worker > 0) return " in " + ProcessWorker(reply);
  return " in interpreter " + std::to_string(reply.interpreter_id);
}

// A job told to stop, which ended one way or another.
JobReplyFrame Stopped(const Json& id, const std::string& job, const JobReply& reply) {
  const bool cancelled = reply.disposition == JobReply::Disposition::kCancelled;
  std::string message = job + (cancelled ? " was cancelled" : " ran past its timeout");
  if (reply.given_up && reply.process_worker > 0) {
    message += "; it did not stop within the grace period, so its " + ProcessWorker(reply) +
               " was killed and replaced";
  } else if (reply.given_up) {
    message += "; it did not stop within the grace period, so its interpreter " +
               std::to_string(reply.interpreter_id) + " was retired and replaced";
  } else if (reply.interpreter_id < 0 && reply.process_worker == 0) {
    message += " before it started";
  }
  // Where the job was when it stopped, if it raised on its way out.
  const bool raised = reply.disposition != JobReply::Disposition::kRan &&
                      !reply.outcome.error.type.empty();
  return Error(id, cancelled ? "cancelled" : "timeout", std::move(message),
               raised ? &reply.outcome.error : nullptr,
               cancelled ? Count::kCancelled : Count::kTimedOut);
}

// A job that returned: its pickled result, and its large buffers' memfd.
// The most common reply of all: it builds no text unless it fails.
JobReplyFrame Returned(const Json& id, const JobReply& reply, JobOutcome& out,
                       const proto::Limits& limits) {
  Json header = {{"type", "result"}, {"id", id}, {"status", "ok"}};
  std::uint64_t out_of_band = 0;
  for (std::size_t n : out.result_out_of_band) out_of_band += n;
  if (out.result_fd) {
    header["fd"] = true;
    header["oob"] = out.result_out_of_band;
  }
  const bool fits = out.result_fd ? FitsInFrame(header, out.payload.size(), limits)
                                  : ResultFits(header, out.payload.size(), limits);
  if (!fits || out_of_band > limits.max_frame_bytes) {
    const std::string job = "job " + std::to_string(id.get<std::uint64_t>()) + Where(reply);
    return Error(id, "result_too_large",
                 "the result of " + job + " is " +
                     std::to_string(out.payload.size() + out_of_band) +
                     " bytes pickled, more than a frame may carry (max_frame_bytes " +
                     std::to_string(limits.max_frame_bytes) + ")");
  }
  return {std::move(header), std::move(out.payload), std::move(out.result_fd), Count::kCompleted};
}

// A job that raised: the exception as data, and pickled when it fits.
JobReplyFrame Raised(const Json& id, JobOutcome& out, const proto::Limits& limits) {
  Json header = {{"type", "result"},
                 {"id", id},
                 {"status", "raised"},
                 {"exception",
                  {{"type", out.error.type},
                   {"message", out.error.message},
                   {"traceback", out.error.traceback}}}};
  // An exception too big to send pickled still arrives as data: the client
  // raises RemoteError from the header, as for an unpicklable one.
  if (!FitsInFrame(header, out.payload.size(), limits)) out.payload.clear();
  return {std::move(header), std::move(out.payload), UniqueFd(), Count::kFailed};
}

}  // namespace

Json ErrorHeader(const Json& request_id, std::string_view code, std::string message, bool fatal,
                 const PyErrorInfo* exception) {
  Json header = {{"type", "error"},
                 {"id", request_id},
                 {"code", code},
                 {"fatal", fatal},
                 {"message", std::move(message)}};
  if (exception != nullptr) {
    header["exception"] = {{"type", exception->type},
                           {"message", exception->message},
                           {"traceback", exception->traceback}};
  }
  return header;
}

JobReplyFrame MakeJobReply(std::uint64_t request_id, JobReply reply, const proto::Limits& limits) {
  const Json id = request_id;
  if (reply.disposition == JobReply::Disposition::kRan &&
      reply.outcome.kind == JobOutcome::Kind::kOk) {
    return Returned(id, reply, reply.outcome, limits);
  }
  const std::string job = "job " + std::to_string(request_id);
  const std::string where = Where(reply);
  switch (reply.disposition) {
    case JobReply::Disposition::kRan: break;
    case JobReply::Disposition::kShuttingDown:
      return Error(id, "shutting_down", job + " was not run: the daemon is shutting down");
    case JobReply::Disposition::kLeaseLost:
      return Error(id, "lease_lost", job + " was not run: its lease's interpreter was retired");
    case JobReply::Disposition::kCancelled:
    case JobReply::Disposition::kTimedOut:
      return Stopped(id, job, reply);
    case JobReply::Disposition::kWorkerCrashed:
      return Error(id, "worker_crashed",
                   ProcessWorker(reply) + " " + reply.crash + " while running " + job +
                       "; a fresh worker takes its place");
  }
  JobOutcome& out = reply.outcome;
  // The header carries the type, the message (twice in error replies) and
  // the traceback; together they stay under half of max_header_bytes.
  const std::size_t text_limit = limits.max_header_bytes / 8;
  out.error.type = Clip(out.error.type, text_limit, /*keep_end=*/false);
  out.error.message = Clip(out.error.message, text_limit, /*keep_end=*/false);
  out.error.traceback = Clip(out.error.traceback, text_limit, /*keep_end=*/true);
  const std::string why = out.error.message + " (" + out.error.type + ")";
  switch (out.kind) {
    case JobOutcome::Kind::kOk:  // taken above already; kept for the switch's sake
      return Returned(id, reply, out, limits);
    case JobOutcome::Kind::kRaised:
      return Raised(id, out, limits);
    case JobOutcome::Kind::kLoadFailed:
      return Error(id, "job_load_failed", "cannot unpickle " + job + where + ": " + why,
                   &out.error);
    case JobOutcome::Kind::kResultNotPicklable:
      return Error(id, "result_not_picklable",
                   "the result of " + job + where + " cannot be pickled: " + why, &out.error);
    case JobOutcome::Kind::kInternal:
      log::Error("job failed inside the daemon: " + job + where + ": " + why);
      return Error(id, "internal", job + " failed inside the daemon" + where + ": " + why,
                   &out.error);
  }
  return Error(id, "internal", job + ": unknown outcome");
}

}  // namespace ei
