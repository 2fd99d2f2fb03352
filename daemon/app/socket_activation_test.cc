#include "daemon/app/socket_activation.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace ei::systemd {
namespace {

std::string SocketPath(const char* tag) {
  return "/tmp/ei-activation-test-" + std::to_string(::getpid()) + "-" + tag + ".sock";
}

// A bound AF_UNIX socket of `type` at `path`; listening when `listen`.
int UnixSocket(const std::string& path, int type, bool listen) {
  const int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  ::unlink(path.c_str());
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << path;
  if (listen) {
    EXPECT_EQ(::listen(fd, 8), 0);
  }
  return fd;
}

TEST(CheckListeningUnixSocket, AcceptsAListeningStreamSocketAndGivesItsPath) {
  const std::string path = SocketPath("ok");
  const int fd = UnixSocket(path, SOCK_STREAM, true);
  std::string got;
  EXPECT_EQ(CheckListeningUnixSocket(fd, &got), "");
  EXPECT_EQ(got, path);
  ::close(fd);
  ::unlink(path.c_str());
}

TEST(CheckListeningUnixSocket, SaysWhatIsWrongWithAnythingElse) {
  std::string path;
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  EXPECT_NE(CheckListeningUnixSocket(pair[0], &path).find("not listening"), std::string::npos);
  const std::string dgram_path = SocketPath("dgram");
  const int dgram = UnixSocket(dgram_path, SOCK_DGRAM, false);
  EXPECT_NE(CheckListeningUnixSocket(dgram, &path).find("not a stream"), std::string::npos);
  const int inet = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(inet, 0);
  EXPECT_NE(CheckListeningUnixSocket(inet, &path).find("not an AF_UNIX"), std::string::npos);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  EXPECT_NE(CheckListeningUnixSocket(pipe_fds[0], &path).find("not a socket"), std::string::npos);
  for (int fd : {pair[0], pair[1], dgram, inet, pipe_fds[0], pipe_fds[1]}) ::close(fd);
  ::unlink(dgram_path.c_str());
}

// Runs `check` in a child whose fd 3 is `fd` and whose LISTEN_* variables
// are set as systemd sets them; returns the child's exit status (0: passed).
int InChild(int fd, const char* fds, bool for_us, int (*check)(const std::string& path),
            const std::string& path) {
  const pid_t child = ::fork();
  if (child == 0) {
    if (::dup2(fd, kListenFdsStart) < 0) ::_exit(90);
    const pid_t pid = for_us ? ::getpid() : ::getppid();
    ::setenv("LISTEN_PID", std::to_string(pid).c_str(), 1);
    ::setenv("LISTEN_FDS", fds, 1);
    ::_exit(check(path));
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

int ExpectTaken(const std::string& path) {
  ActivatedSocket got = TakeActivatedSocket();
  if (got.fd != kListenFdsStart) return 1;
  if (!got.error.empty()) return 2;
  if (got.path != path) return 3;
  if (std::getenv("LISTEN_FDS") != nullptr || std::getenv("LISTEN_PID") != nullptr) return 4;
  return 0;
}

int ExpectNotActivated(const std::string&) {
  ActivatedSocket got = TakeActivatedSocket();
  if (got.fd != -1 || !got.error.empty()) return 1;
  return std::getenv("LISTEN_FDS") == nullptr ? 0 : 4;
}

int ExpectTooMany(const std::string&) {
  return TakeActivatedSocket().error.find("exactly one") != std::string::npos ? 0 : 1;
}

TEST(TakeActivatedSocket, TakesFd3WhenTheVariablesAreForThisProcess) {
  const std::string path = SocketPath("activated");
  const int fd = UnixSocket(path, SOCK_STREAM, true);
  EXPECT_EQ(InChild(fd, "1", true, ExpectTaken, path), 0);
  EXPECT_EQ(InChild(fd, "1", false, ExpectNotActivated, path), 0) << "LISTEN_PID of another";
  EXPECT_EQ(InChild(fd, "2", true, ExpectTooMany, path), 0);
  ::close(fd);
  ::unlink(path.c_str());
}

TEST(TakeActivatedSocket, ReportsNothingWithoutTheVariables) {
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_PID");
  ActivatedSocket got = TakeActivatedSocket();
  EXPECT_EQ(got.fd, -1);
  EXPECT_EQ(got.error, "");
}

}  // namespace
}  // namespace ei::systemd
