// libFuzzer target: proto::FrameDecoder fed an arbitrary byte stream in
// chunks whose sizes come from the input itself (run_fuzz.sh builds it with
// AddressSanitizer and UBSan).
//
// Input layout: byte 0 seeds the chunk sizes, byte 1 picks the limits (the
// defaults, or small ones that reach the limit checks with short inputs);
// the rest is the stream. The same stream is also decoded in one piece, and
// both decodings must agree: chunking must never change what is decoded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "proto/frame_codec.h"

namespace {

using ei::proto::FrameDecoder;
using Result = FrameDecoder::Result;

void Check(bool ok, const char* what) {
  if (!ok) {
    __builtin_fprintf(stderr, "frame_decoder_fuzzer: invariant broken: %s\n", what);
    std::abort();
  }
}

// What a decoder produced: each frame's header text and payload, then the
// final result and error code.
struct Decoded {
  std::vector<std::string> frames;
  Result last = Result::kNeedMore;
  std::string error_code;
};

// Feeds [data, data+size) in chunks from `next_chunk`, checking the Feed
// contract on every call.
template <typename NextChunk>
Decoded Decode(ei::proto::Limits limits, const char* data, std::size_t size,
               NextChunk next_chunk) {
  FrameDecoder decoder(limits);
  Decoded out;
  std::size_t at = 0;
  while (at < size && out.last != Result::kBad) {
    const std::size_t end = std::min(size, at + next_chunk());
    while (at < end) {
      std::size_t used = 0;
      out.last = decoder.Feed(data + at, end - at, &used);
      Check(used <= end - at, "consumed more than it was given");
      at += used;
      if (out.last == Result::kBad) break;
      if (out.last == Result::kNeedMore) Check(at == end, "kNeedMore left bytes unread");
      if (out.last == Result::kFrame) {
        ei::proto::Frame frame = decoder.TakeFrame();
        Check(frame.header.is_object(), "frame header is not an object");
        Check(frame.header.contains("type") && frame.header["type"].is_string(), "no type");
        Check(frame.header.contains("id") && frame.header["id"].is_number_unsigned(), "no id");
        Check(frame.header["id"].get<std::uint64_t>() <= ei::proto::kMaxId, "id past 2^53-1");
        Check(16 + frame.payload.size() <= limits.max_frame_bytes, "payload over the limit");
        out.frames.push_back(frame.header.dump() + "|" +
                             std::string(frame.payload.begin(), frame.payload.end()));
      }
    }
  }
  if (out.last == Result::kBad) {
    out.error_code = decoder.error().code;
    Check(!decoder.error().message.empty(), "error without a message");
    static const char* const kCodes[] = {"bad_frame", "unsupported_version", "too_large",
                                         "bad_header"};
    bool known = false;
    for (const char* code : kCodes) known = known || out.error_code == code;
    Check(known, "error code not in PROTOCOL.md");
    std::size_t used = 1;
    Check(decoder.Feed(data, size, &used) == Result::kBad && used == 0,
          "a bad decoder must stay bad and consume nothing");
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* input, std::size_t size) {
  if (size < 2) return 0;
  std::uint32_t seed = input[0] * 2654435761u + 1;
  ei::proto::Limits limits;
  if (input[1] & 1) limits = {/*max_header_bytes=*/64, /*max_frame_bytes=*/256};
  const char* data = reinterpret_cast<const char*>(input + 2);
  size -= 2;

  // Chunk sizes 1..32 mostly, with the odd large one, from a tiny LCG.
  auto chunked = Decode(limits, data, size, [&seed] {
    seed = seed * 1103515245u + 12345u;
    const std::uint32_t r = seed >> 16;
    return (r & 7) == 0 ? std::size_t{1} + (r % 4096) : std::size_t{1} + (r % 32);
  });
  auto whole = Decode(limits, data, size, [size] { return size; });
  Check(chunked.frames == whole.frames, "chunking changed the frames decoded");
  Check(chunked.last == whole.last, "chunking changed the result");
  Check(chunked.error_code == whole.error_code, "chunking changed the error");
  return 0;
}
