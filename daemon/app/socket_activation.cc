#include "daemon/app/socket_activation.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstddef>
#include <cstring>

namespace ei::systemd {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

int IntOption(int fd, int option, std::string* why) {
  int value = 0;
  socklen_t size = sizeof value;
  if (::getsockopt(fd, SOL_SOCKET, option, &value, &size) != 0) {
    *why = Errno("fd " + std::to_string(fd) + " is not a socket");
    return -1;
  }
  return value;
}

void UnsetListenVariables() {
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
}

}  // namespace

std::string CheckListeningUnixSocket(int fd, std::string* path) {
  std::string why;
  const int domain = IntOption(fd, SO_DOMAIN, &why);
  if (!why.empty()) return why;
  const int type = IntOption(fd, SO_TYPE, &why);
  const int listening = IntOption(fd, SO_ACCEPTCONN, &why);
  if (!why.empty()) return why;
  const std::string name = "the socket passed as fd " + std::to_string(fd);
  if (domain != AF_UNIX) return name + " is not an AF_UNIX socket (ListenStream= must be a path)";
  if (type != SOCK_STREAM) return name + " is not a stream socket (use ListenStream=)";
  if (!listening) return name + " is not listening (Accept=no is required)";
  sockaddr_un addr{};
  socklen_t size = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size) != 0) {
    return Errno("cannot read the address of " + name);
  }
  if (size <= offsetof(sockaddr_un, sun_path) || addr.sun_path[0] == '\0') {
    return name + " has no file path (an abstract or unnamed address is not allowed)";
  }
  *path = std::string(addr.sun_path, strnlen(addr.sun_path, sizeof addr.sun_path));
  return "";
}

ActivatedSocket TakeActivatedSocket() {
  ActivatedSocket result;
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  if (pid == nullptr || fds == nullptr) return result;
  // Variables meant for another process (our parent) are not ours to use.
  if (std::strtol(pid, nullptr, 10) != ::getpid()) {
    UnsetListenVariables();
    return result;
  }
  const long count = std::strtol(fds, nullptr, 10);
  UnsetListenVariables();
  if (count < 1) return result;
  if (count > 1) {
    result.error = "socket activation passed " + std::to_string(count) +
                   " sockets; extrainterpreters.socket must have exactly one ListenStream=";
    return result;
  }
  result.fd = kListenFdsStart;
  result.error = CheckListeningUnixSocket(result.fd, &result.path);
  if (result.error.empty() && ::fcntl(result.fd, F_SETFD, FD_CLOEXEC) != 0) {
    result.error = Errno("cannot mark fd 3 close-on-exec");
  }
  return result;
}

}  // namespace ei::systemd
