#include "daemon/process/link.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

#include "daemon/base/fd_passing.h"

namespace ei {

namespace {

// Headers carry tracebacks: far more room than a client's frames get.
constexpr std::uint32_t kMaxHeaderBytes = 16u << 20;
constexpr std::size_t kReadChunk = 256 * 1024;

}  // namespace

WorkerLink::WorkerLink(UniqueFd socket, std::uint64_t max_frame_bytes)
    : socket_(std::move(socket)),
      decoder_({kMaxHeaderBytes, max_frame_bytes + kMaxHeaderBytes},
               proto::FrameDecoder::Sender::kDaemon),
      buffer_(kReadChunk) {}

bool WorkerLink::Send(const nlohmann::json& header, std::string_view payload, int fd) {
  const std::string head = proto::EncodeHead(header, payload.size());
  std::lock_guard lock(send_mu_);
  std::size_t sent = 0;
  const std::size_t total = head.size() + payload.size();
  while (sent < total) {
    iovec parts[2];
    std::size_t count = 0;
    if (sent < head.size()) parts[count++] = {const_cast<char*>(head.data()) + sent, head.size() - sent};
    const std::size_t payload_sent = sent > head.size() ? sent - head.size() : 0;
    if (payload_sent < payload.size()) {
      parts[count++] = {const_cast<char*>(payload.data()) + payload_sent,
                        payload.size() - payload_sent};
    }
    const ssize_t n = SendWithFd(socket_.get(), parts, count, sent == 0 ? fd : -1, /*block=*/true);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

bool WorkerLink::Receive(proto::Frame* frame, UniqueFd* fd, std::string* why) {
  while (true) {
    if (begin_ < end_) {
      std::size_t used = 0;
      const auto result = decoder_.Feed(buffer_.data() + begin_, end_ - begin_, &used);
      begin_ += used;
      if (result == proto::FrameDecoder::Result::kBad) {
        *why = "bad frame: " + decoder_.error().message;
        return false;
      }
      if (result == proto::FrameDecoder::Result::kFrame) {
        *frame = decoder_.TakeFrame();
        if (frame->header.value("fd", false) == true && !fds_.empty()) {
          *fd = std::move(fds_.front());
          fds_.pop_front();
        }
        return true;
      }
    }
    begin_ = end_ = 0;
    const Received got =
        ReceiveWithFds(socket_.get(), buffer_.data(), buffer_.size(), &fds_, /*block=*/true);
    if (got.bytes < 0 && got.error == EINTR) continue;
    if (got.bytes <= 0) {
      *why = got.bytes == 0 ? "the other end closed the link" : std::strerror(got.error);
      return false;
    }
    end_ = static_cast<std::size_t>(got.bytes);
  }
}

void WorkerLink::Shutdown() { ::shutdown(socket_.get(), SHUT_RDWR); }

}  // namespace ei
