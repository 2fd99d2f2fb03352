// Starts a process lane worker: this same binary in worker mode, linked to
// the daemon by a socketpair.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "daemon/base/unique_fd.h"

namespace ei {

/// What a worker process needs to know, passed as one JSON argument.
struct WorkerSpec {
  int worker_id = 0;
  std::vector<std::string> python_path;
  std::vector<std::string> preload;
  std::uint64_t max_frame_bytes = 256ull << 20;
  std::size_t buffer_size = 10 << 20;

  std::string ToJson(long parent_pid) const;
};

/// The flag that makes extrainterpretersd a worker (main.cc).
inline constexpr char kWorkerFlag[] = "--process-worker";
/// The descriptor number of the worker's end of the link.
inline constexpr int kWorkerLinkFd = 3;

struct SpawnedWorker {
  pid_t pid = -1;
  UniqueFd link;      // the daemon's end of the socketpair
  std::string error;  // when pid < 0: why it could not start
};

/// Runs `/proc/self/exe --process-worker <spec>` with only stdin, stdout,
/// stderr and its end of a new socketpair (as fd 3) open. Any thread.
SpawnedWorker SpawnWorker(const WorkerSpec& spec);

/// "died with SIGSEGV", "exited with status 3": how a waitpid status ended.
std::string DescribeExit(int wait_status);

}  // namespace ei
