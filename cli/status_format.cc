#include "cli/status_format.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <vector>

namespace ei::ctl {
namespace {

using Json = nlohmann::json;

std::string Text(const Json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_float()) {
    char out[32];
    std::snprintf(out, sizeof out, "%.0f", it->get<double>());
    return out;
  }
  return it->dump();
}

// A latency in the unit that keeps it short: "210 us", "12.3 ms", "615 ms",
// "2.40 s".
std::string Micros(const Json& value) {
  if (!value.is_number()) return "-";
  const double us = value.get<double>();
  char out[32];
  if (us < 1000) {
    std::snprintf(out, sizeof out, "%.0f us", us);
  } else if (us < 100e3) {
    std::snprintf(out, sizeof out, "%.1f ms", us / 1e3);
  } else if (us < 1e6) {
    std::snprintf(out, sizeof out, "%.0f ms", us / 1e3);
  } else {
    std::snprintf(out, sizeof out, "%.2f s", us / 1e6);
  }
  return out;
}

// "31.5 MiB": a process's resident memory.
std::string Bytes(const Json& value) {
  if (!value.is_number()) return "-";
  char out[32];
  std::snprintf(out, sizeof out, "%.1f MiB", value.get<double>() / (1 << 20));
  return out;
}

// Jobs per lane, and why auto jobs went to the process lane.
std::string Lanes(const Json& lanes) {
  const Json empty = Json::object();
  const Json& interpreter = lanes.contains("interpreter") ? lanes["interpreter"] : empty;
  const Json& process = lanes.contains("process") ? lanes["process"] : empty;
  const Json& routed = process.contains("routed") ? process["routed"] : empty;
  return Text(interpreter, "jobs") + " in sub-interpreters, " + Text(process, "jobs") +
         " in worker processes (chosen for " + Text(routed, "module") + " by module, " +
         Text(routed, "remembered") + " remembered, " + Text(routed, "load_refused") +
         " refused loading, " + Text(routed, "run_refused") + " run again); " +
         Text(process, "crashed") + " worker crashes";
}

std::string Age(const Json& value) {
  if (!value.is_number()) return "-";
  char out[32];
  const double secs = value.get<double>();
  if (secs < 60) {
    std::snprintf(out, sizeof out, "%.1fs", secs);
    return out;
  }
  return FormatDuration(secs);
}

// Left-aligned columns, two spaces apart.
std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

// The process lane's workers, one row each.
std::string ProcessWorkers(const Json& status) {
  std::vector<std::vector<std::string>> rows = {
      {"PROCESS", "PID", "KIND", "LEASE", "STATE", "JOBS DONE", "RSS", "CURRENT JOB"}};
  if (!status.contains("process_workers") || !status["process_workers"].is_array()) return "";
  for (const Json& w : status["process_workers"]) {
    rows.push_back({Text(w, "id"), Text(w, "pid"), Text(w, "kind"), Text(w, "lease"),
                    Text(w, "state"), Text(w, "jobs_done"), Bytes(w.value("rss_bytes", Json())),
                    Age(w.value("current_job_age_seconds", Json()))});
  }
  return rows.size() > 1 ? "\n" + Table(rows) : "";
}

}  // namespace

std::string FormatDuration(double seconds) {
  const long s = static_cast<long>(seconds);
  char out[32];
  if (s < 60) std::snprintf(out, sizeof out, "%lds", s);
  else if (s < 3600) std::snprintf(out, sizeof out, "%ldm %02lds", s / 60, s % 60);
  else if (s < 86400) std::snprintf(out, sizeof out, "%ldh %02ldm", s / 3600, s % 3600 / 60);
  else std::snprintf(out, sizeof out, "%ldd %02ldh", s / 86400, s % 86400 / 3600);
  return out;
}

