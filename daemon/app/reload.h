// SIGHUP: re-read the command line's --config file and apply what can
// change while jobs run. I/O thread only.
#pragma once

#include <string>
#include <vector>

#include "daemon/app/config.h"

namespace ei {

class InterpreterPool;
class Server;
struct DaemonContext;

/// What a reload would do: settings applied at once, and settings that
/// changed but only take effect at the next start.
struct ReloadPlan {
  std::vector<std::string> applied;        // "workers 2 -> 4"
  std::vector<std::string> needs_restart;  // "socket /a -> /b"
};

/// Compares the running settings with the re-read ones.
ReloadPlan PlanReload(const Config& running, const Config& wanted);

/// What a reload changes in the running daemon.
struct ReloadTargets {
  Config* running = nullptr;  // updated with what was applied
  InterpreterPool* pool = nullptr;
  Server* server = nullptr;
  DaemonContext* context = nullptr;
};

/// Re-parses `argv` (the daemon's own command line), applies workers,
/// allow_users and allow_groups, and logs "reloaded: ..." (or "reload
/// failed: ..." and keeps everything as it was). Returns "" or why it failed.
std::string Reload(int argc, char** argv, const ReloadTargets& targets);

}  // namespace ei
