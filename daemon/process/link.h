// The link between the daemon and one process lane worker: a socketpair
// carrying frames of the wire protocol's shape (proto/frame_codec.h), with
// file descriptors passed beside them (SCM_RIGHTS). Its messages are
// internal to the daemon; process/README.md lists them.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/unique_fd.h"
#include "proto/frame_codec.h"

namespace ei {

class WorkerLink {
 public:
  /// Frames up to `max_frame_bytes` (a job's payload or result, plus room
  /// for its header) pass.
  WorkerLink(UniqueFd socket, std::uint64_t max_frame_bytes);
  WorkerLink(const WorkerLink&) = delete;
  WorkerLink& operator=(const WorkerLink&) = delete;

  /// Any thread: writes one whole frame, blocking; `fd` (if >= 0) goes with
  /// it. False when the peer is gone.
  bool Send(const nlohmann::json& header, std::string_view payload = {}, int fd = -1);

  /// One reader thread: the next frame, and the descriptor that came with
  /// it when its header says "fd": true. False at the end of the stream or
  /// on a bad frame (`*why` says which).
  bool Receive(proto::Frame* frame, UniqueFd* fd, std::string* why);

  /// Ends both directions: a reader blocked in Receive returns false.
  void Shutdown();

 private:
  UniqueFd socket_;
  std::mutex send_mu_;  // one frame at a time
  // Reader side (one thread).
  proto::FrameDecoder decoder_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0, end_ = 0;  // unread bytes of buffer_
  std::deque<UniqueFd> fds_;
};

}  // namespace ei
