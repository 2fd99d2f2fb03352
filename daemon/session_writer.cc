// The write side of Session. Replies are written by whichever thread has
// them: an interpreter thread writes its job's reply straight to the socket
// (non-blocking) when nothing is queued before it. Only when the socket is
// full does the I/O thread take over, waiting until it is writable again.
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>

#include "daemon/session.h"

namespace ei {

namespace asio = boost::asio;

void Session::Send(nlohmann::json header, std::vector<char> payload, UniqueFd fd) {
  OutFrame frame{proto::EncodeHead(header, payload.size()), std::move(payload), std::move(fd)};
  std::lock_guard lock(send_mu_);
  if (send_closed_) return;
  out_.push_back(std::move(frame));
  if (!waiting_writable_) FlushLocked();
}

// Writes queued frames until the queue is empty or the socket is full.
void Session::FlushLocked() {
  const int fd = socket_.native_handle();
  while (!out_.empty()) {
    OutFrame& frame = out_.front();
    iovec parts[2];
    int count = 0;
    if (frame.sent < frame.head.size()) {
      parts[count++] = {frame.head.data() + frame.sent, frame.head.size() - frame.sent};
    }
    const std::size_t payload_sent = frame.sent > frame.head.size() ? frame.sent - frame.head.size() : 0;
    if (payload_sent < frame.payload.size()) {
      parts[count++] = {frame.payload.data() + payload_sent, frame.payload.size() - payload_sent};
    }
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = static_cast<std::size_t>(count);
    // A descriptor goes with the frame's first bytes (SCM_RIGHTS).
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (frame.fd) {
      message.msg_control = control;
      message.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&message);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      const int passed = frame.fd.get();
      std::memcpy(CMSG_DATA(c), &passed, sizeof passed);
    }
    const ssize_t n = count == 0 ? 0 : ::sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      waiting_writable_ = true;
      asio::post(socket_.get_executor(), [self = shared_from_this()] {
        self->socket_.async_wait(Socket::wait_write, [self](const boost::system::error_code& e) {
          self->OnWritable(e);
        });
      });
      return;
    }
    if (n < 0) {
      // The client is gone; the I/O thread sees the same on its read side,
      // and Close() clears the queue.
      out_.clear();
      break;
    }
    if (n > 0) frame.fd.reset();  // the peer has its copy now
    frame.sent += static_cast<std::size_t>(n);
    if (frame.sent == frame.head.size() + frame.payload.size()) out_.pop_front();
  }
  if (close_when_flushed_) {
    close_when_flushed_ = false;
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->Close(); });
  }
}

void Session::OnWritable(const boost::system::error_code& error) {
  std::lock_guard lock(send_mu_);
  waiting_writable_ = false;
  if (error || send_closed_) return;
  FlushLocked();
}

}  // namespace ei
