#include "cli/ctl_client.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proto/frame_codec.h"
#include "proto/socket_path.h"

namespace ei::ctl {
namespace {

std::string Reason(int error) {
  switch (error) {
    case ECONNREFUSED: return "no daemon is listening";
    case ENOENT: return "no such socket file";
    case EACCES:
    case EPERM: return "permission denied";
    case EAGAIN:
    case ETIMEDOUT: return "timed out";
    default: return std::strerror(error);
  }
}

}  // namespace

CtlClient::~CtlClient() {
  if (fd_ >= 0) ::close(fd_);
}

std::string CtlClient::Connect(const std::string& path, std::chrono::milliseconds timeout) {
  path_ = path;
  if (path.size() > proto::kMaxSocketPathBytes) {
    return "cannot connect to " + path + " (the path is longer than a Unix socket allows)";
  }
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return "cannot create a socket (" + Reason(errno) + ")";
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return "cannot connect to " + path + " (" + Reason(errno) + ")";
  }
  nlohmann::json reply;
  return Request("hello", &reply);
}

std::string CtlClient::Request(const std::string& type, nlohmann::json* reply) {
  nlohmann::json header = {{"type", type}, {"id", next_id_++}};
  if (type == "hello") {
    header["protocol"] = 1;
    header["client"] = "extrainterpretersctl";
  }
  if (std::string why = Send(header); !why.empty()) return why;
  if (std::string why = Receive(reply); !why.empty()) return why;
  if ((*reply)["type"] == "error") {
    // The peer is not trusted to send well-formed errors.
    const nlohmann::json& message = (*reply)["message"];
    const nlohmann::json& code = (*reply)["code"];
    return type + " failed: " +
           (message.is_string() ? message.get<std::string>() : "(no message)") + " (" +
           (code.is_string() ? code.get<std::string>() : code.dump()) + ")";
  }
  if ((*reply)["type"] != type || (*reply)["id"] != header["id"]) {
    return type + " failed: the daemon answered with an unexpected " + (*reply)["type"].dump();
  }
  return "";
}

std::string CtlClient::Send(const nlohmann::json& header) {
  const std::string frame = proto::EncodeFrame(header);
  std::size_t sent = 0;
  while (sent < frame.size()) {
    ssize_t n = ::send(fd_, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return "cannot send to " + path_ + " (" + Reason(errno) + ")";
    sent += static_cast<std::size_t>(n);
  }
  return "";
}

std::string CtlClient::Receive(nlohmann::json* header) {
  // The daemon may answer with "id": null (busy, access_denied).
  proto::FrameDecoder decoder({}, proto::FrameDecoder::Sender::kDaemon);
  char buffer[64 * 1024];
  while (true) {
    ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return "no answer from " + path_ + " (" + Reason(errno) + ")";
    if (n == 0) return "the daemon at " + path_ + " closed the connection";
    std::size_t offset = 0;
    while (offset < static_cast<std::size_t>(n)) {
      std::size_t used = 0;
      auto result = decoder.Feed(buffer + offset, static_cast<std::size_t>(n) - offset, &used);
      offset += used;
      if (result == proto::FrameDecoder::Result::kBad) {
        return "bad reply from " + path_ + ": " + decoder.error().message;
      }
      if (result == proto::FrameDecoder::Result::kFrame) {
        *header = decoder.TakeFrame().header;
        return "";
      }
    }
  }
}

}  // namespace ei::ctl
