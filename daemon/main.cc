// extrainterpretersd: start-up, the I/O loop, and shutdown by signal.
//
// Threads: the main thread initialises CPython, then runs the Asio I/O loop
// (every socket and session lives there and never holds a GIL); one thread
// per interpreter runs jobs; on SIGTERM/SIGINT a drain thread shuts the pool
// down while the I/O loop keeps delivering the last replies. SIGHUP reloads
// the config on the I/O loop. Under systemd, the listening socket may come
// from socket activation and the service manager hears READY/STATUS/
// STOPPING/WATCHDOG (service_notifier.h).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <functional>
#include <iostream>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/config.h"
#include "daemon/interpreter_pool.h"
#include "daemon/job_totals.h"
#include "daemon/latency_recorder.h"
#include "daemon/log.h"
#include "daemon/job_queue_service.h"
#include "daemon/memory_trimmer.h"
#include "daemon/queue_store.h"
#include "daemon/python/runtime.h"
#include "daemon/reload.h"
#include "daemon/server.h"
#include "daemon/service_notifier.h"
#include "daemon/session_manager.h"
#include "daemon/socket_activation.h"
#include "daemon/systemd_notify.h"
#include "daemon/version.h"
#include "python/python_build_info.h"

namespace ei {
namespace {

namespace asio = boost::asio;

// How long shutdown waits for clients to read their last replies. A client
// that stopped reading would otherwise keep its session, and so the daemon,
// alive for ever.
constexpr std::chrono::seconds kFlushGrace{10};

// Memory freed by large transfers is kept for the next one, and given back
// once none has moved for this long (MemoryTrimmer).
constexpr std::chrono::milliseconds kTrimAfterIdle{1000};

std::string Join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : sep) + item;
  return out.empty() ? "none" : out;
}

PoolOptions MakePoolOptions(const Config& config) {
  PoolOptions options;
  options.workers = config.workers;
  options.max_interpreters = config.max_interpreters;
  options.interpreter.preload = config.preload;
  options.interpreter.buffer_size = config.buffer_size;
  options.interpreter.buffer_limit = config.max_frame_bytes;
  options.interpreter.max_jobs = config.max_jobs_per_interpreter;
  options.cancel_grace = std::chrono::milliseconds(
      static_cast<long>(config.cancel_grace_seconds * 1000));
  return options;
}

// Descriptors kept free of connections: a few for the daemon itself, and
// each interpreter's shared buffer and result memfds.
constexpr std::size_t kSpareDescriptors = 64;
constexpr std::size_t kDescriptorsPerInterpreter = 4;

ConnectionLimits MakeConnectionLimits(const Config& config) {
  ConnectionLimits limits;
  limits.max_connections = FitConnections(
      static_cast<std::size_t>(config.max_connections),
      kSpareDescriptors + kDescriptorsPerInterpreter * (config.max_interpreters + 1));
  limits.max_jobs_per_connection = static_cast<std::size_t>(config.max_jobs_per_connection);
  limits.max_queue_depth = static_cast<std::size_t>(config.max_queue_depth);
  limits.frame_deadline_seconds = config.frame_deadline_seconds;
  limits.idle_timeout_seconds = config.idle_timeout_seconds;
  limits.max_output_buffer = static_cast<std::size_t>(config.max_output_buffer);
  return limits;
}

// Takes the socket systemd passed, or binds our own. Returns "" or why not;
// `*path` is the socket file either way.
std::string StartListening(Server& server, const Config& config, std::string* path) {
  systemd::ActivatedSocket activated = systemd::TakeActivatedSocket();
  if (!activated.error.empty()) return activated.error;
  if (activated.fd < 0) {
    *path = config.socket;
    return server.Listen(config.socket);
  }
  *path = activated.path;
  if (activated.path != config.socket) {
    log::Info("starting: socket activation passed " + activated.path + "; it is used instead of " +
              config.socket);
  }
  return server.Adopt(activated.fd, activated.path);
}

