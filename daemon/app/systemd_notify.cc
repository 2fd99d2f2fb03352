#include "daemon/app/systemd_notify.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstddef>
#include <cstring>

namespace ei::systemd {

std::string ParseNotifyAddress(std::string_view text, NotifyAddress* out) {
  *out = {};
  out->addr.sun_family = AF_UNIX;
  if (text.empty() || (text[0] != '/' && text[0] != '@')) {
    return "NOTIFY_SOCKET \"" + std::string(text) +
           "\" is neither an absolute path nor an abstract @name";
  }
  if (text.size() > sizeof out->addr.sun_path - 1) {
    return "NOTIFY_SOCKET \"" + std::string(text) + "\" is longer than a Unix socket address";
  }
  std::memcpy(out->addr.sun_path, text.data(), text.size());
  // An abstract address starts with a NUL and is exactly as long as given;
  // a path is NUL-terminated.
  if (text[0] == '@') out->addr.sun_path[0] = '\0';
  out->length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + text.size() +
                                       (text[0] == '/' ? 1 : 0));
  return "";
}

Notifier::Notifier(std::string address, std::chrono::microseconds watchdog)
    : address_(std::move(address)), watchdog_(watchdog) {}

Notifier Notifier::FromEnvironment() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  std::chrono::microseconds watchdog{0};
  if (usec != nullptr && (pid == nullptr || std::strtol(pid, nullptr, 10) == ::getpid())) {
    watchdog = std::chrono::microseconds(std::strtoull(usec, nullptr, 10));
  }
  Notifier notifier(socket != nullptr ? socket : "", watchdog);
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  return notifier;
}

std::string Notifier::Send(std::string_view state) const {
  if (!enabled()) return "";
  NotifyAddress address;
  if (std::string why = ParseNotifyAddress(address_, &address); !why.empty()) return why;
  // A socket per message, as sd_notify does: nothing to share between
  // threads, nothing to reconnect after the manager restarts.
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("cannot create a datagram socket: ") + std::strerror(errno);
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&address.addr), address.length);
  const int error = errno;
  ::close(fd);
  if (sent < 0) {
    return "cannot notify the service manager at " + address_ + ": " + std::strerror(error);
  }
  return "";
}

std::string StatusField(std::string_view text) {
  std::string field = "STATUS=";
  for (char c : text) field += (c == '\n' ? ' ' : c);
  return field;
}

}  // namespace ei::systemd
