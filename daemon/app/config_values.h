// The typed values of settings, as the config file or a flag gives them:
// sizes with k/M/G suffixes, seconds, lists.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ei {

using Json = nlohmann::json;

/// "10M", "64k", "1G" or plain bytes (binary multiples); nullopt if not one.
std::optional<std::uint64_t> ParseSize(const std::string& text);

/// `text` split on `sep`, empty parts dropped.
std::vector<std::string> Split(const std::string& text, char sep);

/// A list value: a JSON array of strings, or one string split on `sep`.
/// With `numbers`, array items may also be unsigned integers (uids, gids).
bool ReadList(const Json& value, char sep, std::vector<std::string>* out, bool numbers = false);

/// A size value: a JSON number or a string with an optional k/M/G suffix.
bool ReadSize(const Json& value, std::uint64_t* out);

/// Seconds as a JSON number or a numeric string; -1 when it is neither.
double ReadSeconds(const Json& value);

/// A JSON boolean, or "true"/"false"/"1"/"0"/"yes"/"no" as a flag gives it.
bool ReadBool(const Json& value, bool* out);

}  // namespace ei
