#include "daemon/process/spawn.h"

#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

extern char** environ;

namespace ei {

std::string WorkerSpec::ToJson(long parent_pid) const {
  return nlohmann::json{{"worker_id", worker_id},
                        {"parent", parent_pid},
                        {"python_path", python_path},
                        {"preload", preload},
                        {"max_frame_bytes", max_frame_bytes},
                        {"buffer_size", buffer_size}}
      .dump();
}

SpawnedWorker SpawnWorker(const WorkerSpec& spec) {
  SpawnedWorker spawned;
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    spawned.error = std::string("socketpair failed: ") + std::strerror(errno);
    return spawned;
  }
  UniqueFd ours(pair[0]), theirs(pair[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 clears close-on-exec on the copy; everything else the daemon has
  // open (client sockets, memfds, the listening socket) stays behind, so a
  // worker never keeps a client's connection alive.
  posix_spawn_file_actions_adddup2(&actions, theirs.get(), kWorkerLinkFd);
  posix_spawn_file_actions_addclosefrom_np(&actions, kWorkerLinkFd + 1);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // The daemon blocks or ignores some signals; a worker starts clean.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  const std::string spec_json = spec.ToJson(static_cast<long>(::getpid()));
  char program[] = "/proc/self/exe";
  std::string name = "extrainterpretersd";
  std::string flag = kWorkerFlag;
  std::string arg = spec_json;
  char* argv[] = {name.data(), flag.data(), arg.data(), nullptr};
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, program, &actions, &attributes, argv, environ);
  posix_spawnattr_destroy(&attributes);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) {
    spawned.error = std::string("cannot start a worker process: ") + std::strerror(error);
    return spawned;
  }
  spawned.pid = pid;
  spawned.link = std::move(ours);
  return spawned;
}

std::string DescribeExit(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    const int number = WTERMSIG(wait_status);
    const char* abbrev = ::sigabbrev_np(number);
    return std::string("died with ") + (abbrev != nullptr ? std::string("SIG") + abbrev
                                                          : "signal " + std::to_string(number));
  }
  if (WIFEXITED(wait_status)) {
    return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
  }
  return "ended (wait status " + std::to_string(wait_status) + ")";
}

}  // namespace ei
