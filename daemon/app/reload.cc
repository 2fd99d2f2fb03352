#include "daemon/app/reload.h"

#include <unistd.h>

#include <sstream>

#include "daemon/base/log.h"
#include "daemon/core/interpreter_pool.h"
#include "daemon/core/run_queue.h"
#include "daemon/net/access_control.h"
#include "daemon/net/server.h"

namespace ei {
namespace {

std::string Show(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ",") + item;
  return "[" + out + "]";
}

std::string Show(bool value) { return value ? "true" : "false"; }

template <typename T>
std::string Show(const T& value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

template <typename T>
void Compare(const char* key, const T& before, const T& after, std::vector<std::string>* into) {
  if (before != after) into->push_back(std::string(key) + " " + Show(before) + " -> " + Show(after));
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : "; ") + item;
  return out;
}

}  // namespace

ReloadPlan PlanReload(const Config& running, const Config& wanted) {
  ReloadPlan plan;
  Compare("workers", running.workers, wanted.workers, &plan.applied);
  Compare("allow_users", running.allow_users, wanted.allow_users, &plan.applied);
  Compare("allow_groups", running.allow_groups, wanted.allow_groups, &plan.applied);
  Compare("idle_spin_us", running.idle_spin_us, wanted.idle_spin_us, &plan.applied);
  std::vector<std::string>* later = &plan.needs_restart;
  Compare("socket", running.socket, wanted.socket, later);
  Compare("preload", running.preload, wanted.preload, later);
  Compare("buffer_size", running.buffer_size, wanted.buffer_size, later);
  // The default (4 x workers) follows workers; only an explicit change counts.
  const bool default_max = running.max_interpreters == 4 * running.workers &&
                           wanted.max_interpreters == 4 * wanted.workers;
  if (!default_max) {
    Compare("max_interpreters", running.max_interpreters, wanted.max_interpreters, later);
  }
  Compare("max_frame_bytes", running.max_frame_bytes, wanted.max_frame_bytes, later);
  Compare("max_header_bytes", running.max_header_bytes, wanted.max_header_bytes, later);
  Compare("python_path", running.python_path, wanted.python_path, later);
  Compare("cancel_grace", running.cancel_grace_seconds, wanted.cancel_grace_seconds, later);
  Compare("max_jobs_per_interpreter", running.max_jobs_per_interpreter,
          wanted.max_jobs_per_interpreter, later);
  Compare("max_definitions", running.max_definitions, wanted.max_definitions, later);
  Compare("max_connections", running.max_connections, wanted.max_connections, later);
  Compare("max_jobs_per_connection", running.max_jobs_per_connection,
          wanted.max_jobs_per_connection, later);
  Compare("max_queue_depth", running.max_queue_depth, wanted.max_queue_depth, later);
  Compare("frame_deadline", running.frame_deadline_seconds, wanted.frame_deadline_seconds, later);
  Compare("idle_timeout", running.idle_timeout_seconds, wanted.idle_timeout_seconds, later);
  Compare("max_output_buffer", running.max_output_buffer, wanted.max_output_buffer, later);
  Compare("max_queues", running.max_queues, wanted.max_queues, later);
  Compare("max_queue_items", running.max_queue_items, wanted.max_queue_items, later);
  Compare("max_queue_bytes", running.max_queue_bytes, wanted.max_queue_bytes, later);
  Compare("process_workers", running.process_workers, wanted.process_workers, later);
  Compare("max_process_workers", running.max_process_workers, wanted.max_process_workers, later);
  Compare("process_modules", running.process_modules, wanted.process_modules, later);
  Compare("process_rerun", running.process_rerun, wanted.process_rerun, later);
  Compare("max_jobs_per_process_worker", running.max_jobs_per_process_worker,
          wanted.max_jobs_per_process_worker, later);
  Compare("process_worker_idle", running.process_worker_idle_seconds,
          wanted.process_worker_idle_seconds, later);
  return plan;
}

std::string Reload(int argc, char** argv, const ReloadTargets& targets) {
  auto fail = [](const std::string& why) {
    log::Error("reload failed: " + why + "; the running settings are kept");
    return why;
  };
  ParseResult parsed = ParseCommandLine(argc, argv);
  if (parsed.action != ParseResult::Action::kRun) {
    return fail(parsed.error.empty() ? "the command line no longer parses" : parsed.error);
  }
  Config& running = *targets.running;
  const Config& wanted = parsed.config;
  AccessPolicy access;
  if (std::string why = AccessPolicy::Create(wanted.allow_users, wanted.allow_groups, ::geteuid(),
                                             &access);
      !why.empty()) {
    return fail(why);
  }
  ReloadPlan plan = PlanReload(running, wanted);
  if (wanted.workers != running.workers) {
    if (std::string why = targets.pool->Resize(wanted.workers); !why.empty()) {
      return fail("cannot resize the pool: " + why);
    }
    running.workers = wanted.workers;
    targets.context->workers = wanted.workers;
  }
  RunQueue::SetIdleSpin(std::chrono::microseconds(wanted.idle_spin_us));
  running.idle_spin_us = wanted.idle_spin_us;
  targets.server->SetAccessPolicy(std::move(access));
  running.allow_users = wanted.allow_users;
  running.allow_groups = wanted.allow_groups;
  log::Info("reloaded: " + (plan.applied.empty() ? std::string("nothing changed")
                                                 : "applied " + Join(plan.applied)) +
            " (" + (running.config_file.empty() ? std::string("no --config file")
                                                : "from " + running.config_file) +
            ")");
  if (!plan.needs_restart.empty()) {
    log::Warning("reloaded: " + Join(plan.needs_restart) +
                 ": needs a restart to take effect; still running with the old value");
  }
  return "";
}

}  // namespace ei
