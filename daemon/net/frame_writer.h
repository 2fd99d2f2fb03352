// The write side of a connection: frames queued in order and written by
// whichever thread has them, capped by max_output_buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/local/stream_protocol.hpp>
#include <nlohmann/json.hpp>

#include "daemon/base/unique_fd.h"

namespace ei {

/// Replies are written by whichever thread has them: an interpreter thread
/// writes its job's reply straight to the socket (non-blocking) when
/// nothing is queued before it. Only when the socket is full does the I/O
/// thread take over, waiting until it is writable again. Every method but
/// Start is safe from any thread.
class FrameWriter {
 public:
  using Socket = boost::asio::local::stream_protocol::socket;

  /// `socket` must outlive the writer; so must `owner` (below) its waits.
  FrameWriter(Socket& socket, std::size_t max_output_buffer, std::uint64_t connection_id)
      : socket_(socket), max_output_buffer_(max_output_buffer), id_(connection_id) {}
  FrameWriter(const FrameWriter&) = delete;
  FrameWriter& operator=(const FrameWriter&) = delete;

  /// I/O thread, once, before any Send: `owner` is kept alive while the
  /// writer waits for the socket; `close` (posted to the I/O thread) closes
  /// the connection when the client reads too slowly or a flush completes
  /// a CloseWhenFlushed.
  void Start(std::weak_ptr<void> owner, std::function<void()> close);

  /// Queues a frame and writes what the socket takes at once. `fd` goes
  /// with the frame's first bytes and is closed once sent.
  void Send(const nlohmann::json& header, std::vector<char> payload = {}, UniqueFd fd = UniqueFd());

  /// True when every frame queued so far is written; otherwise the close
  /// callback runs once they are (the caller closes now when true).
  bool FlushedOrCloseLater();

  /// No more writes: drops what is queued and closes the socket. Under the
  /// writer's lock, so no other thread writes to a descriptor number that
  /// could be reused at once.
  void CloseSocket();

 private:
  struct OutFrame {
    std::string head;
    std::vector<char> payload;
    UniqueFd fd;           // passed with the frame's first bytes, then closed
    std::size_t sent = 0;  // bytes of head + payload already written
  };

  bool OverLimitLocked(std::size_t frame_bytes);
  void FlushLocked();
  std::size_t GatherLocked(struct iovec* parts, std::size_t max_frames);
  void ConsumeLocked(std::size_t written);
  void WaitWritableLocked();
  void OnWritable(const boost::system::error_code& error);
  void PostClose();

  Socket& socket_;
  const std::size_t max_output_buffer_;
  const std::uint64_t id_;
  std::weak_ptr<void> owner_;    // set by Start
  std::function<void()> close_;  // set by Start

  std::mutex mu_;
  std::deque<OutFrame> out_;         // guarded by mu_
  bool waiting_writable_ = false;    // guarded by mu_: the I/O thread waits for room
  bool close_when_flushed_ = false;  // guarded by mu_
  bool closed_ = false;              // guarded by mu_: the socket is closed
  std::size_t out_bytes_ = 0;        // guarded by mu_: unsent bytes in out_
};

}  // namespace ei
