#include "daemon/net/frame_writer.h"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>

#include <boost/asio/post.hpp>

#include "daemon/base/log.h"
#include "daemon/base/fd_passing.h"
#include "proto/frame_codec.h"

namespace ei {

namespace asio = boost::asio;

// Up to this many queued frames go out in one sendmsg.
constexpr std::size_t kBatchFrames = 64;

void FrameWriter::Start(std::weak_ptr<void> owner, std::function<void()> close) {
  owner_ = std::move(owner);
  close_ = std::move(close);
}

void FrameWriter::Send(const nlohmann::json& header, std::vector<char> payload, UniqueFd fd) {
  OutFrame frame{proto::EncodeHead(header, payload.size()), std::move(payload), std::move(fd)};
  const std::size_t frame_bytes = frame.head.size() + frame.payload.size();
  std::lock_guard lock(mu_);
  if (closed_) return;
  if (OverLimitLocked(frame_bytes)) return;
  out_.push_back(std::move(frame));
  out_bytes_ += frame_bytes;
  if (!waiting_writable_) FlushLocked();
}

bool FrameWriter::FlushedOrCloseLater() {
  std::lock_guard lock(mu_);
  if (out_.empty()) return true;
  close_when_flushed_ = true;  // FlushLocked posts the close once empty
  return false;
}

void FrameWriter::CloseSocket() {
  std::lock_guard lock(mu_);
  closed_ = true;
  out_.clear();
  out_bytes_ = 0;
  boost::system::error_code ignored;
  socket_.close(ignored);
}

// A client that does not read must not make the daemon hold its replies
// without bound. The frame being written does not count, and a frame is
// always taken when none waits behind it, however large (frames are bounded
// by max_frame_bytes): a big result still reaches a client that reads it
// slowly. Past that, the connection is dropped.
bool FrameWriter::OverLimitLocked(std::size_t frame_bytes) {
  if (out_.empty()) return false;
  const OutFrame& writing = out_.front();
  const std::size_t waiting =
      out_bytes_ - (writing.head.size() + writing.payload.size() - writing.sent);
  if (waiting == 0 || waiting + frame_bytes <= max_output_buffer_) return false;
  log::Warning("client too slow: dropped: connection " + std::to_string(id_) + " did not read " +
               std::to_string(out_bytes_) + " bytes of replies (" + std::to_string(waiting) +
               " not started); " + std::to_string(frame_bytes) +
               " more would pass max_output_buffer (" + std::to_string(max_output_buffer_) + ")");
  // No more writes from here on; the I/O thread closes the socket.
  closed_ = true;
  out_.clear();
  out_bytes_ = 0;
  PostClose();
  return true;
}

// Writes queued frames until the queue is empty or the socket is full.
// Replies that queued up while the socket was busy go out together.
void FrameWriter::FlushLocked() {
  while (!out_.empty()) {
    iovec parts[2 * kBatchFrames];
    const std::size_t count = GatherLocked(parts, kBatchFrames);
    const ssize_t n =
        count == 0 ? 0 : SendWithFd(socket_.native_handle(), parts, count, out_.front().fd.get());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      WaitWritableLocked();
      return;
    }
    if (n < 0) {
      // The client is gone; the I/O thread sees the same on its read side,
      // and closing clears the queue.
      out_.clear();
      out_bytes_ = 0;
      break;
    }
    if (n > 0) out_.front().fd.reset();  // the peer has its copy now
    ConsumeLocked(static_cast<std::size_t>(n));
  }
  if (close_when_flushed_) {
    close_when_flushed_ = false;
    PostClose();
  }
}

// The unsent bytes of up to `max_frames` queued frames; a frame with a
// descriptor only at the front, since the descriptor goes with the batch's
// first bytes.
std::size_t FrameWriter::GatherLocked(iovec* parts, std::size_t max_frames) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < out_.size() && i < max_frames; ++i) {
    OutFrame& frame = out_[i];
    if (i > 0 && frame.fd) break;
    if (frame.sent < frame.head.size()) {
      parts[count++] = {frame.head.data() + frame.sent, frame.head.size() - frame.sent};
    }
    const std::size_t payload_sent =
        frame.sent > frame.head.size() ? frame.sent - frame.head.size() : 0;
    if (payload_sent < frame.payload.size()) {
      parts[count++] = {frame.payload.data() + payload_sent, frame.payload.size() - payload_sent};
    }
  }
  return count;
}

// Frames the written bytes completed leave the queue; the last may be partial.
void FrameWriter::ConsumeLocked(std::size_t written) {
  out_bytes_ -= written;
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

// The socket is full: the I/O thread waits until it takes more.
void FrameWriter::WaitWritableLocked() {
  waiting_writable_ = true;
  asio::post(socket_.get_executor(), [this, owner = owner_.lock()] {
    if (owner == nullptr) return;
    socket_.async_wait(Socket::wait_write, [this, owner](const boost::system::error_code& e) {
      OnWritable(e);
    });
  });
}

void FrameWriter::OnWritable(const boost::system::error_code& error) {
  std::lock_guard lock(mu_);
  waiting_writable_ = false;
  if (error || closed_) return;
  FlushLocked();
}

void FrameWriter::PostClose() {
  asio::post(socket_.get_executor(), [close = close_, owner = owner_.lock()] {
    if (owner != nullptr) close();
  });
}

}  // namespace ei
