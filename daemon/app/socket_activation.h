// Socket activation (sd_listen_fds(3)), done directly: the service manager
// opens the listening socket and passes it as fd 3, announced by
// $LISTEN_FDS and $LISTEN_PID.
#pragma once

#include <string>

namespace ei::systemd {

/// The first descriptor systemd passes (SD_LISTEN_FDS_START).
inline constexpr int kListenFdsStart = 3;

struct ActivatedSocket {
  int fd = -1;        // -1: the daemon was not socket-activated
  std::string path;   // the socket file's path (from getsockname)
  std::string error;  // set when activated, but the socket cannot be used
};

/// Takes the socket from $LISTEN_FDS/$LISTEN_PID when they are meant for
/// this process, checks it (CheckListeningUnixSocket), marks it
/// close-on-exec and unsets the variables. One socket exactly is expected.
ActivatedSocket TakeActivatedSocket();

/// Returns "" when `fd` is a listening AF_UNIX stream socket bound to a
/// file path, and sets `*path`; otherwise says what it is instead.
std::string CheckListeningUnixSocket(int fd, std::string* path);

}  // namespace ei::systemd
