// A job, its control block (who answers it, stop requests) and its reply.
// Plain data and locks: no Python, so every layer may hold jobs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/job_outcome.h"
#include "daemon/base/mapped_file.h"
#include "daemon/base/unique_fd.h"

namespace ei {

class Worker;

/// What happened to a job, handed to its owner.
struct JobReply {
  enum class Disposition {
    kRan, kShuttingDown, kCancelled, kTimedOut, kLeaseLost, kWorkerCrashed
  };
  Disposition disposition = Disposition::kRan;
  JobOutcome outcome;        // when kRan, or what a stopped job raised
  std::int64_t interpreter_id = -1;  // where it ran (interpreter lane)
  bool given_up = false;  // stopped, did not end in time: its worker was retired
  /// Where it ran in the process lane: the worker's number and pid (0: not there).
  int process_worker = 0;
  long pid = 0;
  /// kWorkerCrashed: how the worker process ended ("died with SIGSEGV").
  std::string crash;
};

/// Where a job may run: the interpreter lane (own-GIL sub-interpreters),
/// the process lane (worker processes; every extension loads), or auto:
/// the daemon decides (daemon/routing/).
enum class Lane { kAuto, kInterpreter, kProcess };

/// How a job refused by a sub-interpreter is handed to the process lane.
enum class Refusal {
  kLoad,  // unpickling it imported a module that refuses: no user code ran
  kRun,   // the job itself imported one: it runs again from the start
};

/// Shared by a job's owner, its queue, the worker running it and the
/// watchdog. Whoever answers first wins; the others drop their answer.
class JobControl {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Stop { kNone, kCancel, kTimeout };
  enum class State { kQueued, kRunning, kFinished };

  JobControl(std::function<void(JobReply)> on_done, std::optional<Clock::time_point> deadline)
      : on_done_(std::move(on_done)), deadline_(deadline) {}

  /// Calls on_done with `reply` unless the job was answered already. Must
  /// not be called with mu_ held. True if this call answered.
  bool Answer(JobReply reply);

  /// Queued -> running on `worker`; false if it was answered already.
  bool BeginRun(Worker* worker);
  void Finish();

  /// Running -> queued again, for another worker: false (and nothing
  /// changed) if it was answered or told to stop meanwhile.
  bool Requeue();

  /// Asks the job to stop. Returns the state it was in; when it was queued,
  /// it is answered (cancelled or timed out) before this returns.
  State RequestStop(Stop why);

  /// Gives up on a job that was told to stop and still runs: calls
  /// `retire(worker)` under mu_ (so the worker cannot finish the
  /// job and take another in between; it must only set flags), then
  /// answers with `reply`. Returns that worker, or nullptr if the job
  /// is no longer running.
  Worker* GiveUp(JobReply reply, const std::function<void(Worker*)>& retire);

  /// The lane the job was given to (the router sets it; a job handed from
  /// the interpreter lane to the process lane changes lanes once).
  void SetLane(Lane lane) { lane_.store(lane); }
  Lane lane() const { return lane_.load(); }

  Stop stop() const { return stop_.load(); }
  bool answered() const { return answered_.load(); }
  std::optional<Clock::time_point> deadline() const { return deadline_; }
  Worker* worker() const;

 private:
  const std::function<void(JobReply)> on_done_;
  const std::optional<Clock::time_point> deadline_;
  std::atomic<bool> answered_{false};
  std::atomic<Stop> stop_{Stop::kNone};
  std::atomic<Lane> lane_{Lane::kInterpreter};
  mutable std::mutex mu_;
  State state_ = State::kQueued;       // guarded by mu_
  Worker* worker_ = nullptr;  // guarded by mu_; set while running
};

/// Whether a job's outcome in a sub-interpreter is CPython's refusal to
/// load an extension module there (ImportError: "... does not support
/// loading in subinterpreters", or PyO3's "... do not yet support
/// subinterpreters"), and at which step; nullopt for any other outcome.
std::optional<Refusal> RefusalOf(const JobOutcome& outcome);

/// pickle.dumps((int, (), {}), protocol=5): a job that does nothing, for
/// health checks and for shrinking the pool.
std::vector<char> NoOpJobPayload();

struct Job {
  std::vector<char> payload;  // pickle of (fn, args, kwargs)
  std::shared_ptr<JobControl> control;
  /// By-value functions the payload refers to.
  std::vector<Definition> definitions;
  /// Gets the job's output when its client asked for it.
  OutputSink on_output;
  /// The job's out-of-band buffers (PROTOCOL.md, "Large data"), if any.
  UniqueFd out_of_band_fd;
  std::vector<std::size_t> out_of_band_lengths;
  /// The session's mapping of that file, when it is the client's reused one.
  std::shared_ptr<MappedFile> out_of_band_map;
  bool share_result = false;  // its client takes descriptors (hello "fds")
  /// The connection that submitted it (0: none); it owns the anonymous
  /// queues the job creates.
  std::uint64_t connection = 0;
  /// The connection's result region, when its client reuses one.
  LendResultSpace lend_result;
  /// Set when the job's connection closed: the job is dropped unrun.
  std::shared_ptr<const std::atomic<bool>> abandoned;
  /// Where the client wants it to run, and whether a job that raised the
  /// sub-interpreter refusal may run again in the process lane.
  Lane lane = Lane::kAuto;
  bool rerun = true;
  /// Set by the router for a job an interpreter may hand back: called
  /// instead of answering when a sub-interpreter refused it (the job is
  /// queued again; its payload and buffers are kept for it).
  std::function<void(Job job, Refusal refusal)> hand_back;

  bool is_abandoned() const { return abandoned && abandoned->load(); }
};

}  // namespace ei
