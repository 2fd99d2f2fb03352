#include "daemon/net/flow_gate.h"

#include <boost/asio/post.hpp>

#include "daemon/net/session.h"

namespace ei {

void FlowGate::Wait(const std::shared_ptr<Session>& session) {
  waiting_.push_back(session);
  has_waiting_.store(true);
}

void FlowGate::Wake() {
  if (!has_waiting_.load() || wake_posted_.exchange(true)) return;
  boost::asio::post(io_, [this] {
    wake_posted_.store(false);
    ResumeInTurn();
  });
}

// Each waiting connection, in turn, admits what it has room for; one that
// finds no room again goes back in line (Session::ResumeHeld calls Wait).
// While the daemon's queue is full nobody has room, and the round stops.
void FlowGate::ResumeInTurn() {
  for (std::size_t turns = waiting_.size(); turns > 0 && !waiting_.empty(); --turns) {
    std::shared_ptr<Session> session = waiting_.front().lock();
    waiting_.pop_front();
    if (session == nullptr) continue;  // it closed meanwhile
    if (!session->QueueHasRoom()) {
      waiting_.push_front(session);
      break;
    }
    session->ResumeHeld();
  }
  has_waiting_.store(!waiting_.empty());
}

}  // namespace ei
