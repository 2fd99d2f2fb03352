// What a job's control block knows of the worker running it: enough to stop
// the job and to give the worker up, whatever kind of worker it is.
#pragma once

#include <cstdint>
#include <memory>

namespace ei {

class JobControl;
struct JobReply;

class Worker {
 public:
  virtual ~Worker() = default;

  /// Raises the job's stop exception (JobCancelled or TimeoutError) in it,
  /// if `control` is still the job running here. Any thread; does not block.
  virtual void Interrupt(const std::shared_ptr<JobControl>& control) = 0;

  /// Takes no more jobs after the current one and is never reused. Only
  /// sets a flag: safe under other locks.
  virtual void MarkRetired() = 0;

  /// The daemon's number for this worker (status, logs).
  virtual int worker_id() const = 0;

  /// Says in `reply` where its job ran, as replies name it (an
  /// interpreter id, or a process worker and its pid).
  virtual void NoteWhere(JobReply& reply) const = 0;
};

}  // namespace ei
