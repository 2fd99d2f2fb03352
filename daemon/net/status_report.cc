#include "daemon/net/status_report.h"

#include <unistd.h>

#include <fstream>

#include "daemon/base/version.h"

namespace ei {
namespace {

using Json = nlohmann::json;
using State = InterpreterSnapshot::State;
using Role = InterpreterSnapshot::Role;

double SecondsSince(std::chrono::steady_clock::time_point then) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - then).count();
}

const char* StateName(State state) {
  switch (state) {
    case State::kStarting: return "starting";
    case State::kIdle: return "idle";
    case State::kBusy: return "busy";
    case State::kStopping: return "stopping";
  }
  return "starting";
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kPool: return "pool";
    case Role::kLease: return "lease";
    case Role::kSpare: return "spare";
  }
  return "pool";
}

Json WorkerJson(const InterpreterSnapshot& w) {
  return {
      {"id", w.worker_id},
      {"interpreter", w.interpreter_id},
      {"kind", RoleName(w.role)},
      {"lease", w.role == Role::kLease ? Json(w.lease_id) : Json(nullptr)},
      {"state", StateName(w.state)},
      {"jobs_done", w.jobs_done},
      {"current_job_age_seconds", w.job_started ? Json(SecondsSince(*w.job_started)) : Json(nullptr)},
  };
}

Json Optional(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

// Resident memory of process `pid`, in bytes, or null once it is gone.
Json ResidentBytes(long pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  std::uint64_t pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return nullptr;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

Json ProcessWorkerJson(const ProcessWorkerSnapshot& w) {
  using PState = ProcessWorkerSnapshot::State;
  const char* state = w.state == PState::kIdle       ? "idle"
                      : w.state == PState::kBusy     ? "busy"
                      : w.state == PState::kStopping ? "stopping"
                                                     : "starting";
  const bool leased = w.role == ProcessWorkerSnapshot::Role::kLease;
  return {
      {"id", w.worker_id},
      {"pid", w.pid},
      {"kind", leased ? "lease" : "pool"},
      {"lease", leased ? Json(w.lease_id) : Json(nullptr)},
      {"state", state},
      {"jobs_done", w.jobs_done},
      {"current_job_age_seconds", w.job_started ? Json(SecondsSince(*w.job_started)) : Json(nullptr)},
      {"rss_bytes", w.pid > 0 ? ResidentBytes(w.pid) : Json(nullptr)},
  };
}

// Jobs per lane, and why the daemon chose the process lane for jobs that
// left it the choice.
Json LanesJson(const JobTotals& totals) {
  return {{"interpreter", {{"jobs", totals.lane_interpreter.load()}}},
          {"process",
           {{"jobs", totals.lane_process.load()},
            {"crashed", totals.worker_crashes.load()},
            {"routed",
             {{"module", totals.routed_module.load()},
              {"remembered", totals.routed_remembered.load()},
              {"load_refused", totals.routed_load.load()},
              {"run_refused", totals.routed_run.load()}}}}}};
}

}  // namespace

Json BuildStatus(const DaemonInfo& info, const PoolSnapshot& pool, const JobTotals& totals,
                 const LatencyRecorder::Summary& latency, std::size_t connections,
                 bool stopping, const Json& queues) {
  Json workers = Json::array();
  for (const InterpreterSnapshot& w : pool.interpreters) workers.push_back(WorkerJson(w));
  Json process_workers = Json::array();
  for (const ProcessWorkerSnapshot& w : pool.process_workers) {
    process_workers.push_back(ProcessWorkerJson(w));
  }
  return {
      {"daemon_version", kDaemonVersion},
      {"protocol", kProtocolVersion},
      {"pid", info.pid},
      {"python", info.python_version},
      {"socket", info.socket},
      {"state", stopping ? "stopping" : pool.ready ? "ready" : "starting"},
      {"uptime_seconds", SecondsSince(info.started)},
      {"workers", workers},
      {"process_workers", process_workers},
      {"lanes", LanesJson(totals)},
      {"leases", {{"active", pool.active_leases}, {"max", pool.max_interpreters}}},
      {"queue_depth", pool.queue_depth},
      {"connections", connections},
      {"queues", queues},
      {"totals",
       {{"submitted", totals.submitted.load()},
        {"completed", totals.completed.load()},
        {"failed", totals.failed.load()},
        {"dropped", totals.dropped.load()},
        {"cancelled", totals.cancelled.load()},
        {"timeouts", totals.timeouts.load()}}},
      {"retired",
       {{"stuck", totals.retired_stuck.load()},
        {"recycled", totals.retired_recycled.load()},
        {"threads", totals.retired_threads.load()}}},
      {"latency_us",
       {{"p50", Optional(latency.p50_us)},
        {"p99", Optional(latency.p99_us)},
        {"samples", latency.samples}}},
  };
}

}  // namespace ei
