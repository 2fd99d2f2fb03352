// The human form of the status document, for extrainterpretersctl.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace ei::ctl {

/// A short aligned table. Tolerates missing keys (shown as "-").
std::string FormatStatus(const nlohmann::json& status);

/// The status document's queues as a table: id, name or owner, size,
/// maxsize, bytes, waiters; and how many were left out.
std::string FormatQueues(const nlohmann::json& status);

/// "45s", "5m 32s", "3h 02m", "2d 04h".
std::string FormatDuration(double seconds);

}  // namespace ei::ctl
