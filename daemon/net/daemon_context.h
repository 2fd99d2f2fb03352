// What every session shares: the daemon's facts and limits, and the parts
// of the daemon a connection uses. Lives as long as the server.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "daemon/core/job_totals.h"
#include "daemon/core/scheduler.h"
#include "daemon/net/latency_recorder.h"
#include "daemon/net/memory_trimmer.h"
#include "daemon/net/status_report.h"
#include "daemon/queues/queue_store.h"
#include "proto/frame_codec.h"

namespace ei {

class FlowGate;
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

struct DaemonContext {
  DaemonInfo info;
  std::vector<std::string> sys_path;  // the interpreters' sys.path (hello)
  proto::Limits limits;
  std::size_t buffer_size = 0;
  int workers = 0;
  int process_workers = 0;
  int max_process_workers = 0;
  std::vector<std::string> process_modules;  // --process-modules (hello)
  int max_definitions = 4096;
  double cancel_grace_seconds = 5;
  ConnectionLimits connection_limits;
  Scheduler* pool = nullptr;
  JobTotals* totals = nullptr;
  LatencyRecorder* latency = nullptr;
  SessionManager* sessions = nullptr;
  QueueStore* queues = nullptr;  // I/O thread only
  MemoryTrimmer* trimmer = nullptr;
  FlowGate* gate = nullptr;  // connections waiting for room (flow control)
  bool stopping = false;  // set on the I/O thread when shutdown starts
  bool queue_full_logged = false;  // I/O thread: max_queue_depth was hit, logged once
};

}  // namespace ei
