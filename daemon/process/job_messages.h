// A job as it crosses the link to a process lane worker ("define" and
// "run" frames) and how it ended, coming back ("result").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/job_outcome.h"

namespace ei {

/// What the worker needs besides the payload to run a job.
struct RunRequest {
  std::uint64_t id = 0;
  std::vector<std::string> uses;  // digests of the definitions it uses
  bool output = false;            // send what it prints
  std::vector<std::size_t> out_of_band;  // its large buffers' lengths (the fd comes along)
  bool has_fd = false;
  bool share_result = false;      // large result buffers may go back in a memfd
  bool region = false;            // the fd is a file its client reuses: worth keeping mapped
};

nlohmann::json RunHeader(const RunRequest& run);
RunRequest ReadRunHeader(const nlohmann::json& header);

/// The "result" header for `outcome` (its payload, and its result_fd, go
/// with the frame).
nlohmann::json ResultHeader(std::uint64_t id, const JobOutcome& outcome);
/// How the job ended, from a "result" frame and the descriptor with it.
JobOutcome ReadResult(const nlohmann::json& header, std::vector<char> payload, UniqueFd fd);

}  // namespace ei
