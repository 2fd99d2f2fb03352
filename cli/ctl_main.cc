// extrainterpretersctl: asks a running extrainterpretersd how it is doing.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "cli/ctl_client.h"
#include "cli/status_format.h"
#include "proto/socket_path.h"

namespace {

constexpr char kUsage[] = R"(Usage: extrainterpretersctl [--socket PATH] [--timeout SECONDS] COMMAND

Commands:
  status [--json]  What the daemon is doing: version, pid, Python, uptime,
                   ready or starting, each interpreter (idle or busy, jobs
                   done, age of its current job), leases, queue depth, job
                   totals and round-trip latency p50/p99. --json prints the
                   status document of proto/PROTOCOL.md, unchanged.
  queues           The daemon's queues: id, name (or the connection owning
                   an anonymous one), items held, maxsize (0: the daemon's
                   max_queue_items), bytes, blocked puts and gets. The first
                   100; a last line counts the rest.
  ping             Checks that the daemon answers; prints the round trip.

Flags:
  --socket PATH      The daemon's socket. Default: $EXTRAINTERPRETERS_SOCKET,
                     else $XDG_RUNTIME_DIR/extrainterpreters/ei.sock, else
                     /run/extrainterpreters/ei.sock.
  --timeout SECONDS  How long to wait for an answer. Default: 10.
  -h, --help         Print this help.

Exit status: 0 on success, 1 when the daemon cannot be reached or answers
with an error, 2 for bad usage.
)";

struct Options {
  std::string socket = ei::proto::DefaultSocketPath();
  double timeout_seconds = 10;
  std::string command;
  bool json = false;
};

int Usage(const std::string& why) {
  std::cerr << "extrainterpretersctl: " << why << "\nRun 'extrainterpretersctl --help' for usage.\n";
  return 2;
}

int Fail(const std::string& why) {
  std::cerr << "extrainterpretersctl: " << why << "\n";
  return 1;
}

int Run(const Options& options) {
  using Clock = std::chrono::steady_clock;
  ei::ctl::CtlClient client;
  // At least 1 ms: a zero SO_RCVTIMEO would mean "wait forever".
  const auto timeout = std::chrono::milliseconds(
      std::max(1L, static_cast<long>(std::min(options.timeout_seconds, 1e9) * 1000)));
  const auto start = Clock::now();
  if (std::string why = client.Connect(options.socket, timeout); !why.empty()) return Fail(why);
  nlohmann::json reply;
  if (options.command == "ping") {
    const auto sent = Clock::now();
    if (std::string why = client.Request("ping", &reply); !why.empty()) return Fail(why);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
    const double total = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    std::printf("pong from %s in %.3f ms (%.3f ms with connect and hello)\n",
                options.socket.c_str(), ms, total);
    return 0;
  }
  if (std::string why = client.Request("status", &reply); !why.empty()) return Fail(why);
  if (options.command == "queues") {
    std::cout << ei::ctl::FormatQueues(reply["status"]);
  } else if (options.json) {
    std::cout << reply["status"].dump(2) << "\n";
  } else {
    std::cout << ei::ctl::FormatStatus(reply["status"]);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help" || arg == "help") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--socket" || arg == "--timeout") {
      if (i + 1 >= args.size()) return Usage(arg + " needs a value");
      const std::string& value = args[++i];
      if (arg == "--socket") {
        options.socket = value;
      } else {
        char* end = nullptr;
        options.timeout_seconds = std::strtod(value.c_str(), &end);
        if (*end != '\0' || options.timeout_seconds <= 0) {
          return Usage("--timeout needs a positive number of seconds, not \"" + value + "\"");
        }
      }
    } else if (arg == "--json" && options.command == "status") {
      options.json = true;
    } else if (options.command.empty() &&
               (arg == "status" || arg == "ping" || arg == "queues")) {
      options.command = arg;
    } else {
      return Usage("unexpected argument \"" + arg + "\"");
    }
  }
  if (options.command.empty()) return Usage("no command given (status, queues or ping)");
  // A reply that parses as JSON but not as the documented shape makes
  // nlohmann throw; say so in one line instead of aborting.
  try {
    return Run(options);
  } catch (const std::exception& error) {
    return Fail("unexpected reply from " + options.socket + ": " + error.what());
  }
}
