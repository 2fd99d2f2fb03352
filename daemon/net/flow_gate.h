// Flow control: a connection whose next job has no room (the daemon's queue
// is full, or the connection has its window of jobs in flight) stops being
// read until there is, instead of being refused. Connections waiting for
// room get it in turn, first come, first served, one job each while room is
// short. I/O thread, but for Wake.
#pragma once

#include <atomic>
#include <deque>
#include <memory>

#include <boost/asio/io_context.hpp>

namespace ei {

class Session;

class FlowGate {
 public:
  explicit FlowGate(boost::asio::io_context& io) : io_(io) {}
  FlowGate(const FlowGate&) = delete;
  FlowGate& operator=(const FlowGate&) = delete;

  /// I/O thread: `session` holds a run until there is room; it goes to the
  /// back of the line.
  void Wait(const std::shared_ptr<Session>& session);

  /// Any thread: a job ended, so there may be room. Cheap when nobody waits.
  void Wake();

  /// I/O thread: connections waiting now.
  std::size_t waiting() const { return waiting_.size(); }

 private:
  void ResumeInTurn();

  boost::asio::io_context& io_;
  std::deque<std::weak_ptr<Session>> waiting_;  // I/O thread only
  std::atomic<bool> has_waiting_{false};
  std::atomic<bool> wake_posted_{false};
};

}  // namespace ei
