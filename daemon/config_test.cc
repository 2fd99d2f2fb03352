#include "daemon/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace ei {
namespace {

ParseResult Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "extrainterpretersd");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data());
}

std::string WriteConfig(const std::string& name, const std::string& text) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(Config, DefaultsFollowTheMachineAndTheEnvironment) {
  ::setenv("EXTRAINTERPRETERS_SOCKET", "/tmp/x/ei.sock", 1);
  ParseResult r = Parse({});
  ::unsetenv("EXTRAINTERPRETERS_SOCKET");
  ASSERT_EQ(r.action, ParseResult::Action::kRun) << r.error;
  EXPECT_EQ(r.config.socket, "/tmp/x/ei.sock");
  EXPECT_GE(r.config.workers, 1);
  EXPECT_EQ(r.config.max_interpreters, 4 * r.config.workers);
  EXPECT_EQ(r.config.buffer_size, 10u << 20);
  EXPECT_EQ(r.config.max_frame_bytes, 256u << 20);
}

TEST(Config, ReadsEveryFlagInBothForms) {
  ParseResult r = Parse({"--socket", "/tmp/a.sock", "--workers=3", "--preload", "json,decimal",
                         "--buffer-size", "1M", "--max-interpreters", "5",
                         "--max-frame-bytes=2G", "--max-header-bytes", "8k", "--python-path",
                         "/a:/b"});
  ASSERT_EQ(r.action, ParseResult::Action::kRun) << r.error;
  EXPECT_EQ(r.config.socket, "/tmp/a.sock");
  EXPECT_EQ(r.config.workers, 3);
  EXPECT_EQ(r.config.preload, (std::vector<std::string>{"json", "decimal"}));
  EXPECT_EQ(r.config.buffer_size, 1u << 20);
  EXPECT_EQ(r.config.max_interpreters, 5);
  EXPECT_EQ(r.config.max_frame_bytes, 2ull << 30);
  EXPECT_EQ(r.config.max_header_bytes, 8u << 10);
  EXPECT_EQ(r.config.python_path, (std::vector<std::string>{"/a", "/b"}));
}

TEST(Config, FileSetsKeysAndFlagsWin) {
  const std::string path = WriteConfig(
      "good.json",
      R"({"workers": 3, "preload": ["json"], "socket": "/tmp/f.sock", "buffer_size": "64k"})");
  ParseResult r = Parse({"--config", path, "--workers", "1"});
  ASSERT_EQ(r.action, ParseResult::Action::kRun) << r.error;
  EXPECT_EQ(r.config.workers, 1);
  EXPECT_EQ(r.config.socket, "/tmp/f.sock");
  EXPECT_EQ(r.config.preload, std::vector<std::string>{"json"});
  EXPECT_EQ(r.config.buffer_size, 64u << 10);
}

struct BadCase {
  std::vector<std::string> args;
  const char* message_part;
};

TEST(Config, RejectsBadInputNamingIt) {
  const std::string not_json = WriteConfig("bad.json", "{workers: 3");
  const std::string unknown_key = WriteConfig("unknown.json", R"({"wokers": 3})");
  const std::vector<BadCase> cases = {
      {{"--workers", "0"}, "invalid value for workers"},
      {{"--workers", "many"}, "invalid value for workers"},
      {{"--buffer-size", "10X"}, "invalid value for buffer_size"},
      {{"--workers", "4", "--max-interpreters", "2"}, "must be at least workers"},
      {{"--frobnicate", "1"}, "unknown flag --frobnicate"},
      {{"--socket"}, "--socket needs a value"},
      {{"stray"}, "unexpected argument \"stray\""},
      {{"--config", "/nonexistent/ei.json"}, "cannot read config file /nonexistent/ei.json"},
      {{"--config", not_json}, "is not a JSON object"},
      {{"--config", unknown_key}, "unknown key \"wokers\""},
      {{"--socket", "/tmp/" + std::string(120, 's')}, "longer than 107 bytes"},
  };
  for (const BadCase& c : cases) {
    ParseResult r = Parse(c.args);
    EXPECT_EQ(r.action, ParseResult::Action::kError) << c.message_part;
    EXPECT_NE(r.error.find(c.message_part), std::string::npos) << r.error;
  }
}

TEST(Config, HelpDocumentsEveryFlag) {
  EXPECT_EQ(Parse({"--help"}).action, ParseResult::Action::kHelp);
  EXPECT_EQ(Parse({"--version"}).action, ParseResult::Action::kVersion);
  for (const char* flag : {"--socket", "--workers", "--config", "--preload", "--buffer-size",
                           "--max-interpreters", "--max-frame-bytes", "--max-header-bytes",
                           "--python-path", "--version", "--help"}) {
    EXPECT_NE(UsageText().find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace ei
