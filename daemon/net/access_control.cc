#include "daemon/net/access_control.h"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace ei {
namespace {

// getpw*_r / getgr*_r want a caller's buffer; 16 KiB holds any sane entry.
constexpr std::size_t kEntryBuffer = 16 << 10;

std::optional<unsigned long> ParseId(const std::string& text) {
  unsigned long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<passwd> FindUser(const std::string& name, uid_t uid, std::string* buffer) {
  buffer->resize(kEntryBuffer);
  passwd entry{};
  passwd* found = nullptr;
  if (name.empty()) {
    ::getpwuid_r(uid, &entry, buffer->data(), buffer->size(), &found);
  } else {
    ::getpwnam_r(name.c_str(), &entry, buffer->data(), buffer->size(), &found);
  }
  if (found == nullptr) return std::nullopt;
  return entry;
}

std::optional<gid_t> FindGroup(const std::string& name) {
  std::string buffer(kEntryBuffer, '\0');
  group entry{};
  group* found = nullptr;
  ::getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (found == nullptr) return std::nullopt;
  return found->gr_gid;
}

std::string DescribeGid(gid_t gid) {
  std::string buffer(kEntryBuffer, '\0');
  group entry{};
  group* found = nullptr;
  ::getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found);
  return std::to_string(gid) + (found ? " (" + std::string(found->gr_name) + ")" : "");
}

template <typename Id>
std::string JoinIds(const std::set<Id>& ids, std::string (*describe)(Id)) {
  std::string out;
  for (Id id : ids) out += (out.empty() ? "" : ", ") + describe(id);
  return out;
}

}  // namespace

std::optional<PeerCredentials> ReadPeerCredentials(int fd, std::string* why) {
  ucred cred{};
  socklen_t size = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &size) != 0) {
    *why = std::string("cannot read the peer's credentials (SO_PEERCRED): ") +
           std::strerror(errno);
    return std::nullopt;
  }
  return PeerCredentials{cred.uid, cred.gid, cred.pid};
}

std::string DescribeUid(uid_t uid) {
  std::string buffer;
  std::optional<passwd> user = FindUser("", uid, &buffer);
  return std::to_string(uid) + (user ? " (" + std::string(user->pw_name) + ")" : "");
}

AccessPolicy::AccessPolicy(uid_t self_uid) : self_uid_(self_uid) {}

std::string AccessPolicy::Create(const std::vector<std::string>& users,
                                 const std::vector<std::string>& groups, uid_t self_uid,
                                 AccessPolicy* out) {
  AccessPolicy policy(self_uid);
  for (const std::string& user : users) {
    std::string buffer;
    if (auto id = ParseId(user)) {
      policy.uids_.insert(static_cast<uid_t>(*id));
    } else if (auto entry = FindUser(user, 0, &buffer)) {
      policy.uids_.insert(entry->pw_uid);
    } else {
      return "allow_users: there is no user \"" + user + "\"";
    }
  }
  for (const std::string& name : groups) {
    if (auto id = ParseId(name)) {
      policy.gids_.insert(static_cast<gid_t>(*id));
    } else if (auto gid = FindGroup(name)) {
      policy.gids_.insert(*gid);
    } else {
      return "allow_groups: there is no group \"" + name + "\"";
    }
  }
  *out = std::move(policy);
  return "";
}

bool AccessPolicy::GroupAllowed(const PeerCredentials& peer) const {
  if (gids_.empty()) return false;
  if (gids_.contains(peer.gid)) return true;
  // Supplementary groups belong to the user, not to the socket: ask the
  // group database, as login(1) does when it sets them.
  std::string buffer;
  std::optional<passwd> user = FindUser("", peer.uid, &buffer);
  if (!user) return false;
  int count = 64;
  std::vector<gid_t> list(count);
  while (::getgrouplist(user->pw_name, user->pw_gid, list.data(), &count) < 0) {
    list.resize(count);
  }
  list.resize(count);
  for (gid_t gid : list) {
    if (gids_.contains(gid)) return true;
  }
  return false;
}

std::string AccessPolicy::Check(const PeerCredentials& peer) const {
  if (peer.uid == 0 || peer.uid == self_uid_ || uids_.contains(peer.uid)) return "";
  if (GroupAllowed(peer)) return "";
  return "access denied: uid " + DescribeUid(peer.uid) +
         " is not allowed to use this daemon; ask an administrator to add the user or a "
         "group to allow_users/allow_groups";
}

std::string AccessPolicy::Describe() const {
  std::string out = "root, uid " + DescribeUid(self_uid_);
  if (!uids_.empty()) out += ", users " + JoinIds<uid_t>(uids_, &DescribeUid);
  if (!gids_.empty()) out += ", groups " + JoinIds<gid_t>(gids_, &DescribeGid);
  return out;
}

}  // namespace ei
