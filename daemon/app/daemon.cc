#include "daemon/app/daemon.h"

#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>

#include "daemon/app/reload.h"
#include "daemon/app/socket_activation.h"
#include "daemon/base/log.h"
#include "daemon/base/version.h"
#include "daemon/core/run_queue.h"
#include "daemon/python/builtin_module.h"
#include "daemon/python/runtime.h"
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

// Descriptors kept free of connections: a few for the daemon itself, and
// each interpreter's shared buffer and result memfds.
constexpr std::size_t kSpareDescriptors = 64;
constexpr std::size_t kDescriptorsPerInterpreter = 4;

std::string Join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : sep) + item;
  return out.empty() ? "none" : out;
}

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

PoolOptions MakePoolOptions(const Config& config) {
  PoolOptions options;
  options.workers = config.workers;
  options.max_interpreters = config.max_interpreters;
  // A module of the process lane is never imported in a sub-interpreter,
  // not even to preload it.
  for (const std::string& name : config.preload) {
    if (!Contains(config.process_modules, name.substr(0, name.find('.')))) {
      options.interpreter.preload.push_back(name);
    }
  }
  options.interpreter.refused = config.process_modules;
  options.interpreter.buffer_size = config.buffer_size;
  options.interpreter.buffer_limit = config.max_frame_bytes;
  options.interpreter.max_jobs = config.max_jobs_per_interpreter;
  options.cancel_grace = std::chrono::milliseconds(
      static_cast<long>(config.cancel_grace_seconds * 1000));
  return options;
}

ProcessLaneOptions MakeProcessLaneOptions(const Config& config) {
  ProcessLaneOptions options;
  options.workers = config.process_workers;
  options.max_workers = config.max_process_workers;
  options.cancel_grace = std::chrono::milliseconds(
      static_cast<long>(config.cancel_grace_seconds * 1000));
  options.worker.max_jobs = config.max_jobs_per_process_worker;
  options.worker.idle_exit = std::chrono::milliseconds(
      static_cast<long>(config.process_worker_idle_seconds * 1000));
  options.worker.spec.python_path = config.python_path;
  options.worker.spec.preload = config.preload;
  options.worker.spec.max_frame_bytes = config.max_frame_bytes;
  options.worker.spec.buffer_size = config.buffer_size;
  return options;
}

QueueLimits MakeQueueLimits(const Config& config) {
  return {static_cast<std::size_t>(config.max_queues),
          static_cast<std::size_t>(config.max_queue_items),
          static_cast<std::size_t>(config.max_queue_bytes)};
}

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

}  // namespace

int RunDaemon(Config config, int argc, char** argv) {
  // Read before Python starts, so no interpreter's os.environ has them.
  systemd::Notifier notifier = systemd::Notifier::FromEnvironment();
  Status started = python::Runtime::Initialize({EI_PYTHON_HOME, config.python_path});
  if (!started.ok()) {
    log::Error("cannot start: " + started.message());
    return 1;
  }
  int exit_code = 0;
  {
    Daemon daemon(std::move(config), argc, argv, notifier);
    exit_code = daemon.Run();
    python::SetQueueService(nullptr);  // its service goes before any stuck thread
    if (daemon.stuck() > 0) {
      // Their threads still run Python code: finalizing would pull the
      // runtime out from under them. The process ends here instead.
      log::Warning("stopped: " + std::to_string(daemon.stuck()) +
                   " retired interpreters are still stuck in jobs; exiting without finalizing "
                   "Python, exit status " + std::to_string(exit_code));
      std::_Exit(exit_code);
    }
  }
  python::Runtime::Finalize();
  log::Info("stopped: exit status " + std::to_string(exit_code));
  return exit_code;
}

Daemon::Daemon(Config config, int argc, char** argv, systemd::Notifier notifier)
    : config_(std::move(config)),
      argc_(argc),
      argv_(argv),
      queues_(MakeQueueLimits(config_)),
      pool_(MakePoolOptions(config_), &totals_),
      process_lane_(MakeProcessLaneOptions(config_), &totals_, &job_queues_),
      router_(pool_, process_lane_, {config_.process_modules, config_.process_rerun}, &totals_),
      trimmer_(io_, kTrimAfterIdle),
      server_(io_, context_),
      service_(io_, notifier, router_, totals_, sessions_),
      stop_signals_(io_, SIGINT, SIGTERM),
      reload_signal_(io_, SIGHUP),
      flush_deadline_(io_),
      keep_running_(asio::make_work_guard(io_)) {
  python::SetQueueService(&job_queues_);
  RunQueue::SetIdleSpin(std::chrono::microseconds(config_.idle_spin_us));
  context_.info = {config_.socket, static_cast<long>(::getpid()), python::Runtime::Version(),
                   python::Runtime::HexVersion(), start_time_};
  context_.sys_path = python::Runtime::SysPath();
  context_.limits = {config_.max_header_bytes, config_.max_frame_bytes};
  context_.buffer_size = config_.buffer_size;
  context_.workers = config_.workers;
  context_.process_workers = config_.process_workers;
  context_.max_process_workers = config_.max_process_workers;
  context_.process_modules = config_.process_modules;
  context_.max_definitions = config_.max_definitions;
  context_.cancel_grace_seconds = config_.cancel_grace_seconds;
  context_.connection_limits = MakeConnectionLimits(config_);
  context_.pool = &router_;
  context_.totals = &totals_;
  context_.latency = &latency_;
  context_.sessions = &sessions_;
  context_.queues = &queues_;
  context_.trimmer = &trimmer_;
  context_.gate = &gate_;
}

