// The write side of Session. Replies are written by whichever thread has
// them: an interpreter thread writes its job's reply straight to the socket
// (non-blocking) when nothing is queued before it. Only when the socket is
// full does the I/O thread take over, waiting until it is writable again.
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>

#include "daemon/base/log.h"
#include "daemon/net/session.h"

namespace ei {

namespace asio = boost::asio;

void Session::Send(nlohmann::json header, std::vector<char> payload, UniqueFd fd) {
  OutFrame frame{proto::EncodeHead(header, payload.size()), std::move(payload), std::move(fd)};
  const std::size_t frame_bytes = frame.head.size() + frame.payload.size();
  std::lock_guard lock(send_mu_);
  if (send_closed_) return;
  if (OverOutputLimitLocked(frame_bytes)) return;
  out_.push_back(std::move(frame));
  out_bytes_ += frame_bytes;
  if (!waiting_writable_) FlushLocked();
}

// A client that does not read must not make the daemon hold its replies
// without bound. The frame being written does not count, and a frame is
// always taken when none waits behind it, however large (frames are bounded
// by max_frame_bytes): a big result still reaches a client that reads it
// slowly. Past that, the connection is dropped. Any thread; send_mu_ held.
bool Session::OverOutputLimitLocked(std::size_t frame_bytes) {
  const std::size_t limit = context_.connection_limits.max_output_buffer;
  if (out_.empty()) return false;
  const OutFrame& writing = out_.front();
  const std::size_t waiting =
      out_bytes_ - (writing.head.size() + writing.payload.size() - writing.sent);
  if (waiting == 0 || waiting + frame_bytes <= limit) return false;
  log::Warning("client too slow: dropped: connection " + std::to_string(id_) + " did not read " +
               std::to_string(out_bytes_) + " bytes of replies (" + std::to_string(waiting) +
               " not started); " +
               std::to_string(frame_bytes) + " more would pass max_output_buffer (" +
               std::to_string(limit) + ")");
  // No more writes from here on; the I/O thread closes the socket.
  send_closed_ = true;
  out_.clear();
  out_bytes_ = 0;
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->Close(); });
  return true;
}

// Writes queued frames until the queue is empty or the socket is full.
// Replies that queued up while the socket was busy go out together: one
// sendmsg takes up to kBatchFrames of them (a frame with a descriptor only
// at the front, since the descriptor goes with the batch's first bytes).
void Session::FlushLocked() {
  constexpr std::size_t kBatchFrames = 64;
  const int fd = socket_.native_handle();
  while (!out_.empty()) {
    iovec parts[2 * kBatchFrames];
    std::size_t count = 0;
    for (std::size_t i = 0; i < out_.size() && i < kBatchFrames; ++i) {
      OutFrame& frame = out_[i];
      if (i > 0 && frame.fd) break;
      if (frame.sent < frame.head.size()) {
        parts[count++] = {frame.head.data() + frame.sent, frame.head.size() - frame.sent};
      }
      const std::size_t payload_sent =
          frame.sent > frame.head.size() ? frame.sent - frame.head.size() : 0;
      if (payload_sent < frame.payload.size()) {
        parts[count++] = {frame.payload.data() + payload_sent,
                          frame.payload.size() - payload_sent};
      }
    }
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = count;
    // A descriptor goes with the frame's first bytes (SCM_RIGHTS).
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (out_.front().fd) {
      message.msg_control = control;
      message.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&message);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      const int passed = out_.front().fd.get();
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
      out_bytes_ = 0;
      break;
    }
    if (n > 0) out_.front().fd.reset();  // the peer has its copy now
    out_bytes_ -= static_cast<std::size_t>(n);
    std::size_t written = static_cast<std::size_t>(n);
    // Frames the bytes completed leave the queue; the last may be partial.
    while (!out_.empty()) {
      OutFrame& frame = out_.front();
      const std::size_t left = frame.head.size() + frame.payload.size() - frame.sent;
      const std::size_t taken = std::min(left, written);
      frame.sent += taken;
      written -= taken;
      if (taken < left) break;
      out_.pop_front();
      if (written == 0) break;
    }
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
