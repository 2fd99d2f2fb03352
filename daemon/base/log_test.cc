#include "daemon/base/log.h"

#include <gtest/gtest.h>

#include <regex>

namespace ei::log {
namespace {

TEST(Log, PlainLinesCarryTimeAndLevel) {
  const std::string line = Format(Level::kWarning, "accept failed: x", /*for_journal=*/false);
  EXPECT_TRUE(std::regex_match(
      line, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING accept failed: x)")))
      << line;
}

TEST(Log, JournalLinesCarrySyslogPrioritiesAndNoTime) {
  EXPECT_EQ(Format(Level::kError, "cannot start: x", true), "<3>cannot start: x");
  EXPECT_EQ(Format(Level::kWarning, "access denied: y", true), "<4>access denied: y");
  EXPECT_EQ(Format(Level::kInfo, "ready: z", true), "<6>ready: z");
  EXPECT_EQ(Format(Level::kDebug, "d", true), "<7>d");
}

}  // namespace
}  // namespace ei::log
