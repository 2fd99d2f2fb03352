#include "daemon/base/fd_passing.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace ei {

Received ReceiveWithFds(int socket, char* buffer, std::size_t size, std::deque<UniqueFd>* fds,
                        bool block) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerRead)];
  iovec part{buffer, size};
  msghdr message{};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  Received got;
  got.bytes = ::recvmsg(socket, &message, (block ? 0 : MSG_DONTWAIT) | MSG_CMSG_CLOEXEC);
  if (got.bytes < 0) {
    got.error = errno;
    return got;
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds->emplace_back(fd);
    }
  }
  got.fds_truncated = (message.msg_flags & MSG_CTRUNC) != 0;
  return got;
}

ssize_t SendWithFd(int socket, const iovec* parts, std::size_t count, int pass_fd, bool block) {
  msghdr message{};
  message.msg_iov = const_cast<iovec*>(parts);
  message.msg_iovlen = count;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (pass_fd >= 0) {
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &pass_fd, sizeof pass_fd);
  }
  return ::sendmsg(socket, &message, (block ? 0 : MSG_DONTWAIT) | MSG_NOSIGNAL);
}

}  // namespace ei