int Serve(Config config, int argc, char** argv) {
  // Read before Python starts, so no interpreter's os.environ has them.
  systemd::Notifier notifier = systemd::Notifier::FromEnvironment();
  python::Status started = python::Runtime::Initialize({EI_PYTHON_HOME, config.python_path});
  if (!started.ok()) {
    log::Error("cannot start: " + started.message());
    return 1;
  }
  const auto start_time = std::chrono::steady_clock::now();
  asio::io_context io(1);
  JobTotals totals;
  InterpreterPool pool(MakePoolOptions(config), &totals);
  LatencyRecorder latency;
  SessionManager sessions;
  QueueStore queues({static_cast<std::size_t>(config.max_queues),
                     static_cast<std::size_t>(config.max_queue_items),
                     static_cast<std::size_t>(config.max_queue_bytes)});
  // Jobs reach the same queues through `_extrainterpreters`.
  JobQueueService job_queues(queues);
  python::SetQueueService(&job_queues);
  DaemonContext context;
  context.info = {config.socket, static_cast<long>(::getpid()), python::Runtime::Version(),
                  python::Runtime::HexVersion(), start_time};
  context.limits = {config.max_header_bytes, config.max_frame_bytes};
  context.buffer_size = config.buffer_size;
  context.workers = config.workers;
  context.max_definitions = config.max_definitions;
  context.cancel_grace_seconds = config.cancel_grace_seconds;
  context.connection_limits = MakeConnectionLimits(config);
  context.pool = &pool;
  context.totals = &totals;
  context.latency = &latency;
  context.sessions = &sessions;
  context.queues = &queues;
  MemoryTrimmer trimmer(io, kTrimAfterIdle);
  context.trimmer = &trimmer;

  Server server(io, context);
  AccessPolicy access;
  std::string why =
      AccessPolicy::Create(config.allow_users, config.allow_groups, ::geteuid(), &access);
  if (why.empty()) why = StartListening(server, config, &context.info.socket);
  if (!why.empty()) {
    log::Error("cannot start: " + why);
    python::Runtime::Finalize();
    return 1;
  }
  const std::string allowed = access.Describe();
  server.SetAccessPolicy(std::move(access));
  ServiceNotifier service(io, notifier, pool, totals, sessions);
  log::Info("starting: extrainterpretersd " + std::string(kDaemonVersion) + " pid " +
            std::to_string(context.info.pid) + ", Python " + context.info.python_version +
            ", socket " + context.info.socket + ", workers " + std::to_string(config.workers) +
            ", max_interpreters " + std::to_string(config.max_interpreters) + ", preload " +
            Join(config.preload, ","));
  log::Info("starting: access allowed to " + allowed);

  int exit_code = 0;
  int stuck = 0;  // interpreters still stuck in a job at the end
  std::thread drainer;
  auto keep_running = asio::make_work_guard(io);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::signal_set reload_signal(io, SIGHUP);
  asio::steady_timer flush_deadline(io);
  // Shutdown by cancelling: stop accepting, let the pool answer or finish
  // every job, then close each session once its replies are written, or
  // when kFlushGrace has passed.
  auto close_sessions = [&] {
    trimmer.Stop();
    sessions.CloseAllWhenFlushed();
    keep_running.reset();
    flush_deadline.expires_after(kFlushGrace);
    flush_deadline.async_wait([&](const boost::system::error_code& error) {
      if (error) return;  // every session closed in time
      log::Warning("stopping: closing " + std::to_string(sessions.size()) +
                   " connections whose clients did not read their last replies within " +
                   std::to_string(kFlushGrace.count()) + " s");
      sessions.CloseAll();
    });
    sessions.WhenEmpty([&] { flush_deadline.cancel(); });
  };
  auto begin_shutdown = [&](int code, const std::string& why) {
    if (context.stopping) return;
    context.stopping = true;
    exit_code = code;
    log::Info("stopping: " + why);
    service.Stopping(why);
    server.Stop();
    // Jobs still run to their end; none may wait for ever on a queue.
    queues.StopWaiting("the daemon is shutting down");
    signals.cancel();
    reload_signal.cancel();
    drainer = std::thread([&] {
      stuck = pool.Shutdown();
      asio::post(io, close_sessions);
    });
  };
  signals.async_wait([&](const boost::system::error_code& error, int signal_number) {
    if (!error) begin_shutdown(0, std::string("received ") + ::strsignal(signal_number));
  });
  std::function<void()> await_reload = [&] {
    reload_signal.async_wait([&](const boost::system::error_code& error, int) {
      if (error || context.stopping) return;
      service.Reloading();
      Reload(argc, argv, {&config, &pool, &server, &context});
      service.Reloaded();
      await_reload();
    });
  };
  await_reload();
  pool.Start([&](const python::Status& status) {
    asio::post(io, [&, status] {
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
      if (status.ok()) {
        log::Info("ready: " + std::to_string(config.workers) + " warm interpreters in " +
                  std::to_string(secs).substr(0, 5) + " s, listening on " + context.info.socket);
        if (!context.stopping) service.Ready();
      } else {
        log::Error("cannot start: an interpreter could not be created: " + status.message());
        begin_shutdown(1, "start-up failed");
      }
    });
  });
  io.run();
  if (drainer.joinable()) drainer.join();
  python::SetQueueService(nullptr);  // job_queues goes before any stuck thread
  if (stuck > 0) {
    // Their threads still run Python code: finalizing would pull the runtime
    // out from under them. The process ends here instead.
    log::Warning("stopped: " + std::to_string(stuck) +
                 " retired interpreters are still stuck in jobs; exiting without finalizing "
                 "Python, exit status " + std::to_string(exit_code));
    std::_Exit(exit_code);
  }
  python::Runtime::Finalize();
  log::Info("stopped: exit status " + std::to_string(exit_code));
  return exit_code;
}

}  // namespace
}  // namespace ei

int main(int argc, char** argv) {
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
  return ei::Serve(parsed.config, argc, argv);
}
