#include "proto/frame_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace ei::proto {
namespace {

using Result = FrameDecoder::Result;

// Feeds `bytes` in chunks of `chunk` bytes; returns the frames and the last result.
Result FeedAll(FrameDecoder& decoder, const std::string& bytes, std::size_t chunk,
               std::vector<Frame>* frames) {
  Result last = Result::kNeedMore;
  std::size_t at = 0;
  while (at < bytes.size()) {
    const std::size_t n = std::min(chunk, bytes.size() - at);
    std::size_t off = 0;
    while (off < n) {
      std::size_t used = 0;
      last = decoder.Feed(bytes.data() + at + off, n - off, &used);
      off += used;
      if (last == Result::kBad) return last;
      if (last == Result::kFrame) frames->push_back(decoder.TakeFrame());
    }
    at += n;
  }
  return last;
}

std::string Prefix(std::string magic, int version, int flags, std::uint32_t header,
                   std::uint32_t payload) {
  std::string p = magic;
  p += static_cast<char>(version);
  p += static_cast<char>(flags);
  p += std::string(2, '\0');
  for (std::uint32_t v : {header, payload}) {
    for (int shift = 24; shift >= 0; shift -= 8) p += static_cast<char>((v >> shift) & 0xff);
  }
  return p;
}

TEST(FrameCodec, RoundTripsAtEveryChunkSize) {
  std::string payload;
  for (int i = 0; i < 1000; ++i) payload += static_cast<char>(i * 7);
  const std::string stream = EncodeFrame({{"type", "run"}, {"id", 7}}, payload) +
                             EncodeFrame({{"type", "ping"}, {"id", 8}}) +
                             EncodeFrame({{"type", "status"}, {"id", 9}}, "x");
  for (std::size_t chunk : {1u, 2u, 3u, 15u, 16u, 17u, 100u, 4096u}) {
    FrameDecoder decoder;
    std::vector<Frame> frames;
    EXPECT_EQ(FeedAll(decoder, stream, chunk, &frames), Result::kFrame) << chunk;
    ASSERT_EQ(frames.size(), 3u) << chunk;
    EXPECT_EQ(frames[0].header["type"], "run");
    EXPECT_EQ(frames[0].header["id"], 7);
    EXPECT_EQ(std::string(frames[0].payload.begin(), frames[0].payload.end()), payload);
    EXPECT_TRUE(frames[1].payload.empty());
    EXPECT_EQ(frames[2].header["id"], 9);
    EXPECT_EQ(frames[2].payload.size(), 1u);
  }
}

TEST(FrameCodec, PrefixIsBigEndianWithHeaderLength) {
  const std::string head = EncodeHead({{"type", "ping"}, {"id", 1}}, 258);
  ASSERT_GE(head.size(), kPrefixSize);
  EXPECT_EQ(head.substr(0, 4), "EIPC");
  EXPECT_EQ(head[4], 1);
  EXPECT_EQ(static_cast<unsigned char>(head[14]), 1);
  EXPECT_EQ(static_cast<unsigned char>(head[15]), 2);
  EXPECT_EQ(head.size() - kPrefixSize, static_cast<std::size_t>(head[11]));
}

struct BadCase {
  const char* name;
  std::string bytes;
  const char* code;
  const char* message_part;
};

TEST(FrameCodec, RejectsEveryMalformedFrame) {
  const std::string ok_header = R"({"type":"ping","id":3})";
  const std::vector<BadCase> cases = {
      {"bad magic", Prefix("HTTP", 1, 0, 2, 0) + "{}", "bad_frame", "magic"},
      {"unknown version", Prefix("EIPC", 9, 0, 2, 0) + "{}", "unsupported_version", "version 9"},
      {"flags set", Prefix("EIPC", 1, 4, 2, 0) + "{}", "bad_frame", "flags"},
      {"header too long", Prefix("EIPC", 1, 0, 65537, 0), "too_large", "header length 65537"},
      {"header too short", Prefix("EIPC", 1, 0, 1, 0) + "{", "too_large", "header length 1"},
      {"frame too long", Prefix("EIPC", 1, 0, 2, 0xFFFFFFF0u), "too_large", "exceeds the limit"},
      {"invalid json", Prefix("EIPC", 1, 0, 5, 0) + "{nope", "bad_header", "not valid JSON"},
      {"NUL after the object",
       Prefix("EIPC", 1, 0, 26, 0) + ok_header + std::string(1, '\0') + "xyz", "bad_header",
       "NUL byte"},
      {"byte order mark", Prefix("EIPC", 1, 0, 25, 0) + "\xEF\xBB\xBF" + ok_header, "bad_header",
       "byte order mark"},
      {"not an object", Prefix("EIPC", 1, 0, 2, 0) + "[]", "bad_header", "not a JSON object"},
      {"no type", Prefix("EIPC", 1, 0, 8, 0) + R"({"id":1})", "bad_header", "\"type\""},
      {"no id", Prefix("EIPC", 1, 0, 15, 0) + R"({"type":"ping"})", "bad_header", "\"id\""},
      {"negative id", Prefix("EIPC", 1, 0, 23, 0) + R"({"type":"ping","id":-1})", "bad_header",
       "\"id\""},
  };
  for (const BadCase& c : cases) {
    for (std::size_t chunk : {1u, 64u}) {
      FrameDecoder decoder;
      std::vector<Frame> frames;
      // A valid frame first proves an error mid-stream is caught too.
      const std::string stream = EncodeFrame(nlohmann::json::parse(ok_header)) + c.bytes;
      EXPECT_EQ(FeedAll(decoder, stream, chunk, &frames), Result::kBad) << c.name;
      EXPECT_EQ(frames.size(), 1u) << c.name;
      EXPECT_EQ(decoder.error().code, c.code) << c.name;
      EXPECT_NE(decoder.error().message.find(c.message_part), std::string::npos)
          << c.name << ": " << decoder.error().message;
      std::size_t used = 0;
      EXPECT_EQ(decoder.Feed("EIPC", 4, &used), Result::kBad) << "stays bad: " << c.name;
    }
  }
}

TEST(FrameCodec, ReportsIdOfHeaderThatFailsLater) {
  FrameDecoder decoder;
  std::vector<Frame> frames;
  const std::string header = R"({"id":12,"type":5})";
  EXPECT_EQ(FeedAll(decoder, Prefix("EIPC", 1, 0, header.size(), 0) + header, 7, &frames),
            Result::kBad);
  EXPECT_EQ(decoder.error_id(), 12);
}

TEST(FrameCodec, HonoursSmallerLimits) {
  Limits limits;
  limits.max_header_bytes = 100;
  limits.max_frame_bytes = 200;
  FrameDecoder decoder(limits);
  std::vector<Frame> frames;
  EXPECT_EQ(FeedAll(decoder, EncodeFrame({{"type", "run"}, {"id", 1}}, std::string(200, 'x')), 16,
                    &frames),
            Result::kBad);
  EXPECT_EQ(decoder.error().code, "too_large");
  EXPECT_TRUE(frames.empty());
}

}  // namespace
}  // namespace ei::proto

