#include "daemon/app/systemd_notify.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <string>

namespace ei::systemd {
namespace {

// A fake service manager: a datagram socket that notifications go to.
class FakeManager {
 public:
  // `name` is "/path" or "@abstract", as in $NOTIFY_SOCKET.
  explicit FakeManager(const std::string& name) : name_(name) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    NotifyAddress address;
    EXPECT_EQ(ParseNotifyAddress(name, &address), "");
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address.addr), address.length), 0)
        << "cannot bind the fake NOTIFY_SOCKET " << name;
  }
  ~FakeManager() {
    ::close(fd_);
    if (name_[0] == '/') ::unlink(name_.c_str());
  }
  std::string Receive() {
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
    return n < 0 ? "<nothing>" : std::string(buffer, n);
  }

 private:
  std::string name_;
  int fd_;
};

std::string UniqueName(const char* prefix) {
  return std::string(prefix) + "ei-notify-test-" + std::to_string(::getpid());
}

TEST(ParseNotifyAddress, TakesPathsAndAbstractNames) {
  NotifyAddress address;
  ASSERT_EQ(ParseNotifyAddress("/run/systemd/notify", &address), "");
  EXPECT_STREQ(address.addr.sun_path, "/run/systemd/notify");
  ASSERT_EQ(ParseNotifyAddress("@abc", &address), "");
  EXPECT_EQ(address.addr.sun_path[0], '\0');
  EXPECT_EQ(std::string(address.addr.sun_path + 1, 3), "abc");
  EXPECT_EQ(address.length, offsetof(sockaddr_un, sun_path) + 4) << "no trailing NUL counted";
}

TEST(ParseNotifyAddress, RefusesRelativeEmptyAndOverlongAddresses) {
  NotifyAddress address;
  EXPECT_NE(ParseNotifyAddress("", &address), "");
  EXPECT_NE(ParseNotifyAddress("relative/notify", &address).find("neither"), std::string::npos);
  EXPECT_NE(ParseNotifyAddress("/" + std::string(200, 'x'), &address).find("longer"),
            std::string::npos);
}

TEST(Notifier, SendsOneDatagramToAPathSocket) {
  const std::string path = UniqueName("/tmp/");
  FakeManager manager(path);
  Notifier notifier(path, std::chrono::microseconds(0));
  ASSERT_TRUE(notifier.enabled());
  ASSERT_EQ(notifier.Send("READY=1\nSTATUS=ready: 2 pool interpreters"), "");
  EXPECT_EQ(manager.Receive(), "READY=1\nSTATUS=ready: 2 pool interpreters");
  EXPECT_EQ(manager.Receive(), "<nothing>");
}

TEST(Notifier, SendsToAnAbstractSocket) {
  const std::string name = UniqueName("@");
  FakeManager manager(name);
  ASSERT_EQ(Notifier(name, {}).Send("WATCHDOG=1"), "");
  EXPECT_EQ(manager.Receive(), "WATCHDOG=1");
}

TEST(Notifier, SaysWhyWhenNobodyListens) {
  Notifier notifier(UniqueName("/tmp/nobody-"), {});
  EXPECT_NE(notifier.Send("READY=1").find("cannot notify the service manager"), std::string::npos);
}

TEST(Notifier, IsANoOpWithoutNotifySocket) {
  Notifier notifier;
  EXPECT_FALSE(notifier.enabled());
  EXPECT_EQ(notifier.Send("READY=1"), "");
  EXPECT_EQ(notifier.watchdog_interval().count(), 0);
}

TEST(Notifier, ReadsAndUnsetsTheEnvironment) {
  ::setenv("NOTIFY_SOCKET", "@x", 1);
  ::setenv("WATCHDOG_USEC", "3000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  Notifier notifier = Notifier::FromEnvironment();
  EXPECT_EQ(notifier.address(), "@x");
  EXPECT_EQ(notifier.watchdog_interval(), std::chrono::microseconds(1500000)) << "half, as documented";
  EXPECT_EQ(std::getenv("NOTIFY_SOCKET"), nullptr);
  EXPECT_EQ(std::getenv("WATCHDOG_USEC"), nullptr);
  EXPECT_EQ(std::getenv("WATCHDOG_PID"), nullptr);
}

TEST(Notifier, IgnoresAWatchdogMeantForAnotherProcess) {
  ::setenv("NOTIFY_SOCKET", "@x", 1);
  ::setenv("WATCHDOG_USEC", "3000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
  EXPECT_EQ(Notifier::FromEnvironment().watchdog_interval().count(), 0);
}

TEST(StatusField, KeepsTheSummaryOnOneLine) {
  EXPECT_EQ(StatusField("a\nb"), "STATUS=a b");
}

}  // namespace
}  // namespace ei::systemd
