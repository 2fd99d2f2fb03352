// lease and release: the interpreters a connection holds for itself
// (PROTOCOL.md, "Leases"). I/O thread only.
#pragma once

#include <cstdint>
#include <set>

#include "daemon/core/scheduler.h"
#include "proto/frame_codec.h"

namespace ei {

class Session;

class LeaseRequests {
 public:
  explicit LeaseRequests(Session& session) : session_(session) {}
  LeaseRequests(const LeaseRequests&) = delete;
  LeaseRequests& operator=(const LeaseRequests&) = delete;

  void OnLease(proto::Frame& frame);
  void OnRelease(proto::Frame& frame);

  /// Whether this connection holds `lease`.
  bool Holds(std::uint64_t lease) const { return leases_.contains(lease); }
  /// A lease whose interpreter was retired: it has ended.
  void Forget(std::uint64_t lease) { leases_.erase(lease); }

  /// The connection closed: every lease it holds ends.
  void Close();

 private:
  void OnGranted(std::uint64_t request_id, const LeaseGrant& grant);

  Session& session_;
  std::set<std::uint64_t> leases_;
};

}  // namespace ei
