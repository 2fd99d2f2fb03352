#include "daemon/process/job_messages.h"

#include <utility>

namespace ei {

using Json = nlohmann::json;

Json RunHeader(const RunRequest& run) {
  return {{"type", "run"},         {"id", run.id},          {"uses", run.uses},
          {"output", run.output},  {"oob", run.out_of_band}, {"fd", run.has_fd},
          {"share", run.share_result}, {"region", run.region}};
}

RunRequest ReadRunHeader(const Json& header) {
  RunRequest run;
  run.id = header.value("id", std::uint64_t{0});
  run.uses = header.value("uses", std::vector<std::string>{});
  run.output = header.value("output", false);
  run.out_of_band = header.value("oob", std::vector<std::size_t>{});
  run.has_fd = header.value("fd", false);
  run.share_result = header.value("share", false);
  run.region = header.value("region", false);
  return run;
}

Json ResultHeader(std::uint64_t id, const JobOutcome& outcome) {
  Json header = {{"type", "result"},
                 {"id", id},
                 {"kind", static_cast<int>(outcome.kind)},
                 {"threads_left", outcome.threads_left},
                 {"oob_done", outcome.out_of_band_done},
                 {"needed", outcome.needed_bytes},
                 {"fd", static_cast<bool>(outcome.result_fd)},
                 {"result_oob", outcome.result_out_of_band}};
  if (outcome.kind != JobOutcome::Kind::kOk) {
    header["error"] = {{"type", outcome.error.type},
                       {"message", outcome.error.message},
                       {"traceback", outcome.error.traceback}};
  }
  return header;
}

JobOutcome ReadResult(const Json& header, std::vector<char> payload, UniqueFd fd) {
  JobOutcome outcome;
  const int kind = header.value("kind", static_cast<int>(JobOutcome::Kind::kInternal));
  outcome.kind = kind >= 0 && kind <= static_cast<int>(JobOutcome::Kind::kInternal)
                     ? static_cast<JobOutcome::Kind>(kind)
                     : JobOutcome::Kind::kInternal;
  outcome.payload = std::move(payload);
  outcome.threads_left = header.value("threads_left", 0);
  outcome.out_of_band_done = header.value("oob_done", false);
  outcome.needed_bytes = header.value("needed", std::size_t{0});
  outcome.result_out_of_band = header.value("result_oob", std::vector<std::size_t>{});
  if (header.value("fd", false)) outcome.result_fd = std::move(fd);
  if (const Json error = header.value("error", Json(nullptr)); error.is_object()) {
    outcome.error = {error.value("type", std::string()), error.value("message", std::string()),
                     error.value("traceback", std::string())};
  }
  return outcome;
}

}  // namespace ei
