// Where clients and the daemon look for the socket when none is given.
#pragma once

#include <string>

namespace ei::proto {

/// $EXTRAINTERPRETERS_SOCKET, else $XDG_RUNTIME_DIR/extrainterpreters/ei.sock,
/// else /run/extrainterpreters/ei.sock. The Python client resolves the same way.
std::string DefaultSocketPath();

/// Longest path a Unix socket address holds (sun_path less its NUL).
inline constexpr std::size_t kMaxSocketPathBytes = 107;

}  // namespace ei::proto
