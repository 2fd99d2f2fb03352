// Jobs, their control blocks, and the queues that feed them to interpreter
// threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "daemon/mapped_file.h"
#include "daemon/python/job_runner.h"

namespace ei {

class Interpreter;

/// What happened to a job, handed to its owner.
struct JobReply {
  enum class Disposition { kRan, kShuttingDown, kCancelled, kTimedOut, kLeaseLost };
  Disposition disposition = Disposition::kRan;
  python::JobOutcome outcome;        // when kRan, or what a stopped job raised
  std::int64_t interpreter_id = -1;  // where it ran
  bool given_up = false;  // stopped, did not end in time: its interpreter was retired
};

/// Shared by a job's owner, its queue, the interpreter running it and the
/// pool's watchdog. Whoever answers first wins; the others drop their answer.
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

  /// Queued -> running on `interpreter`; false if it was answered already.
  bool BeginRun(Interpreter* interpreter);
  void Finish();

  /// Asks the job to stop. Returns the state it was in; when it was queued,
  /// it is answered (cancelled or timed out) before this returns.
  State RequestStop(Stop why);

  /// Gives up on a job that was told to stop and still runs: calls
  /// `retire(interpreter)` under mu_ (so the interpreter cannot finish the
  /// job and take another in between; it must only set flags), then
  /// answers with `reply`. Returns that interpreter, or nullptr if the job
  /// is no longer running.
  Interpreter* GiveUp(JobReply reply, const std::function<void(Interpreter*)>& retire);

  Stop stop() const { return stop_.load(); }
  bool answered() const { return answered_.load(); }
  std::optional<Clock::time_point> deadline() const { return deadline_; }
  Interpreter* interpreter() const;

 private:
  const std::function<void(JobReply)> on_done_;
  const std::optional<Clock::time_point> deadline_;
  std::atomic<bool> answered_{false};
  std::atomic<Stop> stop_{Stop::kNone};
  mutable std::mutex mu_;
  State state_ = State::kQueued;       // guarded by mu_
  Interpreter* interpreter_ = nullptr;  // guarded by mu_; set while running
};

struct Job {
  std::vector<char> payload;  // pickle of (fn, args, kwargs)
  std::shared_ptr<JobControl> control;
  /// By-value functions the payload refers to.
  std::vector<python::Definition> definitions;
  /// Gets the job's output when its client asked for it.
  python::OutputSink on_output;
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
  python::LendResultSpace lend_result;
  /// Set when the job's connection closed: the job is dropped unrun.
  std::shared_ptr<const std::atomic<bool>> abandoned;

  bool is_abandoned() const { return abandoned && abandoned->load(); }
};

/// A FIFO of jobs that interpreter threads block on.
class JobQueue {
 public:
  /// False when the queue is closed: the caller still owns `job`.
  bool Push(Job& job);

  /// The next job; blocks while the queue is open and empty. nullopt once
  /// it is closed and empty.
  std::optional<Job> Pop();

  /// Stops Push; Pop still hands out what is queued.
  void Close();

  /// Closes the queue and takes every job still in it.
  std::vector<Job> CloseAndTake();

  std::size_t size() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Job> jobs_;
  bool closed_ = false;
};

}  // namespace ei
