#include "daemon/net/access_control.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace ei {
namespace {

constexpr uid_t kSelf = 4242;
constexpr uid_t kStranger = 54321;  // no passwd entry on any sane machine

AccessPolicy Make(std::vector<std::string> users, std::vector<std::string> groups) {
  AccessPolicy policy;
  EXPECT_EQ(AccessPolicy::Create(users, groups, kSelf, &policy), "");
  return policy;
}

TEST(ReadPeerCredentials, NamesTheConnectedProcess) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  std::string why;
  std::optional<PeerCredentials> peer = ReadPeerCredentials(pair[0], &why);
  ASSERT_TRUE(peer.has_value()) << why;
  EXPECT_EQ(peer->uid, ::geteuid());
  EXPECT_EQ(peer->pid, ::getpid());
  ::close(pair[0]);
  ::close(pair[1]);
  EXPECT_FALSE(ReadPeerCredentials(pair[0], &why).has_value());
  EXPECT_NE(why.find("SO_PEERCRED"), std::string::npos);
}

TEST(AccessPolicy, AllowsRootAndItsOwnUidByDefault) {
  AccessPolicy policy = Make({}, {});
  EXPECT_EQ(policy.Check({0, 0, 1}), "");
  EXPECT_EQ(policy.Check({kSelf, 100, 1}), "");
  const std::string denied = policy.Check({kStranger, kStranger, 7});
  EXPECT_EQ(denied,
            "access denied: uid 54321 is not allowed to use this daemon; ask an administrator "
            "to add the user or a group to allow_users/allow_groups");
}

TEST(AccessPolicy, AllowsListedUsersByNumberOrName) {
  EXPECT_EQ(Make({"54321"}, {}).Check({kStranger, 1, 1}), "");
  AccessPolicy by_name = Make({"root", "nobody"}, {});
  EXPECT_EQ(by_name.Check({65534, 65534, 1}), "") << "nobody is 65534 on Debian";
  EXPECT_NE(by_name.Check({kStranger, 1, 1}), "");
}

TEST(AccessPolicy, AllowsMembersOfListedGroupsByPrimaryGid) {
  AccessPolicy policy = Make({}, {"54000"});
  EXPECT_EQ(policy.Check({kStranger, 54000, 1}), "");
  EXPECT_NE(policy.Check({kStranger, 54001, 1}), "");
}

TEST(AccessPolicy, ChecksSupplementaryGroupsOfThePeersUser) {
  // root is in group 0 ("root") by its passwd entry; a non-root peer with
  // root's uid cannot exist, so check through a user whose group list the
  // database gives: "nobody" is in "nogroup" (65534).
  AccessPolicy policy = Make({}, {"nogroup"});
  EXPECT_EQ(policy.Check({65534, 12345, 1}), "")
      << "nobody's group list (getgrouplist) holds nogroup even if the socket says gid 12345";
}

TEST(AccessPolicy, NamesUnknownUsersAndGroups) {
  AccessPolicy policy;
  EXPECT_EQ(AccessPolicy::Create({"no-such-user-ei"}, {}, kSelf, &policy),
            "allow_users: there is no user \"no-such-user-ei\"");
  EXPECT_EQ(AccessPolicy::Create({}, {"no-such-group-ei"}, kSelf, &policy),
            "allow_groups: there is no group \"no-such-group-ei\"");
}

TEST(AccessPolicy, DescribesWhoIsAllowed) {
  EXPECT_EQ(Make({"54321"}, {"0"}).Describe(), "root, uid 4242, users 54321, groups 0 (root)");
}

}  // namespace
}  // namespace ei
