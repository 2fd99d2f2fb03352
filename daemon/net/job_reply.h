// Turns how a job ended into the frame its client gets (PROTOCOL.md:
// `result` and `error`).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/core/job.h"
#include "proto/frame_codec.h"

namespace ei {

/// A reply frame to send, and how the job counts in the totals.
struct JobReplyFrame {
  enum class Count { kCompleted, kFailed, kCancelled, kTimedOut };
  nlohmann::json header;
  std::vector<char> payload;
  UniqueFd fd;  // sent with the frame (out-of-band buffers), if set
  Count count = Count::kFailed;
};

/// The reply to job `request_id`. Python error text is cut so the header
/// fits `limits`; a result too large for a frame becomes an error.
JobReplyFrame MakeJobReply(std::uint64_t request_id, JobReply reply, const proto::Limits& limits);

/// An `error` frame's header.
nlohmann::json ErrorHeader(const nlohmann::json& request_id, std::string_view code,
                           std::string message, bool fatal = false,
                           const PyErrorInfo* exception = nullptr);

}  // namespace ei
