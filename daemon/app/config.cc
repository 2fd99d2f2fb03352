#include "daemon/app/config.h"

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "proto/socket_path.h"

namespace ei {
namespace {

using Json = nlohmann::json;

// Settings by key, as strings, from the file and then from flags (flags win).
using Settings = std::map<std::string, Json>;

const char* const kKeys[] = {"socket",
                             "workers",
                             "preload",
                             "buffer_size",
                             "max_interpreters",
                             "max_frame_bytes",
                             "max_header_bytes",
                             "python_path",
                             "cancel_grace",
                             "max_jobs_per_interpreter",
                             "max_definitions",
                             "allow_users",
                             "allow_groups",
                             "max_connections",
                             "max_jobs_per_connection",
                             "max_queue_depth",
                             "frame_deadline",
                             "idle_timeout",
                             "max_output_buffer",
                             "max_queues",
                             "max_queue_items",
                             "max_queue_bytes"};

bool KnownKey(const std::string& key) {
  for (const char* k : kKeys) {
    if (key == k) return true;
  }
  return false;
}

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
bool ReadList(const Json& value, char sep, std::vector<std::string>* out, bool numbers = false) {
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

std::string LoadFile(const std::string& path, Settings* settings) {
  std::ifstream in(path);
  if (!in) return "cannot read config file " + path + " (" + std::strerror(errno) + ")";
  Json doc = Json::parse(in, nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/true);
  if (doc.is_discarded() || !doc.is_object()) {
    return "config file " + path + " is not a JSON object";
  }
  for (auto& [key, value] : doc.items()) {
    if (!KnownKey(key)) return "config file " + path + ": unknown key \"" + key + "\"";
    (*settings)[key] = value;
  }
  return "";
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

// The connection limits. False when `key` is not one of them; else `*ok`
// says whether its value was valid.
bool ApplyLimit(const std::string& key, const Json& value, Config* config, bool* ok) {
  std::uint64_t number = 0;
  if (key == "max_connections" || key == "max_jobs_per_connection") {
    *ok = ReadSize(value, &number) && number >= 1 && number <= 10000000;
    if (*ok) {
      (key == "max_connections" ? config->max_connections : config->max_jobs_per_connection) =
          static_cast<int>(number);
    }
  } else if (key == "max_queue_depth") {
    *ok = ReadSize(value, &number) && number >= 1;
    if (*ok) config->max_queue_depth = number;
  } else if (key == "max_queues" || key == "max_queue_items" || key == "max_queue_bytes") {
    *ok = ReadSize(value, &number) && number >= 1;
    if (*ok) {
      (key == "max_queues" ? config->max_queues
       : key == "max_queue_items" ? config->max_queue_items : config->max_queue_bytes) = number;
    }
  } else if (key == "max_output_buffer") {
    *ok = ReadSize(value, &number) && number >= (64u << 10);
    if (*ok) config->max_output_buffer = number;
  } else if (key == "frame_deadline") {
    const double seconds = ReadSeconds(value);
    *ok = seconds > 0 && seconds <= 86400;
    if (*ok) config->frame_deadline_seconds = seconds;
  } else if (key == "idle_timeout") {
    const double seconds = ReadSeconds(value);
    *ok = seconds >= 0 && seconds <= 86400 * 365;
    if (*ok) config->idle_timeout_seconds = seconds;
  } else {
    return false;
  }
  return true;
}

// Turns the merged settings into a Config, naming the first bad key.
std::string Apply(const Settings& settings, Config* config) {
  for (const auto& [key, value] : settings) {
    bool ok = true;
    std::uint64_t number = 0;
    if (ApplyLimit(key, value, config, &ok)) {
      // one of the connection limits
    } else if (key == "socket") {
      ok = value.is_string();
      if (ok) config->socket = value.get<std::string>();
    } else if (key == "workers" || key == "max_interpreters") {
      ok = ReadSize(value, &number) && number >= 1 && number <= 1024;
      if (ok) (key == "workers" ? config->workers : config->max_interpreters) = static_cast<int>(number);
    } else if (key == "buffer_size") {
      ok = ReadSize(value, &number) && number >= 4096;
      if (ok) config->buffer_size = number;
    } else if (key == "max_frame_bytes") {
      ok = ReadSize(value, &number) && number >= (64u << 10) && number <= 0xFFFFFFFFull;
      if (ok) config->max_frame_bytes = number;
    } else if (key == "max_header_bytes") {
      ok = ReadSize(value, &number) && number >= 1024 && number <= (16u << 20);
      if (ok) config->max_header_bytes = static_cast<std::uint32_t>(number);
    } else if (key == "cancel_grace") {
      double seconds = -1;
      if (value.is_number()) seconds = value.get<double>();
      if (value.is_string()) seconds = std::strtod(value.get<std::string>().c_str(), nullptr);
      ok = seconds > 0 && seconds <= 3600;
      if (ok) config->cancel_grace_seconds = seconds;
    } else if (key == "max_jobs_per_interpreter") {
      ok = ReadSize(value, &number);
      if (ok) config->max_jobs_per_interpreter = number;
    } else if (key == "max_definitions") {
      ok = ReadSize(value, &number) && number >= 1 && number <= 1000000;
      if (ok) config->max_definitions = static_cast<int>(number);
    } else if (key == "preload") {
      ok = ReadList(value, ',', &config->preload);
    } else if (key == "python_path") {
      ok = ReadList(value, ':', &config->python_path);
    } else if (key == "allow_users") {
      ok = ReadList(value, ',', &config->allow_users, /*numbers=*/true);
    } else if (key == "allow_groups") {
      ok = ReadList(value, ',', &config->allow_groups, /*numbers=*/true);
    }
    if (!ok) return "invalid value for " + key + ": " + value.dump() + " (see --help)";
  }
  return "";
}

std::string FillDefaults(Config* config) {
  if (config->socket.empty()) config->socket = proto::DefaultSocketPath();
  if (config->socket.size() > proto::kMaxSocketPathBytes) {
    return "socket path " + config->socket + " is longer than " +
           std::to_string(proto::kMaxSocketPathBytes) + " bytes, the Unix socket limit";
  }
  if (config->workers == 0) {
    config->workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  if (config->max_interpreters == 0) config->max_interpreters = 4 * config->workers;
  if (config->max_interpreters < config->workers) {
    return "max_interpreters (" + std::to_string(config->max_interpreters) +
           ") must be at least workers (" + std::to_string(config->workers) + ")";
  }
  if (config->buffer_size > config->max_frame_bytes) config->buffer_size = config->max_frame_bytes;
  return "";
}

// Flags that take a value, and the setting each one sets.
const std::map<std::string, std::string>& FlagKeys() {
  static const std::map<std::string, std::string> keys = {
      {"--socket", "socket"},
      {"--workers", "workers"},
      {"--preload", "preload"},
      {"--buffer-size", "buffer_size"},
      {"--max-interpreters", "max_interpreters"},
      {"--max-frame-bytes", "max_frame_bytes"},
      {"--max-header-bytes", "max_header_bytes"},
      {"--python-path", "python_path"},
      {"--cancel-grace", "cancel_grace"},
      {"--max-jobs-per-interpreter", "max_jobs_per_interpreter"},
      {"--max-definitions", "max_definitions"},
      {"--allow-users", "allow_users"},
      {"--allow-groups", "allow_groups"},
      {"--max-connections", "max_connections"},
      {"--max-jobs-per-connection", "max_jobs_per_connection"},
      {"--max-queue-depth", "max_queue_depth"},
      {"--frame-deadline", "frame_deadline"},
      {"--idle-timeout", "idle_timeout"},
      {"--max-output-buffer", "max_output_buffer"},
      {"--max-queues", "max_queues"},
      {"--max-queue-items", "max_queue_items"},
      {"--max-queue-bytes", "max_queue_bytes"},
  };
  return keys;
}

}  // namespace

ParseResult ParseCommandLine(int argc, char** argv) {
  ParseResult result;
  Settings flags;
  auto fail = [&result](std::string why) {
    result.action = ParseResult::Action::kError;
    result.error = std::move(why);
    return result;
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      result.action = ParseResult::Action::kHelp;
      return result;
    }
    if (arg == "--version") {
      result.action = ParseResult::Action::kVersion;
      return result;
    }
    std::string value;
    // Named before its value is looked for: "--bogus" is unknown, not short
    // of a value.
    if (const std::string name = arg.substr(0, arg.find('='));
        arg.rfind("--", 0) == 0 && name != "--config" && !FlagKeys().contains(name)) {
      return fail("unknown flag " + name);
    }
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    } else if (arg.rfind("--", 0) == 0 && i + 1 < argc) {
      value = argv[++i];
    } else {
      return fail(arg.rfind("--", 0) == 0 ? "flag " + arg + " needs a value"
                                          : "unexpected argument \"" + arg + "\"");
    }
    if (arg == "--config") {
      result.config.config_file = value;
    } else if (auto it = FlagKeys().find(arg); it != FlagKeys().end()) {
      flags[it->second] = value;
    } else {
      return fail("unknown flag " + arg);
    }
  }
  Settings merged;
  if (!result.config.config_file.empty()) {
    if (std::string why = LoadFile(result.config.config_file, &merged); !why.empty()) {
      return fail(why);
    }
  }
  for (auto& [key, value] : flags) merged[key] = value;
  if (std::string why = Apply(merged, &result.config); !why.empty()) return fail(why);
  if (std::string why = FillDefaults(&result.config); !why.empty()) return fail(why);
  return result;
}

std::string UsageText() {
  return R"(Usage: extrainterpretersd [FLAGS]

Runs Python jobs sent over a Unix socket in a warm pool of CPython
sub-interpreters, each with its own GIL. Stays in the foreground and logs one
line per event to stderr; stop it with SIGTERM or SIGINT, reload the --config
file with SIGHUP (workers, allow_users and allow_groups change at once; the
rest is logged as needing a restart). Under systemd it takes its socket from
socket activation and speaks the notify protocol (docs/operations.md).

Flags (each also a key of the --config file, with _ for -; flags win):
  --socket PATH            Unix socket to listen on. Default:
                           $EXTRAINTERPRETERS_SOCKET, else
                           $XDG_RUNTIME_DIR/extrainterpreters/ei.sock, else
                           /run/extrainterpreters/ei.sock.
  --workers N              Pool interpreters (one OS thread each) that run
                           jobs sent without a lease. Default: number of CPUs.
  --max-interpreters N     Pool interpreters plus leased ones, at most.
                           Default: 4 x workers.
  --preload MOD[,MOD...]   Modules imported in every interpreter when it is
                           created, before it takes jobs. A module that fails
                           to import stops the daemon at start.
  --buffer-size BYTES      Initial shared buffer per interpreter; it grows on
                           demand up to --max-frame-bytes. Default: 10M.
  --max-frame-bytes BYTES  Largest frame accepted or sent (prefix, header and
                           payload). Default: 256M.
  --max-header-bytes BYTES Largest JSON header accepted. Default: 64k.
  --python-path DIR[:DIR]  Directories put first on sys.path of every
                           interpreter, so jobs can import their modules.
  --cancel-grace SECONDS   How long a cancelled or timed-out job may take to
                           stop before its interpreter is retired and
                           replaced. Default: 5.
  --max-jobs-per-interpreter N
                           Replace a pool interpreter with a fresh one after
                           it ran N jobs. Default: 0 (never).
  --max-definitions N      Functions shipped by value that one connection
                           may define. Default: 4096.
  --allow-users U[,U...]   Users (names or uids) who may connect, besides
                           root and the daemon's own user. Default: none.
  --allow-groups G[,G...]  Groups (names or gids) whose members may connect;
                           a user's supplementary groups count. Default: none.
                           Anyone else gets an access_denied error and is
                           disconnected before a byte is read.

Limits (past each, the client gets an error frame; docs/operations.md):
  --max-connections N      Open client connections, at most; one more gets a
                           busy error and is closed. Lowered at start to fit
                           RLIMIT_NOFILE, keeping descriptors in reserve for
                           interpreters and shared memory. Default: 1024.
  --max-jobs-per-connection N
                           Jobs in flight (queued or running) on one
                           connection; a run past it gets a busy error.
                           Default: 10000.
  --max-queue-depth N      Jobs queued and not yet started, pool and leases
                           together; a run past it gets a busy error.
                           Default: 100000.
  --frame-deadline SECONDS A started frame must finish arriving within this;
                           else too_slow and the connection is closed.
                           Default: 30.
  --idle-timeout SECONDS   Close a connection after this long with no frame
                           and no job in flight. Default: 0 (never).
  --max-output-buffer BYTES
                           Replies waiting for a client that does not read
                           them, besides the one being written; past it the
                           client is dropped. A reply is always taken when
                           none waits, however large. Default: 64M.
  --max-queues N           Queues (named and anonymous) the daemon holds;
                           one more gets queue_limit. Default: 1024.
  --max-queue-items N      Items one queue holds; a queue's maxsize of 0
                           means this. Past it a put waits or gets
                           queue_full, as the caller chose. Default: 100000.
  --max-queue-bytes BYTES  Bytes of pickled items one queue holds; past it,
                           as for max-queue-items. Default: 256M.
  --config FILE            JSON object with any of the keys: socket, workers,
                           max_interpreters, preload (list or "a,b"),
                           buffer_size, max_frame_bytes, max_header_bytes,
                           python_path (list or "a:b"), cancel_grace,
                           max_jobs_per_interpreter, max_definitions,
                           allow_users, allow_groups (lists or "a,b"),
                           max_connections, max_jobs_per_connection,
                           max_queue_depth, frame_deadline, idle_timeout,
                           max_output_buffer, max_queues, max_queue_items,
                           max_queue_bytes.
  --version                Print the version and the embedded Python, exit.
  -h, --help               Print this help, exit.

BYTES take an optional k, M or G suffix (binary multiples).
)";
}

}  // namespace ei
