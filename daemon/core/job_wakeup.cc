#include "daemon/core/job_wakeup.h"

namespace ei {
namespace {
thread_local JobWakeup* t_current = nullptr;
}  // namespace

JobWakeup* JobWakeup::Current() { return t_current; }

void JobWakeup::SetCurrent(JobWakeup* wakeup) { t_current = wakeup; }

void JobWakeup::Arm(std::uint64_t connection) {
  std::lock_guard lock(mu_);
  fired_ = nullptr;
  connection_ = connection;
}

void JobWakeup::Fire(_object* stop_type) {
  std::lock_guard lock(mu_);
  fired_ = stop_type;
  cv_.notify_all();
}

std::uint64_t JobWakeup::connection() const {
  std::lock_guard lock(mu_);
  return connection_;
}

}  // namespace ei
