#include "proto/socket_path.h"

#include <cstdlib>

namespace ei::proto {

std::string DefaultSocketPath() {
  if (const char* explicit_path = std::getenv("EXTRAINTERPRETERS_SOCKET");
      explicit_path != nullptr && *explicit_path != '\0') {
    return explicit_path;
  }
  if (const char* runtime_dir = std::getenv("XDG_RUNTIME_DIR");
      runtime_dir != nullptr && *runtime_dir != '\0') {
    return std::string(runtime_dir) + "/extrainterpreters/ei.sock";
  }
  return "/run/extrainterpreters/ei.sock";
}

}  // namespace ei::proto
