#include "proto/frame_codec.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace ei::proto {
namespace {

void PutU32(char* out, std::uint32_t v) {
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
}

std::uint32_t GetU32(const char* in) {
  auto b = [in](int i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

// Whether `id` is a request id as PROTOCOL.md allows it: an integer up to
// 2^53-1. A larger one, echoed back, would not survive a client's JSON
// reader, so its reply could never be matched.
// Deeper than kMaxHeaderDepth, counting brackets outside strings. Read
// before the parser, which would take any depth.
bool NestsTooDeep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxHeaderDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

bool IsRequestId(const nlohmann::json& id) {
  if (id.is_number_unsigned()) return id.get<std::uint64_t>() <= kMaxId;
  // nlohmann keeps "-0" as a signed number; JSON (and the spec) read it as 0.
  return id.is_number_integer() && id.get<std::int64_t>() == 0;
}

}  // namespace

std::string EncodeHead(const nlohmann::json& header, std::size_t payload_size) {
  const std::string text = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out(kPrefixSize, '\0');
  std::memcpy(out.data(), kMagic, sizeof kMagic);
  out[4] = static_cast<char>(kFrameVersion);
  PutU32(out.data() + 8, static_cast<std::uint32_t>(text.size()));
  PutU32(out.data() + 12, static_cast<std::uint32_t>(payload_size));
  out += text;
  return out;
}

std::string EncodeFrame(const nlohmann::json& header, std::string_view payload) {
  std::string out = EncodeHead(header, payload.size());
  out.append(payload);
  return out;
}

FrameDecoder::FrameDecoder(Limits limits, Sender sender) : limits_(limits), sender_(sender) {}

FrameDecoder::Result FrameDecoder::Feed(const char* data, std::size_t size,
                                        std::size_t* consumed) {
  *consumed = 0;
  while (true) {
    const std::size_t left = size - *consumed;
    const char* at = data + *consumed;
    switch (state_) {
      case State::kBad:
        return Result::kBad;
      case State::kPrefix: {
        const std::size_t n = std::min(left, kPrefixSize - filled_);
        std::memcpy(prefix_ + filled_, at, n);
        filled_ += n;
        *consumed += n;
        if (filled_ < kPrefixSize) return Result::kNeedMore;
        if (Result r = CheckPrefix(); r != Result::kNeedMore) return r;
        break;
      }
      case State::kHeader: {
        const std::size_t n = std::min<std::size_t>(left, header_size_ - filled_);
        header_text_.append(at, n);
        filled_ += n;
        *consumed += n;
        if (filled_ < header_size_) return Result::kNeedMore;
        if (Result r = FinishHeader(); r != Result::kNeedMore) return r;
        break;
      }
      case State::kPayload: {
        const std::size_t n = std::min<std::size_t>(left, payload_size_ - filled_);
        frame_.payload.insert(frame_.payload.end(), at, at + n);
        filled_ += n;
        *consumed += n;
        if (filled_ < payload_size_) return Result::kNeedMore;
        state_ = State::kPrefix;
        filled_ = 0;
        return Result::kFrame;
      }
    }
  }
}

// Validates the prefix before anything is allocated for header or payload.
FrameDecoder::Result FrameDecoder::CheckPrefix() {
  if (std::memcmp(prefix_, kMagic, sizeof kMagic) != 0) {
    return Fail("bad_frame", "bad magic: a frame must start with the bytes \"EIPC\"");
  }
  if (static_cast<std::uint8_t>(prefix_[4]) != kFrameVersion) {
    return Fail("unsupported_version",
                "frame version " + std::to_string(static_cast<unsigned char>(prefix_[4])) +
                    " is not supported (this daemon speaks version 1)");
  }
  if (prefix_[5] != 0 || prefix_[6] != 0 || prefix_[7] != 0) {
    return Fail("bad_frame", "the flags and reserved bytes of a frame prefix must be zero");
  }
  header_size_ = GetU32(prefix_ + 8);
  payload_size_ = GetU32(prefix_ + 12);
  if (header_size_ < kMinHeaderBytes || header_size_ > limits_.max_header_bytes) {
    return Fail("too_large", "header length " + std::to_string(header_size_) +
                                 " is outside 2.." + std::to_string(limits_.max_header_bytes));
  }
  const std::uint64_t total = std::uint64_t{kPrefixSize} + header_size_ + payload_size_;
  if (total > limits_.max_frame_bytes) {
    return Fail("too_large", "frame of " + std::to_string(total) + " bytes exceeds the limit of " +
                                 std::to_string(limits_.max_frame_bytes));
  }
  header_text_.clear();
  header_text_.reserve(header_size_);
  filled_ = 0;
  state_ = State::kHeader;
  return Result::kNeedMore;
}

FrameDecoder::Result FrameDecoder::FinishHeader() {
  // nlohmann's parser takes a NUL byte for the end of its input and ignores
  // what follows it. No JSON text holds one (it is not whitespace, and a
  // string must escape it), so it is refused before the parser sees it.
  if (header_text_.find('\0') != std::string::npos) {
    return Fail("bad_header", "the frame header is not valid JSON: it holds a NUL byte");
  }
  // nlohmann skips a leading UTF-8 byte order mark; PROTOCOL.md ("Frames")
  // says a header has none, and the Python client refuses one.
  if (header_text_.starts_with("\xEF\xBB\xBF")) {
    return Fail("bad_header",
                "the frame header is not valid JSON: it starts with a byte order mark");
  }
  if (NestsTooDeep(header_text_)) {
    return Fail("bad_header", "the frame header nests deeper than " +
                                  std::to_string(kMaxHeaderDepth) + " levels");
  }
  nlohmann::json header = nlohmann::json::parse(header_text_, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return Fail("bad_header", "the frame header is not valid JSON");
  if (!header.is_object()) return Fail("bad_header", "the frame header is not a JSON object");
  auto id = header.find("id");
  const bool id_ok = id != header.end() && IsRequestId(*id);
  if (id_ok) {
    *id = id->get<std::uint64_t>();  // -0 is stored as 0, unsigned like any id
    error_id_ = id->get<std::int64_t>();
  }
  auto type = header.find("type");
  if (type == header.end() || !type->is_string()) {
    return Fail("bad_header", "the frame header has no string \"type\"");
  }
  const bool null_id_ok = sender_ == Sender::kDaemon && id != header.end() && id->is_null();
  if (!id_ok && !null_id_ok) {
    return Fail("bad_header", "the frame header has no unsigned integer \"id\" up to 2^53-1");
  }
  error_id_ = -1;
  frame_.header = std::move(header);
  // Reserved, not filled: memory a client announced but has not sent stays
  // untouched (not resident) until the bytes arrive.
  frame_.payload.clear();
  frame_.payload.reserve(payload_size_);
  filled_ = 0;
  if (payload_size_ == 0) {
    state_ = State::kPrefix;
    return Result::kFrame;
  }
  state_ = State::kPayload;
  return Result::kNeedMore;
}

FrameDecoder::Result FrameDecoder::Fail(std::string code, std::string message) {
  state_ = State::kBad;
  error_ = {std::move(code), std::move(message)};
  return Result::kBad;
}

Frame FrameDecoder::TakeFrame() { return std::move(frame_); }

}  // namespace ei::proto
