// One line per event on stderr. Messages start with a stable phrase
// ("ready:", "connection closed:", ...) so they can be grepped for.
#pragma once

#include <string>
#include <string_view>

namespace ei::log {

enum class Level { kError, kWarning, kInfo, kDebug };

/// Writes one line as one write(2). Thread-safe. Plain:
/// "<UTC time> <LEVEL> <message>". Under systemd ($JOURNAL_STREAM or
/// $INVOCATION_ID set): "<N><message>", N the syslog priority (3 err,
/// 4 warning, 6 info, 7 debug); journald adds the time itself.
void Write(Level level, std::string_view message);

/// The line Write would write, without the trailing newline.
std::string Format(Level level, std::string_view message, bool for_journal);

/// True when lines carry syslog priority prefixes (decided once, at the
/// first line, from the environment).
bool ForJournal();

inline void Error(std::string_view m) { Write(Level::kError, m); }
inline void Warning(std::string_view m) { Write(Level::kWarning, m); }
inline void Info(std::string_view m) { Write(Level::kInfo, m); }
inline void Debug(std::string_view m) { Write(Level::kDebug, m); }

}  // namespace ei::log
