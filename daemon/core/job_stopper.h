// Stops jobs: at their deadline or on cancel, a queued job is answered at
// once and a running one is interrupted; one that does not end within the
// grace period is given up, and its worker with it. Any kind of worker.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "daemon/core/job.h"
#include "daemon/core/watchdog.h"
#include "daemon/core/worker.h"

namespace ei {

class JobStopper {
 public:
  /// Stops the jobs of `lane`: a deadline that passes once its job has
  /// moved to another lane is that lane's to act on. `mark(worker)` runs
  /// under the stopped job's lock when its worker is given up (it must only
  /// set flags); `retire(worker)` runs right after the job is answered, to
  /// replace the worker. Both on the watchdog thread.
  JobStopper(Lane lane, std::chrono::milliseconds grace, std::function<void(Worker*)> mark,
             std::function<void(Worker*)> retire)
      : lane_(lane), grace_(grace), mark_(std::move(mark)), retire_(std::move(retire)) {}
  JobStopper(const JobStopper&) = delete;
  JobStopper& operator=(const JobStopper&) = delete;

  /// Watches the job's deadline, if it has one.
  void Track(const std::shared_ptr<JobControl>& control);

  /// Cancels the job; returns the state it was in.
  JobControl::State Cancel(const std::shared_ptr<JobControl>& control);

  /// Drops every pending timer and joins the watchdog thread. Idempotent.
  void Stop() { watchdog_.Stop(); }

 private:
  void StopRunning(const std::shared_ptr<JobControl>& control);
  void OnGraceOver(const std::shared_ptr<JobControl>& control);

  const Lane lane_;
  const std::chrono::milliseconds grace_;
  const std::function<void(Worker*)> mark_;
  const std::function<void(Worker*)> retire_;
  Watchdog watchdog_;  // last: its callbacks use the members above
};

}  // namespace ei
