// The open sessions, so shutdown can reach them all. I/O thread only.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <set>

namespace ei {

class Session;

class SessionManager {
 public:
  void Add(std::shared_ptr<Session> session);
  void Remove(const std::shared_ptr<Session>& session);

  /// Closes every session once its queued replies are written.
  void CloseAllWhenFlushed();

  /// Closes every session now, written or not.
  void CloseAll();

  /// Calls `done` once, when the last session is removed (at once if none
  /// is open).
  void WhenEmpty(std::function<void()> done);

  std::size_t size() const { return sessions_.size(); }

 private:
  std::set<std::shared_ptr<Session>> sessions_;
  std::function<void()> on_empty_;
};

}  // namespace ei
