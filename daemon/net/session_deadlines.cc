// The clock side of Session: the frame deadline (a started frame must
// finish arriving in time) and the idle timeout (no frame and no job in
// flight for too long). One steady_timer serves both, on the I/O thread. It
// is re-armed only when a deadline moves earlier; when it fires, OnTimer
// works out what is due now and arms the next one, so reads that complete
// frames cost no timer operations.
#include <algorithm>
#include <chrono>

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

// Called for every chunk the decoder took: `frame_done` when it completed a
// frame, else part of a frame has arrived.
void Session::NoteBytes(bool frame_done) {
  const Clock::time_point now = Clock::now();
  if (frame_done) {
    in_frame_ = false;
    last_frame_ = now;
    const double idle = context_.connection_limits.idle_timeout_seconds;
    if (idle > 0 && timer_due_ == Clock::time_point::max()) ArmTimer(now + Seconds(idle));
    return;
  }
  if (in_frame_) return;
  in_frame_ = true;
  frame_started_ = now;
  ArmTimer(now + Seconds(context_.connection_limits.frame_deadline_seconds));
}

void Session::ArmTimer(Clock::time_point due) {
  if (closed_ || due >= timer_due_) return;
  timer_due_ = due;
  timer_.expires_at(due);
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
    self->OnTimer(error);
  });
}

void Session::OnTimer(const boost::system::error_code& error) {
  if (error == boost::asio::error::operation_aborted || closed_) return;
  timer_due_ = Clock::time_point::max();
  if (closing_) {
    Close();  // the error frame had kDropGrace to go out
    return;
  }
  const Clock::time_point now = Clock::now();
  const auto deadline = Seconds(context_.connection_limits.frame_deadline_seconds);
  if (in_frame_ && now - frame_started_ >= deadline) {
    DropForDeadline("too_slow", "a frame was not complete " +
                                    Describe(context_.connection_limits.frame_deadline_seconds) +
                                    " s after it started (frame_deadline)");
    return;
  }
  if (in_frame_) ArmTimer(frame_started_ + deadline);
  CheckIdle(now);
}

// Idle: no frame since, and no job in flight. A job that finishes restarts
// the clock, as a frame does.
void Session::CheckIdle(Clock::time_point now) {
  const double seconds = context_.connection_limits.idle_timeout_seconds;
  if (seconds <= 0) return;
  const auto timeout = Seconds(seconds);
  Clock::time_point idle_since = last_frame_;
  // A put or get blocked on a queue is a request in flight, like a job.
  bool busy = in_frame_ || context_.queues->IsWaiting(id_);
  {
    std::lock_guard lock(jobs_mu_);
    busy = busy || !jobs_.empty();
    idle_since = std::max(idle_since, last_job_done_);
  }
  if (busy) {
    ArmTimer(now + timeout);  // looked at again then
  } else if (now - idle_since >= timeout) {
    DropForDeadline("idle_timeout", "connection closed after " + Describe(seconds) +
                                        " s without a request or a job in flight "
                                        "(idle_timeout)");
  } else {
    ArmTimer(idle_since + timeout);
  }
}

// One fatal error frame, then close: once it is written, or after
// kDropGrace if the client does not read.
void Session::DropForDeadline(std::string_view code, const std::string& why) {
  log::Warning((code == "too_slow" ? "client too slow: dropped: connection "
                                   : "idle connection closed: connection ") +
               std::to_string(id_) + ": " + why);
  SendError(nullptr, code, why, /*fatal=*/true);
  ArmTimer(Clock::now() + kDropGrace);
}

}  // namespace ei
