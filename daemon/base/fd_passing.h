// Unix socket I/O that carries file descriptors beside the bytes
// (SCM_RIGHTS): frames with large data bring or take a memfd.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <deque>

#include "daemon/base/unique_fd.h"

namespace ei {

/// What one ReceiveWithFds call got.
struct Received {
  ssize_t bytes = 0;        // as recvmsg returns it: 0 at end of stream, < 0 on error
  int error = 0;            // errno when bytes < 0
  bool fds_truncated = false;  // more descriptors came than fit: some were lost
};

/// The most descriptors one read takes.
inline constexpr std::size_t kMaxFdsPerRead = 16;

/// One recvmsg into `buffer` (non-blocking unless `block`): descriptors
/// that came with the bytes are appended to `fds`, close-on-exec, in
/// arrival order.
Received ReceiveWithFds(int socket, char* buffer, std::size_t size, std::deque<UniqueFd>* fds,
                        bool block = false);

/// One sendmsg of `parts` (non-blocking unless `block`); `pass_fd` (if >= 0)
/// goes with the first byte. Returns what sendmsg returns; errno is left as
/// it set it.
ssize_t SendWithFd(int socket, const iovec* parts, std::size_t count, int pass_fd,
                   bool block = false);

}  // namespace ei
