#include "daemon/base/log.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace ei::log {
namespace {

const char* Name(Level level) {
  switch (level) {
    case Level::kError: return "ERROR";
    case Level::kWarning: return "WARNING";
    case Level::kInfo: return "INFO";
    case Level::kDebug: return "DEBUG";
  }
  return "INFO";
}

// syslog(3) priorities, as journald reads them from "<N>" prefixes.
int Priority(Level level) {
  switch (level) {
    case Level::kError: return 3;
    case Level::kWarning: return 4;
    case Level::kInfo: return 6;
    case Level::kDebug: return 7;
  }
  return 6;
}

std::string Timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(millis));
  return stamp;
}

bool Set(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0';
}

}  // namespace

bool ForJournal() {
  static const bool journal = Set("JOURNAL_STREAM") || Set("INVOCATION_ID");
  return journal;
}

std::string Format(Level level, std::string_view message, bool for_journal) {
  std::string line = for_journal ? "<" + std::to_string(Priority(level)) + ">"
                                 : Timestamp() + " " + Name(level) + " ";
  line.append(message);
  return line;
}

void Write(Level level, std::string_view message) {
  std::string line = Format(level, message, ForJournal());
  line += '\n';
  // One write per line, so lines from different threads never interleave.
  [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace ei::log
