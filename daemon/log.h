// One line per event on stderr. Messages start with a stable phrase
// ("ready:", "connection closed:", ...) so they can be grepped for.
#pragma once

#include <string_view>

namespace ei::log {

enum class Level { kError, kWarning, kInfo, kDebug };

/// Writes "<time> <LEVEL> <message>" as one write(2). Thread-safe.
void Write(Level level, std::string_view message);

inline void Error(std::string_view m) { Write(Level::kError, m); }
inline void Warning(std::string_view m) { Write(Level::kWarning, m); }
inline void Info(std::string_view m) { Write(Level::kInfo, m); }

}  // namespace ei::log