std::string FormatStatus(const Json& status) {
  const Json empty = Json::object();
  const Json& leases = status.contains("leases") ? status["leases"] : empty;
  const Json& totals = status.contains("totals") ? status["totals"] : empty;
  const Json& latency = status.contains("latency_us") ? status["latency_us"] : empty;
  const Json& retired = status.contains("retired") ? status["retired"] : empty;
  const Json& queues = status.contains("queues") ? status["queues"] : empty;
  const Json& lanes = status.contains("lanes") ? status["lanes"] : empty;
  const double uptime = status.value("uptime_seconds", 0.0);
  std::size_t pool = 0;
  if (status.contains("workers") && status["workers"].is_array()) {
    for (const Json& w : status["workers"]) pool += w.value("kind", "") == "pool";
  }
  std::string out = Table({
      {"daemon", "extrainterpretersd " + Text(status, "daemon_version") + ", pid " +
                     Text(status, "pid") + ", Python " + Text(status, "python")},
      {"state", Text(status, "state") + ", up " + FormatDuration(uptime)},
      {"socket", Text(status, "socket")},
      {"workers", std::to_string(pool) + " pool, " + Text(leases, "active") + " leased, max " +
                      Text(leases, "max") + " interpreters"},
      {"queue", Text(status, "queue_depth") + " jobs waiting, " + Text(status, "connections") +
                    " clients connected"},
      {"queues", Text(queues, "count") + " queues, " + Text(queues, "waiters") +
                     " blocked puts and gets"},
      {"jobs", Text(totals, "submitted") + " submitted, " + Text(totals, "completed") +
                   " completed, " + Text(totals, "failed") + " failed, " +
                   Text(totals, "dropped") + " dropped; " + Text(totals, "cancelled") +
                   " cancelled, " + Text(totals, "timeouts") + " timed out"},
      {"retired", Text(retired, "stuck") + " stuck, " + Text(retired, "recycled") +
                      " recycled, " + Text(retired, "threads") +
                      " left with threads running (interpreters)"},
      {"lanes", Lanes(lanes)},
      {"latency", "p50 " + Micros(latency.value("p50", Json())) + ", p99 " +
                      Micros(latency.value("p99", Json())) + " over the last " +
                      Text(latency, "samples") + " jobs"},
  });
  std::vector<std::vector<std::string>> rows = {
      {"WORKER", "INTERPRETER", "KIND", "LEASE", "STATE", "JOBS DONE", "CURRENT JOB"}};
  if (status.contains("workers") && status["workers"].is_array()) {
    for (const Json& w : status["workers"]) {
      rows.push_back({Text(w, "id"), Text(w, "interpreter"), Text(w, "kind"), Text(w, "lease"),
                      Text(w, "state"), Text(w, "jobs_done"),
                      Age(w.value("current_job_age_seconds", Json()))});
    }
  }
  return out + "\n" + Table(rows) + ProcessWorkers(status);
}

std::string FormatQueues(const Json& status) {
  const Json empty = Json::object();
  const Json& queues = status.contains("queues") ? status["queues"] : empty;
  std::vector<std::vector<std::string>> rows = {
      {"QUEUE", "NAME OR OWNER", "SIZE", "MAXSIZE", "BYTES", "WAITERS"}};
  std::size_t shown = 0;
  if (queues.contains("list") && queues["list"].is_array()) {
    for (const Json& q : queues["list"]) {
      const auto name = q.find("name");
      const std::string who = name != q.end() && name->is_string()
                                  ? name->get<std::string>()
                                  : "(connection " + Text(q, "owner") + ")";
      rows.push_back({Text(q, "id"), who, Text(q, "size"), Text(q, "maxsize"), Text(q, "bytes"),
                      Text(q, "waiters")});
      ++shown;
    }
  }
  std::string out = Table(rows);
  const std::size_t count = queues.value("count", shown);
  if (count > shown) out += "... and " + std::to_string(count - shown) + " more queues\n";
  return out;
}

}  // namespace ei::ctl
