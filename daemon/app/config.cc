#include "daemon/app/config.h"

#include <algorithm>
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

#include "daemon/app/config_values.h"
#include "proto/socket_path.h"

namespace ei {
namespace {

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
                             "idle_spin_us",
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
                             "max_queue_bytes",
                             "process_workers",
                             "max_process_workers",
                             "process_modules",
                             "process_rerun",
                             "max_jobs_per_process_worker",
                             "process_worker_idle"};

bool KnownKey(const std::string& key) {
  for (const char* k : kKeys) {
    if (key == k) return true;
  }
  return false;
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

// "+name" entries add to the default process modules; plain ones replace
// them; none at all clears them.
void SetProcessModules(std::vector<std::string> listed, Config* config) {
  const bool adding =
      !listed.empty() && std::all_of(listed.begin(), listed.end(),
                                     [](const std::string& name) { return name[0] == '+'; });
  if (!adding) {
    config->process_modules = std::move(listed);
    return;
  }
  config->process_modules = Config::DefaultProcessModules();
  for (const std::string& name : listed) config->process_modules.push_back(name.substr(1));
}

// The process lane's settings. False when `key` is not one of them; else
// `*ok` says whether its value was valid.
bool ApplyProcess(const std::string& key, const Json& value, Config* config, bool* ok) {
  std::uint64_t number = 0;
  if (key == "process_workers" || key == "max_process_workers") {
    *ok = ReadSize(value, &number) && number <= 1024 && (key == "process_workers" || number >= 1);
    if (*ok) {
      (key == "process_workers" ? config->process_workers : config->max_process_workers) =
          static_cast<int>(number);
    }
  } else if (key == "process_modules") {
    std::vector<std::string> listed;
    *ok = ReadList(value, ',', &listed);
    if (*ok) SetProcessModules(std::move(listed), config);
  } else if (key == "process_rerun") {
    *ok = ReadBool(value, &config->process_rerun);
  } else if (key == "max_jobs_per_process_worker") {
    *ok = ReadSize(value, &number);
    if (*ok) config->max_jobs_per_process_worker = number;
  } else if (key == "process_worker_idle") {
    const double seconds = ReadSeconds(value);
    *ok = seconds >= 0 && seconds <= 86400 * 365;
    if (*ok) config->process_worker_idle_seconds = seconds;
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
    if (ApplyLimit(key, value, config, &ok) || ApplyProcess(key, value, config, &ok)) {
      // one of the connection limits, or a process lane setting
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
    } else if (key == "idle_spin_us") {
      ok = ReadSize(value, &number) && number <= 100000;
      if (ok) config->idle_spin_us = static_cast<int>(number);
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
  if (config->max_process_workers == 0) {
    config->max_process_workers = std::max(
        config->process_workers, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  }
  if (config->max_process_workers < config->process_workers) {
    return "max_process_workers (" + std::to_string(config->max_process_workers) +
           ") must be at least process_workers (" + std::to_string(config->process_workers) + ")";
  }
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
      {"--idle-spin-us", "idle_spin_us"},
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
      {"--process-workers", "process_workers"},
      {"--max-process-workers", "max_process_workers"},
      {"--process-modules", "process_modules"},
      {"--process-rerun", "process_rerun"},
      {"--max-jobs-per-process-worker", "max_jobs_per_process_worker"},
      {"--process-worker-idle", "process_worker_idle"},
  };
  return keys;
}

}  // namespace

namespace {

// Reads argv into `flags` (and the --config path into `config`). Returns
// kRun, or kHelp/kVersion, or kError with `*error` set.
ParseResult::Action ReadFlags(int argc, char** argv, Settings* flags, Config* config,
                              std::string* error) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return ParseResult::Action::kHelp;
    if (arg == "--version") return ParseResult::Action::kVersion;
    const bool is_flag = arg.rfind("--", 0) == 0;
    // Named before its value is looked for: "--bogus" is unknown, not short
    // of a value.
    if (const std::string name = arg.substr(0, arg.find('='));
        is_flag && name != "--config" && !FlagKeys().contains(name)) {
      *error = "unknown flag " + name;
      return ParseResult::Action::kError;
    }
    std::string value;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    } else if (is_flag && i + 1 < argc) {
      value = argv[++i];
    } else {
      *error = is_flag ? "flag " + arg + " needs a value" : "unexpected argument \"" + arg + "\"";
      return ParseResult::Action::kError;
    }
    if (arg == "--config") {
      config->config_file = value;
    } else if (auto it = FlagKeys().find(arg); it != FlagKeys().end()) {
      (*flags)[it->second] = value;
    } else {
      *error = "unknown flag " + arg;
      return ParseResult::Action::kError;
    }
  }
  return ParseResult::Action::kRun;
}

}  // namespace

std::vector<std::string> Config::DefaultProcessModules() {
  return {"numpy",  "pandas",  "scipy",   "sklearn",    "torch",        "tensorflow",
          "jax",    "jaxlib",  "matplotlib", "PIL",     "cv2",          "pyarrow",
          "polars", "numba",   "h5py",    "lxml",       "pydantic_core", "orjson",
          "cryptography", "psycopg2", "psutil"};
}

ParseResult ParseCommandLine(int argc, char** argv) {
  ParseResult result;
  Settings flags;
  result.action = ReadFlags(argc, argv, &flags, &result.config, &result.error);
  if (result.action != ParseResult::Action::kRun) return result;
  auto fail = [&result](std::string why) {
    result.action = ParseResult::Action::kError;
    result.error = std::move(why);
    return result;
  };
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

}  // namespace ei
