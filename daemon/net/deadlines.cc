#include "daemon/net/deadlines.h"

#include <algorithm>

#include "daemon/base/log.h"
#include "daemon/net/session.h"

namespace ei {

namespace {

// How long a connection dropped for a deadline may take to be sent its
// error frame before it is closed regardless (it may not be reading).
constexpr std::chrono::seconds kDropGrace{1};

std::chrono::steady_clock::duration Seconds(double seconds) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(seconds));
}

std::string Describe(double seconds) {
  std::string text = std::to_string(seconds);
  text.erase(text.find_last_not_of('0') + 1);
  if (text.back() == '.') text.pop_back();
  return text;
}

}  // namespace

Deadlines::Deadlines(Session& session) : session_(session), timer_(session.executor()) {}

void Deadlines::NoteBytes(bool frame_done) {
  const Clock::time_point now = Clock::now();
  const ConnectionLimits& limits = session_.context().connection_limits;
  if (frame_done) {
    in_frame_ = false;
    last_frame_ = now;
    const double idle = limits.idle_timeout_seconds;
    if (idle > 0 && timer_due_ == Clock::time_point::max()) ArmTimer(now + Seconds(idle));
    return;
  }
  if (in_frame_) return;
  in_frame_ = true;
  frame_started_ = now;
  ArmTimer(now + Seconds(limits.frame_deadline_seconds));
}

void Deadlines::ArmTimer(Clock::time_point due) {
  if (session_.closed() || due >= timer_due_) return;
  timer_due_ = due;
  timer_.expires_at(due);
  timer_.async_wait([this, self = session_.shared_from_this()](
                        const boost::system::error_code& error) { OnTimer(error); });
}

void Deadlines::OnTimer(const boost::system::error_code& error) {
  if (error == boost::asio::error::operation_aborted || session_.closed()) return;
  timer_due_ = Clock::time_point::max();
  if (session_.closing()) {
    session_.Close();  // its last frame had time to go out (kDropGrace)
    return;
  }
  const Clock::time_point now = Clock::now();
  const double deadline_seconds = session_.context().connection_limits.frame_deadline_seconds;
  const auto deadline = Seconds(deadline_seconds);
  if (in_frame_ && now - frame_started_ >= deadline) {
    DropFor("too_slow", "a frame was not complete " + Describe(deadline_seconds) +
                            " s after it started (frame_deadline)");
    return;
  }
  if (in_frame_) ArmTimer(frame_started_ + deadline);
  CheckIdle(now);
}

// Idle: no frame since, and no job in flight. A job that finishes restarts
// the clock, as a frame does.
void Deadlines::CheckIdle(Clock::time_point now) {
  const double seconds = session_.context().connection_limits.idle_timeout_seconds;
  if (seconds <= 0) return;
  const auto timeout = Seconds(seconds);
  Clock::time_point last_job_done = last_frame_;
  const bool busy = session_.Busy(&last_job_done) || in_frame_;
  const Clock::time_point idle_since = std::max(last_frame_, last_job_done);
  if (busy) {
    ArmTimer(now + timeout);  // looked at again then
  } else if (now - idle_since >= timeout) {
    DropFor("idle_timeout", "connection closed after " + Describe(seconds) +
                                " s without a request or a job in flight (idle_timeout)");
  } else {
    ArmTimer(idle_since + timeout);
  }
}

// One fatal error frame, then close: once it is written, or after
// kDropGrace if the client does not read.
void Deadlines::DropFor(std::string_view code, const std::string& why) {
  log::Warning((code == "too_slow" ? "client too slow: dropped: connection "
                                   : "idle connection closed: connection ") +
               std::to_string(session_.id()) + ": " + why);
  session_.SendError(nullptr, code, why, /*fatal=*/true);
  ArmTimer(Clock::now() + kDropGrace);
}

}  // namespace ei
