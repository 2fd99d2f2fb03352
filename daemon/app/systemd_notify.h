// The service manager's notify protocol (sd_notify(3)), spoken directly: one
// datagram of newline-separated "KEY=value" lines to $NOTIFY_SOCKET. No
// libsystemd needed; with no $NOTIFY_SOCKET every call is a no-op.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <string>
#include <string_view>

namespace ei::systemd {

/// A parsed $NOTIFY_SOCKET: a file path ("/run/systemd/notify") or an
/// abstract name ("@name", sent with a leading NUL byte).
struct NotifyAddress {
  sockaddr_un addr{};
  socklen_t length = 0;
};

/// Parses `text` into `*out`. Returns "" or why it is not a usable address.
std::string ParseNotifyAddress(std::string_view text, NotifyAddress* out);

class Notifier {
 public:
  /// Disabled: every Send is a no-op.
  Notifier() = default;

  /// Sends to `address` (as in $NOTIFY_SOCKET); `watchdog` is the
  /// service's WatchdogSec (zero: no watchdog).
  Notifier(std::string address, std::chrono::microseconds watchdog);

  /// Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID (the watchdog
  /// is ours only when WATCHDOG_PID is unset or our pid), then unsets them
  /// so that code run by jobs does not see them.
  static Notifier FromEnvironment();

  bool enabled() const { return !address_.empty(); }
  const std::string& address() const { return address_; }

  /// How often systemd wants WATCHDOG=1: half of WatchdogSec, as sd_watchdog_enabled(3)
  /// recommends. Zero when there is no watchdog.
  std::chrono::microseconds watchdog_interval() const { return watchdog_ / 2; }

  /// Sends `state`, e.g. "READY=1\nSTATUS=ready". Thread-safe. Returns ""
  /// (also when disabled) or why the datagram could not be sent.
  std::string Send(std::string_view state) const;

 private:
  std::string address_;
  std::chrono::microseconds watchdog_{0};
};

/// "STATUS=<text>" with newlines replaced, so the text stays one field.
std::string StatusField(std::string_view text);

}  // namespace ei::systemd
