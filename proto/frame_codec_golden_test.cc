// The golden frames of proto/testdata (frames.json says what each file holds
// and what a decoder must make of it; make_frames.py wrote them) through the
// C++ codec: decoded in several chunkings, then encoded again. The Python
// codec passes the same files (tests/client_codec_golden_test.py).
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "proto/frame_codec.h"

namespace ei::proto {
namespace {

using Json = nlohmann::json;
using Result = FrameDecoder::Result;

std::string TestdataPath(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  const std::string root =
      srcdir != nullptr && workspace != nullptr ? std::string(srcdir) + "/" + workspace + "/" : "";
  return root + "proto/testdata/" + name;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  if (!in) ADD_FAILURE() << "cannot read " << path;
  return out.str();
}

// SHA-256 (FIPS 180-4), for the payload digests the manifest gives.
std::string Sha256Hex(const std::string& data) {
  static constexpr std::array<std::uint32_t, 64> kK = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
      0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
      0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
      0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
      0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
      0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
      0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
      0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
      0xc67178f2};
  std::array<std::uint32_t, 8> h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::string msg = data + '\x80';
  msg.append((120 - msg.size() % 64) % 64, '\0');
  for (int shift = 56; shift >= 0; shift -= 8) {
    msg += static_cast<char>((std::uint64_t{data.size()} * 8) >> shift);
  }
  auto rotr = [](std::uint32_t x, int n) { return x >> n | x << (32 - n); };
  for (std::size_t block = 0; block < msg.size(); block += 64) {
    std::array<std::uint32_t, 64> w;
    for (int i = 0; i < 16; ++i) {
      w[i] = 0;
      for (int j = 0; j < 4; ++j) {
        w[i] = w[i] << 8 | static_cast<unsigned char>(msg[block + 4 * i + j]);
      }
    }
    for (int i = 16; i < 64; ++i) {
      const std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ w[i - 15] >> 3;
      const std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ w[i - 2] >> 10;
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    std::array<std::uint32_t, 8> v = h;
    for (int i = 0; i < 64; ++i) {
      const std::uint32_t t1 = v[7] + (rotr(v[4], 6) ^ rotr(v[4], 11) ^ rotr(v[4], 25)) +
                               ((v[4] & v[5]) ^ (~v[4] & v[6])) + kK[i] + w[i];
      const std::uint32_t t2 = (rotr(v[0], 2) ^ rotr(v[0], 13) ^ rotr(v[0], 22)) +
                               ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
      for (int j = 7; j > 0; --j) v[j] = v[j - 1];
      v[4] += t1;
      v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; ++i) h[i] += v[i];
  }
  std::string hex;
  for (std::uint32_t word : h) {
    for (int shift = 28; shift >= 0; shift -= 4) hex += "0123456789abcdef"[(word >> shift) & 0xf];
  }
  return hex;
}

struct Vector {
  std::string name;
  Json entry;  // its record in frames.json
  std::string bytes;
  Limits limits;
  FrameDecoder::Sender sender;
};

std::vector<Vector> LoadVectors() {
  const Json manifest = Json::parse(ReadFile(TestdataPath("frames.json")));
  std::vector<Vector> vectors;
  for (const Json& entry : manifest.at("vectors")) {
    const std::string file = entry.at("file");
    vectors.push_back({file, entry, ReadFile(TestdataPath(file)),
                       {entry.at("limits").at("max_header_bytes"),
                        entry.at("limits").at("max_frame_bytes")},
                       entry.at("sender") == "daemon" ? FrameDecoder::Sender::kDaemon
                                                      : FrameDecoder::Sender::kClient});
  }
  return vectors;
}

// The chunk sizes a vector is fed in: whole, byte by byte, and three random
// splits (fixed seeds, so a failure repeats).
std::vector<std::vector<std::size_t>> Chunkings(std::size_t size) {
  std::vector<std::vector<std::size_t>> out = {{size}, std::vector<std::size_t>(size, 1)};
  for (unsigned seed = 1; seed <= 3; ++seed) {
    std::mt19937 random(seed);
    std::uniform_int_distribution<std::size_t> small(1, 40), large(1, 70000);
    std::vector<std::size_t> sizes;
    for (std::size_t left = size; left > 0;) {
      const std::size_t n = std::min(left, random() % 4 == 0 ? large(random) : small(random));
      sizes.push_back(n);
      left -= n;
    }
    out.push_back(sizes);
  }
  return out;
}

struct Decoded {
  std::vector<Frame> frames;
  Result last = Result::kNeedMore;
  std::string error_code;
};

Decoded Decode(const Vector& v, const std::vector<std::size_t>& chunks) {
  FrameDecoder decoder(v.limits, v.sender);
  Decoded out;
  std::size_t at = 0;
  for (std::size_t chunk : chunks) {
    for (std::size_t end = at + chunk; at < end && out.last != Result::kBad;) {
      std::size_t used = 0;
      out.last = decoder.Feed(v.bytes.data() + at, end - at, &used);
      at += used;
      if (out.last == Result::kFrame) out.frames.push_back(decoder.TakeFrame());
    }
    if (out.last == Result::kBad) break;
  }
  if (out.last == Result::kBad) out.error_code = decoder.error().code;
  return out;
}

std::string PayloadText(const Frame& frame) { return {frame.payload.begin(), frame.payload.end()}; }

void ExpectFrame(const Frame& frame, const Json& expected, const std::string& where) {
  // dump() compares types too (1 and 1.0 are == in nlohmann).
  EXPECT_EQ(frame.header.dump(), expected.at("header").dump()) << where;
  EXPECT_EQ(frame.payload.size(), expected.at("payload_size").get<std::size_t>()) << where;
  EXPECT_EQ(Sha256Hex(PayloadText(frame)), expected.at("payload_sha256")) << where;
}

TEST(GoldenFrames, Sha256MatchesKnownDigests) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex(std::string(56, 'a')),  // the length spills into a second block
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
}

void ExpectDecodedAsTheManifestSays(const Vector& v, const std::vector<std::size_t>& chunks) {
  const std::string where = v.name + " in " + std::to_string(chunks.size()) + " chunks";
  const Json& expected = v.entry.at("frames");
  const std::string end = v.entry.at("end");
  const Decoded got = Decode(v, chunks);
  ASSERT_EQ(got.frames.size(), expected.size()) << where;
  for (std::size_t i = 0; i < got.frames.size(); ++i) {
    ExpectFrame(got.frames[i], expected[i], where + ", frame " + std::to_string(i));
  }
  if (end == "clean") {
    EXPECT_EQ(got.last, Result::kFrame) << where;
  } else if (end == "need_more") {
    EXPECT_EQ(got.last, Result::kNeedMore) << where;
  } else {
    EXPECT_EQ(got.last, Result::kBad) << where;
    EXPECT_EQ(got.error_code, v.entry.at("error")) << where;
  }
}

TEST(GoldenFrames, DecodeAsTheManifestSaysInEveryChunking) {
  const std::vector<Vector> vectors = LoadVectors();
  ASSERT_GT(vectors.size(), 100u);
  for (const Vector& v : vectors) {
    for (const auto& chunks : Chunkings(v.bytes.size())) ExpectDecodedAsTheManifestSays(v, chunks);
  }
}

void ExpectEncodedAgain(const Vector& v) {
  const Decoded got = Decode(v, {v.bytes.size()});
  std::string encoded;
  for (const Frame& frame : got.frames) {
    const std::string again = EncodeFrame(frame.header, PayloadText(frame));
    encoded += again;
    // Equivalent: the frame encoded again decodes to the same frame.
    const Decoded round = Decode({v.name, v.entry, again, v.limits, v.sender}, {again.size()});
    ASSERT_EQ(round.frames.size(), 1u) << v.name;
    EXPECT_EQ(round.frames[0].header.dump(), frame.header.dump()) << v.name;
    EXPECT_EQ(round.frames[0].payload, frame.payload) << v.name;
  }
  if (v.entry.at("reencode") == "exact") {
    EXPECT_EQ(encoded, v.bytes.substr(0, encoded.size())) << v.name;
    if (v.entry.at("end") == "clean") {
      EXPECT_EQ(encoded.size(), v.bytes.size()) << v.name;
    }
  }
}

TEST(GoldenFrames, EncodeAgainWhatItDecoded) {
  for (const Vector& v : LoadVectors()) ExpectEncodedAgain(v);
}

}  // namespace
}  // namespace ei::proto
