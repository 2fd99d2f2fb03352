// The daemon's settings: defaults, then a JSON config file, then flags.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ei {

struct Config {
  std::string socket;                  // default: proto::DefaultSocketPath()
  int workers = 0;                     // default: number of CPUs
  std::vector<std::string> preload;    // modules imported in every interpreter
  std::uint64_t buffer_size = 10ull << 20;
  int max_interpreters = 0;            // default: 4 x workers
  std::uint64_t max_frame_bytes = 256ull << 20;
  std::uint32_t max_header_bytes = 64 << 10;
  std::vector<std::string> python_path;  // prepended to sys.path
  double cancel_grace_seconds = 5;       // a stopped job's time to end
  std::uint64_t max_jobs_per_interpreter = 0;  // 0: never recycle
  int idle_spin_us = 200;                // a worker's, and the I/O thread's, spin before sleeping; 0: none
  int max_definitions = 4096;            // per connection
  std::vector<std::string> allow_users;   // names or uids, besides root and our own
  std::vector<std::string> allow_groups;  // names or gids (supplementary groups count)
  // Limits that keep one client from taking the daemon's memory or
  // descriptors (docs/operations.md, "Limits and faults").
  int max_connections = 1024;                  // lowered to fit RLIMIT_NOFILE
  int max_jobs_per_connection = 10000;         // jobs in flight on one connection
  std::uint64_t max_queue_depth = 100000;      // queued jobs, pool and leases together
  double frame_deadline_seconds = 30;          // for a started frame to finish arriving
  double idle_timeout_seconds = 0;             // 0: idle connections stay open
  std::uint64_t max_output_buffer = 64ull << 20;  // unsent bytes per connection
  std::uint64_t max_queues = 1024;                 // queues (PROTOCOL.md, "Queues")
  std::uint64_t max_queue_items = 100000;          // items per queue
  std::uint64_t max_queue_bytes = 256ull << 20;    // bytes of items per queue
  // The process lane (README.md, "Libraries that refuse sub-interpreters").
  int process_workers = 1;                         // warm worker processes
  int max_process_workers = 0;                     // default: number of CPUs (at least process_workers)
  std::vector<std::string> process_modules = DefaultProcessModules();  // their jobs run there
  bool process_rerun = true;                       // a job that raised the refusal runs again there
  std::uint64_t max_jobs_per_process_worker = 0;   // 0: never recycle
  double process_worker_idle_seconds = 60;         // grown workers end after this idle; 0: never
  std::string config_file;

  /// Well-known top-level modules with extensions that refuse
  /// sub-interpreters (or whose import in one aborts CPython 3.13.0).
  static std::vector<std::string> DefaultProcessModules();
};

/// What ParseCommandLine decided.
struct ParseResult {
  enum class Action { kRun, kHelp, kVersion, kError };
  Action action = Action::kRun;
  Config config;
  std::string error;  // when kError: one sentence naming the flag or key
};

/// Reads flags and the --config file; fills in defaults; validates.
ParseResult ParseCommandLine(int argc, char** argv);

/// The --help text.
std::string UsageText();

}  // namespace ei
