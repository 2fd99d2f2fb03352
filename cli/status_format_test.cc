#include "cli/status_format.h"

#include <gtest/gtest.h>

namespace ei::ctl {
namespace {

TEST(StatusFormat, ShowsEveryPartOfTheStatusDocument) {
  const auto status = nlohmann::json::parse(R"({
    "daemon_version": "0.1.0", "pid": 42, "python": "3.13.0", "state": "ready",
    "socket": "/run/extrainterpreters/ei.sock", "uptime_seconds": 3725.5,
    "leases": {"active": 1, "max": 8}, "queue_depth": 3, "connections": 2,
    "totals": {"submitted": 10, "completed": 7, "failed": 2, "dropped": 1, "cancelled": 1,
               "timeouts": 0},
    "retired": {"stuck": 1, "recycled": 2, "threads": 3},
    "latency_us": {"p50": 210.4, "p99": 1234.6, "samples": 10},
    "workers": [
      {"id": 1, "interpreter": 3, "kind": "pool", "lease": null, "state": "busy",
       "jobs_done": 5, "current_job_age_seconds": 2.25},
      {"id": 2, "interpreter": 4, "kind": "lease", "lease": 9, "state": "idle",
       "jobs_done": 2, "current_job_age_seconds": null}],
    "process_workers": [
      {"id": 7, "pid": 4711, "kind": "pool", "lease": null, "state": "busy", "jobs_done": 3,
       "current_job_age_seconds": 1.5, "rss_bytes": 33554432}],
    "lanes": {"interpreter": {"jobs": 8}, "process": {"jobs": 4, "crashed": 1,
              "routed": {"module": 2, "remembered": 1, "load_refused": 0, "run_refused": 1}}}})");
  const std::string text = FormatStatus(status);
  for (const char* part :
       {"extrainterpretersd 0.1.0, pid 42, Python 3.13.0", "ready, up 1h 02m",
        "/run/extrainterpreters/ei.sock", "1 pool, 1 leased, max 8 interpreters",
        "3 jobs waiting, 2 clients connected", "10 submitted, 7 completed, 2 failed, 1 dropped; 1 cancelled, 0 timed out",
        "1 stuck, 2 recycled, 3 left with threads running (interpreters)",
        "p50 210 us, p99 1.2 ms over the last 10 jobs", "WORKER", "2.2s",
        "8 in sub-interpreters, 4 in worker processes (chosen for 2 by module, 1 remembered, "
        "0 refused loading, 1 run again); 1 worker crashes",
        "PROCESS", "4711", "32.0 MiB", "1.5s"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << " not in:\n" << text;
  }
  // Rows are aligned: each column starts at the same offset on every line.
  const auto header = text.find("WORKER");
  const auto line_start = text.rfind('\n', header) + 1;
  const auto kind_col = text.find("KIND", header) - line_start;
  const auto pool_row = text.find("1  ", header + 1);
  const auto row_start = text.rfind('\n', pool_row) + 1;
  EXPECT_EQ(text.find("pool", row_start) - row_start, kind_col);
}

TEST(StatusFormat, ToleratesMissingKeys) {
  const std::string text = FormatStatus(nlohmann::json::object());
  EXPECT_NE(text.find("extrainterpretersd -, pid -"), std::string::npos) << text;
}

// Latencies in the unit that keeps them short (a p50 of 615180 us is 615 ms).
TEST(StatusFormat, LatenciesInHumanUnits) {
  const struct {
    double p50, p99;
    const char* shown;
  } cases[] = {
      {210.4, 999.4, "p50 210 us, p99 999 us"},
      {1234.6, 99949, "p50 1.2 ms, p99 99.9 ms"},
      {615180, 2400000, "p50 615 ms, p99 2.40 s"},
  };
  for (const auto& c : cases) {
    const auto status = nlohmann::json{{"latency_us", {{"p50", c.p50}, {"p99", c.p99}}}};
    const std::string text = FormatStatus(status);
    EXPECT_NE(text.find(c.shown), std::string::npos) << c.shown << " not in:\n" << text;
  }
}

TEST(StatusFormat, Durations) {
  EXPECT_EQ(FormatDuration(5.9), "5s");
  EXPECT_EQ(FormatDuration(65), "1m 05s");
  EXPECT_EQ(FormatDuration(3 * 3600 + 120), "3h 02m");
  EXPECT_EQ(FormatDuration(2 * 86400 + 4 * 3600), "2d 04h");
}

}  // namespace
}  // namespace ei::ctl
