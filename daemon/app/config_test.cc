#include "daemon/app/config.h"

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
                         "/a:/b", "--idle-spin-us", "50"});
  ASSERT_EQ(r.action, ParseResult::Action::kRun) << r.error;
  EXPECT_EQ(r.config.idle_spin_us, 50);
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
      {{"--idle-spin-us", "-1"}, "invalid value for idle_spin_us"},
      {{"--idle-spin-us", "1000000"}, "invalid value for idle_spin_us"},
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
                           "--python-path", "--idle-spin-us", "--version", "--help"}) {
    EXPECT_NE(UsageText().find(flag), std::string::npos) << flag;
  }
}

TEST(Config, ConnectionLimitsHaveBoundedDefaults) {
  ParseResult r = Parse({});
  ASSERT_EQ(r.action, ParseResult::Action::kRun) << r.error;
  EXPECT_EQ(r.config.max_connections, 1024);
  EXPECT_EQ(r.config.max_jobs_per_connection, 10000);
  EXPECT_EQ(r.config.max_queue_depth, 100000u);
  EXPECT_DOUBLE_EQ(r.config.frame_deadline_seconds, 30);
  EXPECT_DOUBLE_EQ(r.config.idle_timeout_seconds, 0);
  EXPECT_EQ(r.config.max_output_buffer, 64u << 20);
}

TEST(Config, ReadsConnectionLimitsFromFlagsAndFile) {
  ParseResult r = Parse({"--max-connections", "3", "--max-jobs-per-connection=7",
                         "--max-queue-depth", "20", "--frame-deadline", "0.5",
                         "--idle-timeout=1.25", "--max-output-buffer", "2M"});
  ASSERT_EQ(r.action, ParseResult::Action::kRun) << r.error;
  EXPECT_EQ(r.config.max_connections, 3);
  EXPECT_EQ(r.config.max_jobs_per_connection, 7);
  EXPECT_EQ(r.config.max_queue_depth, 20u);
  EXPECT_DOUBLE_EQ(r.config.frame_deadline_seconds, 0.5);
  EXPECT_DOUBLE_EQ(r.config.idle_timeout_seconds, 1.25);
  EXPECT_EQ(r.config.max_output_buffer, 2u << 20);

  const std::string path = WriteConfig(
      "limits.json", R"({"max_connections": 9, "max_queue_depth": "1k", "frame_deadline": 2,
                         "idle_timeout": "60", "max_output_buffer": "128k"})");
  r = Parse({"--config", path, "--max-connections", "5"});
  ASSERT_EQ(r.action, ParseResult::Action::kRun) << r.error;
  EXPECT_EQ(r.config.max_connections, 5);
  EXPECT_EQ(r.config.max_queue_depth, 1024u);
  EXPECT_DOUBLE_EQ(r.config.frame_deadline_seconds, 2);
  EXPECT_DOUBLE_EQ(r.config.idle_timeout_seconds, 60);
  EXPECT_EQ(r.config.max_output_buffer, 128u << 10);
}

TEST(Config, RejectsBadConnectionLimits) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--max-connections", "0"}, "invalid value for max_connections"},
      {{"--max-jobs-per-connection", "-1"}, "invalid value for max_jobs_per_connection"},
      {{"--max-queue-depth", "0"}, "invalid value for max_queue_depth"},
      {{"--frame-deadline", "0"}, "invalid value for frame_deadline"},
      {{"--frame-deadline", "soon"}, "invalid value for frame_deadline"},
      {{"--idle-timeout", "-1"}, "invalid value for idle_timeout"},
      {{"--idle-timeout", "5s"}, "invalid value for idle_timeout"},
      {{"--max-output-buffer", "1k"}, "invalid value for max_output_buffer"},
  };
  for (const auto& [args, message_part] : cases) {
    ParseResult r = Parse(args);
    EXPECT_EQ(r.action, ParseResult::Action::kError) << message_part;
    EXPECT_NE(r.error.find(message_part), std::string::npos) << r.error;
  }
}

TEST(Config, HelpDocumentsEveryLimit) {
  for (const char* flag : {"--max-connections", "--max-jobs-per-connection", "--max-queue-depth",
                           "--frame-deadline", "--idle-timeout", "--max-output-buffer"}) {
    EXPECT_NE(UsageText().find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace ei
