// The status document (proto/PROTOCOL.md, "status"), built from snapshots.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/core/job_totals.h"
#include "daemon/core/scheduler.h"
#include "daemon/net/latency_recorder.h"

namespace ei {

/// Facts about the daemon process that status and hello report.
struct DaemonInfo {
  std::string socket;
  long pid = 0;
  std::string python_version;
  long python_hexversion = 0;
  std::chrono::steady_clock::time_point started;
};

nlohmann::json BuildStatus(const DaemonInfo& info, const PoolSnapshot& pool,
                           const JobTotals& totals, const LatencyRecorder::Summary& latency,
                           std::size_t connections, bool stopping,
                           const nlohmann::json& queues);

}  // namespace ei