namespace ei::proto {
namespace {

// Found by tests/attack_protocol_e2e_test.py: ids past 2^53-1 were accepted
// and echoed, and the Python client then refused the reply.
TEST(FrameCodec, RefusesIdsPastTwoToThe53MinusOne) {
  for (const char* header : {R"({"type":"ping","id":9007199254740992})",
                             R"({"type":"ping","id":18446744073709551615})"}) {
    FrameDecoder decoder;
    std::vector<Frame> frames;
    EXPECT_EQ(FeedAll(decoder, Prefix("EIPC", 1, 0, std::strlen(header), 0) + header, 7, &frames),
              Result::kBad)
        << header;
    EXPECT_EQ(decoder.error().code, "bad_header");
    EXPECT_NE(decoder.error().message.find("2^53-1"), std::string::npos);
    EXPECT_EQ(decoder.error_id(), -1) << "an id out of range is not readable";
  }
  FrameDecoder decoder;
  std::vector<Frame> frames;
  EXPECT_EQ(FeedAll(decoder, EncodeFrame({{"type", "ping"}, {"id", kMaxId}}), 7, &frames),
            Result::kFrame);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header["id"], kMaxId);
}

// PROTOCOL.md, Errors: the daemon sends "id": null in an error about the
// connection (busy, access_denied). A client's decoder must read it (the
// Python codec did, this one refused it); the daemon's must not.
TEST(FrameCodec, ReadsNullIdOnlyFromTheDaemon) {
  const std::string header = R"({"type":"error","id":null,"code":"busy"})";
  const std::string bytes = Prefix("EIPC", 1, 0, header.size(), 0) + header;
  FrameDecoder from_daemon({}, FrameDecoder::Sender::kDaemon);
  std::vector<Frame> frames;
  EXPECT_EQ(FeedAll(from_daemon, bytes, 5, &frames), Result::kFrame);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(frames[0].header["id"].is_null());
  FrameDecoder from_client;
  EXPECT_EQ(FeedAll(from_client, bytes, 5, &frames), Result::kBad);
  EXPECT_EQ(from_client.error().code, "bad_header");
  FrameDecoder no_id({}, FrameDecoder::Sender::kDaemon);
  EXPECT_EQ(FeedAll(no_id, Prefix("EIPC", 1, 0, 15, 0) + R"({"type":"ping"})", 5, &frames),
            Result::kBad)
      << "null is allowed, a missing id is not";
}

// PROTOCOL.md, Frames: "-0 is 0". nlohmann reads it as a signed number, which
// the decoder refused while the Python codec read 0.
TEST(FrameCodec, ReadsMinusZeroIdAsZero) {
  const std::string header = R"({"type":"ping","id":-0})";
  FrameDecoder decoder;
  std::vector<Frame> frames;
  EXPECT_EQ(FeedAll(decoder, Prefix("EIPC", 1, 0, header.size(), 0) + header, 7, &frames),
            Result::kFrame);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(frames[0].header["id"].is_number_unsigned());
  EXPECT_EQ(frames[0].header.dump(), R"({"id":0,"type":"ping"})");
}

}  // namespace
}  // namespace ei::proto