Daemon::~Daemon() {
  if (drainer_.joinable()) drainer_.join();
}

int Daemon::Run() {
  AccessPolicy access;
  std::string why =
      AccessPolicy::Create(config_.allow_users, config_.allow_groups, ::geteuid(), &access);
  if (why.empty()) why = StartListening(server_, config_, &context_.info.socket);
  if (!why.empty()) {
    log::Error("cannot start: " + why);
    return 1;
  }
  LogStarting(access.Describe());
  server_.SetAccessPolicy(std::move(access));
  AwaitStopSignal();
  AwaitReload();
  pool_.Start([this](const Status& status) {
    asio::post(io_, [this, status] { OnLaneReady("interpreter", status); });
  });
  process_lane_.Start([this](const Status& status) {
    asio::post(io_, [this, status] { OnLaneReady("process", status); });
  });
  RunIo();
  if (drainer_.joinable()) drainer_.join();
  return exit_code_;
}

// The I/O thread, like an idle worker, spins for --idle-spin-us after its
// last handler before it sleeps in epoll: a request sent meanwhile (the
// next run() of a client in a loop) is read without a wake-up, which costs
// tens of microseconds on a VM (A/B on the 2-vCPU VM of bench/README.md:
// run() round trip p50 121 -> 102 µs). sched_yield, as the workers': a
// runnable thread on this CPU gets it.
void Daemon::RunIo() {
  using Clock = std::chrono::steady_clock;
  auto last_work = Clock::now();
  while (!io_.stopped()) {
    if (io_.poll() > 0) {
      last_work = Clock::now();
      continue;
    }
    if (Clock::now() - last_work < RunQueue::IdleSpin()) {
      ::sched_yield();
      continue;
    }
    if (io_.run_one() == 0) break;  // out of work, or stopped
    last_work = Clock::now();
  }
}

void Daemon::LogStarting(const std::string& allowed) const {
  log::Info("starting: extrainterpretersd " + std::string(kDaemonVersion) + " pid " +
            std::to_string(context_.info.pid) + ", Python " + context_.info.python_version +
            ", socket " + context_.info.socket + ", workers " + std::to_string(config_.workers) +
            ", max_interpreters " + std::to_string(config_.max_interpreters) + ", preload " +
            Join(config_.preload, ","));
  log::Info("starting: access allowed to " + allowed);
}

void Daemon::AwaitStopSignal() {
  stop_signals_.async_wait([this](const boost::system::error_code& error, int signal_number) {
    if (!error) BeginShutdown(0, std::string("received ") + ::strsignal(signal_number));
  });
}

void Daemon::AwaitReload() {
  reload_signal_.async_wait([this](const boost::system::error_code& error, int) {
    if (error || context_.stopping) return;
    service_.Reloading();
    Reload(argc_, argv_, {&config_, &pool_, &server_, &context_});
    service_.Reloaded();
    AwaitReload();
  });
}

// Ready once both lanes are warm; either failing to start stops the daemon.
void Daemon::OnLaneReady(const char* lane, const Status& status) {
  if (!status.ok()) {
    log::Error(std::string("cannot start: the ") + lane + " lane could not start: " +
               status.message());
    BeginShutdown(1, "start-up failed");
    return;
  }
  if (++lanes_ready_ < 2) return;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time_).count();
  log::Info("ready: " + std::to_string(config_.workers) + " warm interpreters and " +
            std::to_string(config_.process_workers) + " worker processes in " +
            std::to_string(secs).substr(0, 5) + " s, listening on " + context_.info.socket);
  if (!context_.stopping) service_.Ready();
}

// Shutdown by cancelling: stop accepting, let the pool answer or finish
// every job (on the drain thread, since jobs may take a while), then close
// each session once its replies are written.
void Daemon::BeginShutdown(int code, const std::string& why) {
  if (context_.stopping) return;
  context_.stopping = true;
  exit_code_ = code;
  log::Info("stopping: " + why);
  service_.Stopping(why);
  server_.Stop();
  // Jobs still run to their end; none may wait for ever on a queue.
  queues_.StopWaiting("the daemon is shutting down");
  stop_signals_.cancel();
  reload_signal_.cancel();
  drainer_ = std::thread([this] {
    process_lane_.Shutdown();
    stuck_ = pool_.Shutdown();
    asio::post(io_, [this] { CloseSessions(); });
  });
}

// Every job is answered: sessions close once their replies are written, or
// when kFlushGrace has passed; then the I/O loop runs out of work and ends.
void Daemon::CloseSessions() {
  trimmer_.Stop();
  sessions_.CloseAllWhenFlushed();
  keep_running_.reset();
  flush_deadline_.expires_after(kFlushGrace);
  flush_deadline_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;  // every session closed in time
    log::Warning("stopping: closing " + std::to_string(sessions_.size()) +
                 " connections whose clients did not read their last replies within " +
                 std::to_string(kFlushGrace.count()) + " s");
    sessions_.CloseAll();
  });
  sessions_.WhenEmpty([this] { flush_deadline_.cancel(); });
}

}  // namespace ei
