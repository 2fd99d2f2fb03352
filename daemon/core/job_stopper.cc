#include "daemon/core/job_stopper.h"

namespace ei {

// Deadlines: at the job's deadline a queued job is answered as timed out, a
// running one is told to stop.
void JobStopper::Track(const std::shared_ptr<JobControl>& control) {
  if (!control->deadline()) return;
  watchdog_.Schedule(*control->deadline(), [this, weak = std::weak_ptr<JobControl>(control)] {
    std::shared_ptr<JobControl> control = weak.lock();
    if (control == nullptr || control->answered() || control->lane() != lane_) return;
    if (control->RequestStop(JobControl::Stop::kTimeout) == JobControl::State::kRunning) {
      StopRunning(control);
    }
  });
}

JobControl::State JobStopper::Cancel(const std::shared_ptr<JobControl>& control) {
  const JobControl::State state = control->RequestStop(JobControl::Stop::kCancel);
  if (state == JobControl::State::kRunning) StopRunning(control);
  return state;
}

void JobStopper::StopRunning(const std::shared_ptr<JobControl>& control) {
  Worker* worker = control->worker();
  if (worker == nullptr) return;  // finished meanwhile
  worker->Interrupt(control);
  watchdog_.Schedule(JobControl::Clock::now() + grace_,
                     [this, weak = std::weak_ptr<JobControl>(control)] {
                       if (auto control = weak.lock()) OnGraceOver(control);
                     });
}

void JobStopper::OnGraceOver(const std::shared_ptr<JobControl>& control) {
  if (control->lane() != lane_) return;  // handed to another lane meanwhile
  JobReply reply;
  reply.disposition = control->stop() == JobControl::Stop::kCancel
                          ? JobReply::Disposition::kCancelled
                          : JobReply::Disposition::kTimedOut;
  reply.given_up = true;
  Worker* stuck = control->GiveUp(std::move(reply), mark_);
  if (stuck != nullptr) retire_(stuck);
}

}  // namespace ei
