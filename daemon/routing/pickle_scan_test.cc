#include "daemon/routing/pickle_scan.h"

#include <gtest/gtest.h>

#include <string>

namespace ei {
namespace {

// Pickles made by CPython 3.13's pickle module (protocol 5 unless named),
// as hex. A fake numpy module stood in for the real one.
std::string FromHex(const std::string& hex) {
  std::string bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

PickleRefs Scan(const std::string& hex) {
  const std::string bytes = FromHex(hex);
  return ScanPickle({bytes.data(), bytes.size()});
}

// (os.path.join, ("a", "b"), {})
TEST(PickleScan, FunctionByReference) {
  const PickleRefs refs = Scan(
      "80059524000000000000008c09706f73697870617468948c046a6f696e9493948c0161948c01629486947d9487"
      "942e");
  EXPECT_TRUE(refs.complete);
  EXPECT_EQ(refs.function_key, "posixpath.join");
  EXPECT_TRUE(refs.modules.contains("posixpath"));
  EXPECT_FALSE(refs.modules.contains("numpy"));
}

// (len, (Arr(), Arr()), {}), each Arr reducing to
// numpy._core.multiarray._reconstruct(1, 2): the second through the memo.
TEST(PickleScan, ArgumentsFromAModule) {
  const PickleRefs refs = Scan(
      "80059552000000000000008c086275696c74696e73948c036c656e9493948c166e756d70792e5f636f72652e"
      "6d756c74696172726179948c0c5f7265636f6e7374727563749493944b014b028694529468056806529486947d"
      "9487942e");
  EXPECT_TRUE(refs.modules.contains("numpy"));
  // builtins.len is pickling's own kind of global: the function key skips
  // it and takes the first global that is not machinery.
  EXPECT_EQ(refs.function_key, "numpy._core.multiarray._reconstruct");
}

// (print, (importlib.import_module("pandas.io"),), {}): how by-value code
// refers to a module it uses.
TEST(PickleScan, ModuleImportedByName) {
  const PickleRefs refs = Scan(
      "8005954a000000000000008c086275696c74696e73948c057072696e749493948c09696d706f72746c6962948c"
      "0d696d706f72745f6d6f64756c659493948c0970616e6461732e696f948594529485947d9487942e");
  EXPECT_TRUE(refs.modules.contains("pandas"));
  EXPECT_FALSE(refs.modules.contains("pandas.io"));
}

// (<persistent id ("fn", "aaa...a")>, (1,), {}): a function shipped by value.
TEST(PickleScan, FunctionByValue) {
  const std::string bytes = FromHex("80059554000000000000008c02666e948c40") +
                            std::string(64, 'a') + FromHex("948694514b0185947d9487942e");
  const PickleRefs refs = ScanPickle({bytes.data(), bytes.size()});
  EXPECT_TRUE(refs.complete);
  EXPECT_EQ(refs.function_key, "value:" + std::string(64, 'a'));
}

TEST(PickleScan, ProtocolZeroGlobals) {
  const PickleRefs refs =
      Scan("2863706f736978706174680a6a6f696e0a70300a2856610a70310a7470320a286470330a7470340a2e");
  EXPECT_TRUE(refs.complete);
  EXPECT_EQ(refs.function_key, "posixpath.join");
}

TEST(PickleScan, TruncatedInputReportsWhatItRead) {
  const PickleRefs refs = Scan("80059524000000000000008c09706f7369787061");
  EXPECT_FALSE(refs.complete);
  EXPECT_TRUE(refs.function_key.empty());
}

TEST(PickleScan, GarbageIsNotAPickle) {
  for (const std::string& bytes : {std::string("\xff\xff\xff", 3), std::string(), std::string("\x8e", 1),
                                  std::string("\x8e\xff\xff\xff\xff\xff\xff\xff\xff", 9)}) {
    const PickleRefs refs = ScanPickle({bytes.data(), bytes.size()});
    EXPECT_TRUE(refs.modules.empty());
    EXPECT_TRUE(refs.function_key.empty());
  }
}

// A large byte string is skipped by its length, not read.
TEST(PickleScan, LargeBytesAreSkipped) {
  std::string bytes = FromHex("8005");
  bytes += '\x8e';  // BINBYTES8
  const std::uint64_t size = 1 << 20;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((size >> (8 * i)) & 0xff));
  bytes += std::string(size, 'x');
  bytes += FromHex("8c09706f73697870617468948c046a6f696e9493942e");
  const PickleRefs refs = ScanPickle({bytes.data(), bytes.size()});
  EXPECT_TRUE(refs.complete);
  EXPECT_EQ(refs.function_key, "posixpath.join");
}

}  // namespace
}  // namespace ei
