// Frames of the extrainterpreters wire protocol (proto/PROTOCOL.md):
// a 16-byte prefix, a JSON header and an optional binary payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace ei::proto {

inline constexpr char kMagic[4] = {'E', 'I', 'P', 'C'};
inline constexpr std::uint8_t kFrameVersion = 1;
inline constexpr std::size_t kPrefixSize = 16;
inline constexpr std::uint32_t kMinHeaderBytes = 2;  // "{}"
/// The largest request id: 2^53-1, so that every JSON reader keeps it exact.
inline constexpr std::uint64_t kMaxId = (std::uint64_t{1} << 53) - 1;
/// Arrays and objects in a header nest at most this deep, the header
/// object counted (PROTOCOL.md, "Frames").
inline constexpr int kMaxHeaderDepth = 256;

/// Sizes a receiver accepts; announced by the daemon in its hello reply.
struct Limits {
  std::uint32_t max_header_bytes = 64 * 1024;
  std::uint64_t max_frame_bytes = 256ull * 1024 * 1024;
};

/// One decoded frame.
struct Frame {
  nlohmann::json header;
  std::vector<char> payload;
};

/// Why a byte stream is not a valid frame. `code` is a PROTOCOL.md error code.
struct DecodeError {
  std::string code;
  std::string message;
};

/// Builds the prefix and JSON header of a frame; the payload goes after it
/// unchanged (so large payloads can be written without another copy).
std::string EncodeHead(const nlohmann::json& header, std::size_t payload_size);

/// Builds a whole frame in one buffer (tests, the CLI).
std::string EncodeFrame(const nlohmann::json& header, std::string_view payload = {});

/// Incremental decoder: feed it bytes in chunks of any size.
class FrameDecoder {
 public:
  enum class Result { kNeedMore, kFrame, kBad };

  /// Whose frames it reads. Only the daemon's may have "id": null, in an
  /// error about the connection (PROTOCOL.md, "Errors").
  enum class Sender { kClient, kDaemon };

  explicit FrameDecoder(Limits limits = {}, Sender sender = Sender::kClient);

  /// Consumes bytes from `data` up to the end of one frame. Sets `*consumed`
  /// to how many it took. kFrame: TakeFrame() has it, feed the rest again.
  /// kBad: error() says why; the stream cannot be resynchronised.
  Result Feed(const char* data, std::size_t size, std::size_t* consumed);

  /// The frame completed by the last kFrame result.
  Frame TakeFrame();

  /// Why the last Feed returned kBad.
  const DecodeError& error() const { return error_; }

  /// The header's "id" when it was readable before the error, else -1.
  std::int64_t error_id() const { return error_id_; }

 private:
  enum class State { kPrefix, kHeader, kPayload, kBad };

  Result CheckPrefix();
  Result FinishHeader();
  Result Fail(std::string code, std::string message);

  Limits limits_;
  Sender sender_;
  State state_ = State::kPrefix;
  char prefix_[kPrefixSize];
  std::size_t filled_ = 0;  // bytes of the current part received so far
  std::string header_text_;
  std::uint32_t header_size_ = 0;
  std::uint32_t payload_size_ = 0;
  Frame frame_;
  DecodeError error_;
  std::int64_t error_id_ = -1;
};

}  // namespace ei::proto
