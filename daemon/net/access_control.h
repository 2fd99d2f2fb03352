// Who may use the daemon: the peer of every connection is checked with
// SO_PEERCRED before a byte is read from it. Running a job means running
// code as the daemon's user, so this is the security boundary.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ei {

/// The process on the other end of a Unix socket, as the kernel saw it
/// when it connected.
struct PeerCredentials {
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;
};

/// Reads SO_PEERCRED of a connected Unix socket; nullopt and `*why` on error.
std::optional<PeerCredentials> ReadPeerCredentials(int fd, std::string* why);

/// "1001 (bob)", or "1001" when the uid has no passwd entry.
std::string DescribeUid(uid_t uid);

class AccessPolicy {
 public:
  /// Allows root and `self_uid` only.
  explicit AccessPolicy(uid_t self_uid = ::geteuid());

  /// Resolves `users` and `groups` (names or numbers) into `*out`. Returns
  /// "" or names the first one that does not exist.
  static std::string Create(const std::vector<std::string>& users,
                            const std::vector<std::string>& groups, uid_t self_uid,
                            AccessPolicy* out);

  /// "" when `peer` may use the daemon: it is root, the daemon's own uid,
  /// an allowed uid, or its primary group or a supplementary group of its
  /// user (getgrouplist) is allowed. Otherwise the message for the client.
  std::string Check(const PeerCredentials& peer) const;

  /// One line for the log: "root, uid 998, users 1001, groups 997 (ei)".
  std::string Describe() const;

 private:
  bool GroupAllowed(const PeerCredentials& peer) const;

  uid_t self_uid_;
  std::set<uid_t> uids_;
  std::set<gid_t> gids_;
};

}  // namespace ei
