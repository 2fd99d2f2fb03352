#include "daemon/session_manager.h"

#include <vector>

#include "daemon/session.h"

namespace ei {

void SessionManager::Add(std::shared_ptr<Session> session) {
  sessions_.insert(std::move(session));
}

void SessionManager::Remove(const std::shared_ptr<Session>& session) {
  sessions_.erase(session);
}

void SessionManager::CloseAllWhenFlushed() {
  // Closing removes sessions from the set, so walk a copy.
  std::vector<std::shared_ptr<Session>> open(sessions_.begin(), sessions_.end());
  for (auto& session : open) session->CloseWhenFlushed();
}

}  // namespace ei
