// extrainterpretersd: parses the command line and runs the daemon
// (app/daemon.h).
#include <signal.h>

#include <cstddef>
#include <iostream>
#include <string_view>

#include "daemon/app/config.h"
#include "daemon/app/daemon.h"
#include "daemon/base/version.h"
#include "daemon/net/memory_trimmer.h"
#include "daemon/process/spawn.h"
#include "daemon/process/worker_main.h"
#include "daemon/python/runtime.h"
#include "python/python_build_info.h"

int main(int argc, char** argv) {
  // A process lane worker: the daemon started this binary for one
  // (process/spawn.h).
  if (argc == 3 && std::string_view(argv[1]) == ei::kWorkerFlag) {
    return ei::RunProcessWorker(argv[2]);
  }
  using ei::ParseResult;
  ParseResult parsed = ei::ParseCommandLine(argc, argv);
  switch (parsed.action) {
    case ParseResult::Action::kHelp:
      std::cout << ei::UsageText();
      return 0;
    case ParseResult::Action::kVersion:
      std::cout << "extrainterpretersd " << ei::kDaemonVersion << " (protocol "
                << ei::kProtocolVersion << ", Python " << ei::python::Runtime::Version()
                << " from " << EI_PYTHON_HOME << ")\n";
      return 0;
    case ParseResult::Action::kError:
      std::cerr << "extrainterpretersd: " << parsed.error
                << "\nRun 'extrainterpretersd --help' for the flags.\n";
      return 2;
    case ParseResult::Action::kRun:
      break;
  }
  // A client that hangs up mid-write must not kill the daemon.
  ::signal(SIGPIPE, SIG_IGN);
  // Jobs move large, short-lived buffers: freed ones are kept warm for the
  // next transfer, up to a frame's worth, and trimmed once transfers stop.
  ei::MemoryTrimmer::ConfigureAllocator(
      static_cast<std::size_t>(parsed.config.max_frame_bytes) + (1 << 20));
  return ei::RunDaemon(parsed.config, argc, argv);
}
