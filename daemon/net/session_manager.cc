#include "daemon/net/session_manager.h"

#include <utility>
#include <vector>

#include "daemon/net/session.h"

namespace ei {

void SessionManager::Add(std::shared_ptr<Session> session) {
  sessions_.insert(std::move(session));
}

void SessionManager::Remove(const std::shared_ptr<Session>& session) {
  sessions_.erase(session);
  if (sessions_.empty() && on_empty_) std::exchange(on_empty_, nullptr)();
}

void SessionManager::CloseAllWhenFlushed() {
  // Closing removes sessions from the set, so walk a copy.
  std::vector<std::shared_ptr<Session>> open(sessions_.begin(), sessions_.end());
  for (auto& session : open) session->CloseWhenFlushed();
}

void SessionManager::CloseAll() {
  std::vector<std::shared_ptr<Session>> open(sessions_.begin(), sessions_.end());
  for (auto& session : open) session->Close();
}

void SessionManager::WhenEmpty(std::function<void()> done) {
  if (sessions_.empty()) {
    done();
    return;
  }
  on_empty_ = std::move(done);
}

}  // namespace ei
