#include "daemon/app/config_values.h"

#include <charconv>
#include <cstdlib>
#include <sstream>

namespace ei {

// "10M", "64k", "1G" or plain bytes. Binary multiples.
std::optional<std::uint64_t> ParseSize(const std::string& text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  std::string suffix(end, text.data() + text.size());
  int shift = 0;
  if (suffix == "k" || suffix == "K" || suffix == "KiB") shift = 10;
  else if (suffix == "M" || suffix == "MiB") shift = 20;
  else if (suffix == "G" || suffix == "GiB") shift = 30;
  else if (!suffix.empty()) return std::nullopt;
  if (shift > 0 && value > (UINT64_MAX >> shift)) return std::nullopt;
  return value << shift;
}

std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, sep);) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

// A list value: a JSON array of strings, or one string split on `sep`.
// With `numbers`, array items may also be unsigned integers (uids, gids).
bool ReadList(const Json& value, char sep, std::vector<std::string>* out, bool numbers) {
  if (value.is_string()) {
    *out = Split(value.get<std::string>(), sep);
    return true;
  }
  if (!value.is_array()) return false;
  out->clear();
  for (const Json& item : value) {
    if (numbers && item.is_number_unsigned()) {
      out->push_back(std::to_string(item.get<std::uint64_t>()));
    } else if (item.is_string()) {
      out->push_back(item.get<std::string>());
    } else {
      return false;
    }
  }
  return true;
}

// A size value: a JSON number or a string with an optional k/M/G suffix.
bool ReadSize(const Json& value, std::uint64_t* out) {
  if (value.is_number_unsigned()) {
    *out = value.get<std::uint64_t>();
    return true;
  }
  if (!value.is_string()) return false;
  auto parsed = ParseSize(value.get<std::string>());
  if (parsed) *out = *parsed;
  return parsed.has_value();
}

// Seconds as a JSON number or a numeric string; -1 when it is neither.
double ReadSeconds(const Json& value) {
  if (value.is_number()) return value.get<double>();
  if (!value.is_string()) return -1;
  const std::string& text = value.get_ref<const std::string&>();
  char* end = nullptr;
  const double seconds = std::strtod(text.c_str(), &end);
  return end != text.c_str() && *end == '\0' ? seconds : -1;
}

bool ReadBool(const Json& value, bool* out) {
  if (value.is_boolean()) {
    *out = value.get<bool>();
    return true;
  }
  if (!value.is_string()) return false;
  const std::string& text = value.get_ref<const std::string&>();
  if (text == "true" || text == "1" || text == "yes") *out = true;
  else if (text == "false" || text == "0" || text == "no") *out = false;
  else return false;
  return true;
}

}  // namespace ei
