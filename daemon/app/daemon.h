// The daemon's life: what runs between parsing the config and exiting.
//
// Threads: the main thread runs the Asio I/O loop (every socket and session
// lives there and never holds a GIL); one thread per interpreter runs jobs;
// on SIGTERM/SIGINT a drain thread shuts the pool down while the I/O loop
// keeps delivering the last replies. SIGHUP reloads the config on the I/O
// loop. Under systemd, the listening socket may come from socket activation
// and the service manager hears READY/STATUS/STOPPING/WATCHDOG.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/app/config.h"
#include "daemon/app/service_notifier.h"
#include "daemon/app/systemd_notify.h"
#include "daemon/base/status.h"
#include "daemon/core/interpreter_pool.h"
#include "daemon/core/job_totals.h"
#include "daemon/net/flow_gate.h"
#include "daemon/net/latency_recorder.h"
#include "daemon/net/memory_trimmer.h"
#include "daemon/net/server.h"
#include "daemon/net/session.h"
#include "daemon/net/session_manager.h"
#include "daemon/process/process_lane.h"
#include "daemon/queues/in_job_service.h"
#include "daemon/queues/queue_store.h"
#include "daemon/routing/lane_router.h"

namespace ei {

/// Starts CPython, runs the daemon until a signal stops it (or start-up
/// fails), and ends CPython. Returns the exit status. `argv` is kept for
/// SIGHUP, which re-reads the command line's --config file.
int RunDaemon(Config config, int argc, char** argv);

/// Everything that lives while the daemon serves. Made once CPython runs;
/// gone before CPython ends. I/O thread only, but for the drain thread.
class Daemon {
 public:
  Daemon(Config config, int argc, char** argv, systemd::Notifier notifier);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  /// Listens, starts the pool and runs the I/O loop until shutdown ends it.
  /// Returns the exit status.
  int Run();

  /// Interpreters still stuck in a job when the pool shut down: if any,
  /// CPython must not be finalized.
  int stuck() const { return stuck_; }

 private:
  void RunIo();
  void LogStarting(const std::string& allowed) const;
  void AwaitStopSignal();
  void AwaitReload();
  void OnLaneReady(const char* lane, const Status& status);
  void BeginShutdown(int code, const std::string& why);
  void CloseSessions();

  Config config_;
  const int argc_;
  char** const argv_;
  const std::chrono::steady_clock::time_point start_time_ = std::chrono::steady_clock::now();
  boost::asio::io_context io_{1};
  JobTotals totals_;
  QueueStore queues_;
  InJobQueueService job_queues_{queues_};  // jobs reach the same queues
  InterpreterPool pool_;
  ProcessLane process_lane_;
  LaneRouter router_;  // what sessions submit to
  LatencyRecorder latency_;
  SessionManager sessions_;
  MemoryTrimmer trimmer_;
  FlowGate gate_{io_};
  DaemonContext context_;
  Server server_;
  ServiceNotifier service_;
  boost::asio::signal_set stop_signals_;
  boost::asio::signal_set reload_signal_;
  boost::asio::steady_timer flush_deadline_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> keep_running_;
  std::thread drainer_;
  int lanes_ready_ = 0;  // of the two lanes, how many are warm
  int exit_code_ = 0;
  int stuck_ = 0;  // written by the drain thread, read after it is joined
};

}  // namespace ei
