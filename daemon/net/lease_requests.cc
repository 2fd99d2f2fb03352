#include "daemon/net/lease_requests.h"

#include <boost/asio/post.hpp>

#include "daemon/base/log.h"
#include "daemon/net/session.h"

namespace ei {

namespace asio = boost::asio;
using Json = nlohmann::json;
using proto::Frame;

// {"type": "lease", "id": 2, "lane": "process"}
void LeaseRequests::OnLease(Frame& frame) {
  const std::uint64_t request_id = frame.header["id"].get<std::uint64_t>();
  const Json lane = frame.header.value("lane", Json("interpreter"));
  if (lane != "interpreter" && lane != "process") {
    session_.SendError(frame.header["id"], "bad_request",
                       "\"lane\" of a lease must be \"interpreter\" or \"process\", not " +
                           lane.dump());
    return;
  }
  session_.context().pool->Lease(
      lane == "process" ? Lane::kProcess : Lane::kInterpreter,
      [this, self = session_.shared_from_this(), request_id](LeaseGrant grant) {
        asio::post(self->executor(),
                   [this, self, request_id, grant]() { OnGranted(request_id, grant); });
      });
}

void LeaseRequests::OnGranted(std::uint64_t request_id, const LeaseGrant& grant) {
  if (!grant.ok) {
    session_.SendError(Json(request_id), grant.error_code, grant.message);
    return;
  }
  if (session_.closed()) {
    // The client left while the lease was being made: give it straight back.
    session_.context().pool->Release(grant.lease_id, [] {});
    return;
  }
  leases_.insert(grant.lease_id);
  const bool process = grant.process_worker > 0;
  log::Info("lease granted: lease " + std::to_string(grant.lease_id) + " to connection " +
            std::to_string(session_.id()) +
            (process ? " on process worker " + std::to_string(grant.process_worker) + " (pid " +
                           std::to_string(grant.pid) + ")"
                     : " on interpreter " + std::to_string(grant.interpreter_id)));
  Json reply = {{"type", "lease"},
                {"id", request_id},
                {"lease", grant.lease_id},
                {"lane", process ? "process" : "interpreter"},
                {"interpreter", grant.interpreter_id}};
  if (process) {
    reply["worker"] = grant.process_worker;
    reply["pid"] = grant.pid;
  }
  session_.Send(reply);
}

// {"type": "release", "id": 3, "lease": 5}
void LeaseRequests::OnRelease(Frame& frame) {
  const Json& id = frame.header["id"];
  const Json& lease = frame.header["lease"];
  if (!lease.is_number_unsigned()) {
    session_.SendError(id, "bad_request",
                       "release needs an unsigned integer \"lease\", not " + lease.dump());
    return;
  }
  const std::uint64_t lease_id = lease.get<std::uint64_t>();
  if (leases_.erase(lease_id) == 0) {
    session_.SendError(id, "unknown_lease",
                       "lease " + lease.dump() + " is not held by this connection");
    return;
  }
  auto reply = [self = session_.shared_from_this(), id, lease_id]() {
    asio::post(self->executor(), [self, id, lease_id]() {
      if (!self->closed()) self->Send({{"type", "release"}, {"id", id}, {"lease", lease_id}});
    });
  };
  if (!session_.context().pool->Release(lease_id, reply)) {
    session_.SendError(id, "unknown_lease", "lease " + lease.dump() + " has already ended");
  }
}

void LeaseRequests::Close() {
  for (std::uint64_t lease : leases_) session_.context().pool->Release(lease, [] {});
  if (!leases_.empty()) {
    log::Info("leases released: " + std::to_string(leases_.size()) + " of connection " +
              std::to_string(session_.id()) + ", which closed");
  }
  leases_.clear();
}

}  // namespace ei
