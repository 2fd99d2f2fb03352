// The clock side of a connection: the frame deadline (a started frame must
// finish arriving in time) and the idle timeout (no frame and no job in
// flight for too long). I/O thread only.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include <boost/asio/steady_timer.hpp>

namespace ei {

class Session;

/// One steady_timer serves both deadlines. It is re-armed only when a
/// deadline moves earlier; when it fires, OnTimer works out what is due now
/// and arms the next one, so reads that complete frames cost no timer
/// operations.
class Deadlines {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Deadlines(Session& session);
  Deadlines(const Deadlines&) = delete;
  Deadlines& operator=(const Deadlines&) = delete;

  /// Called for every chunk the decoder took: `frame_done` when it
  /// completed a frame, else part of a frame has arrived.
  void NoteBytes(bool frame_done);

  /// The connection closed: no more timers.
  void Cancel() { timer_.cancel(); }

 private:
  void ArmTimer(Clock::time_point due);
  void OnTimer(const boost::system::error_code& error);
  void CheckIdle(Clock::time_point now);
  void DropFor(std::string_view code, const std::string& why);

  Session& session_;
  boost::asio::steady_timer timer_;
  Clock::time_point timer_due_ = Clock::time_point::max();  // max: not armed
  bool in_frame_ = false;  // part of a frame has arrived
  Clock::time_point frame_started_;
  Clock::time_point last_frame_ = Clock::now();
};

}  // namespace ei
