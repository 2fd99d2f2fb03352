#include "daemon/log.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

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

}  // namespace

void Write(Level level, std::string_view message) {
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
  std::string line = std::string(stamp) + " " + Name(level) + " ";
  line.append(message);
  line += '\n';
  // One write per line, so lines from different threads never interleave.
  [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace ei::log
