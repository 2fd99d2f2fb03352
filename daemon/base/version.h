// The daemon's release and protocol versions.
#pragma once

namespace ei {

inline constexpr char kDaemonVersion[] = "0.1.0";
inline constexpr int kProtocolVersion = 1;

}  // namespace ei
