// Keeps the service manager informed (READY, STATUS, RELOADING, STOPPING)
// and pings its watchdog only while the I/O loop and the pool both answer.
// I/O thread only.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/app/systemd_notify.h"
#include "daemon/core/job_totals.h"
#include "daemon/core/scheduler.h"
#include "daemon/net/session_manager.h"

namespace ei {

class ServiceNotifier {
 public:
  using Clock = std::chrono::steady_clock;

  /// How often STATUS= is refreshed while the daemon runs.
  static constexpr std::chrono::seconds kStatusInterval{5};

  ServiceNotifier(boost::asio::io_context& io, systemd::Notifier notifier, Scheduler& pool,
                  const JobTotals& totals, const SessionManager& sessions);

  /// READY=1 with a STATUS line; starts the status refresh and, when
  /// systemd asked for one, the watchdog health probe.
  void Ready();

  /// RELOADING=1 (with MONOTONIC_USEC=, as systemd 253+ wants).
  void Reloading();

  /// READY=1 after a reload, with a fresh STATUS line.
  void Reloaded();

  /// STOPPING=1; no more pings or status refreshes.
  void Stopping(const std::string& why);

  /// The one-line summary STATUS= carries, e.g. "ready: 4 pool interpreters
  /// (1 busy), 0 leases, 12 jobs done, 2 clients, queue 0".
  std::string Summary() const;

 private:
  void Send(const std::string& state);
  void ScheduleStatus();
  void ScheduleProbe();
  void Probe();
  void OnProbeAnswered(Clock::time_point sent, bool ok, const std::string& why);
  bool PoolFullyBusy() const;

  boost::asio::io_context& io_;
  const systemd::Notifier notifier_;
  Scheduler& pool_;
  const JobTotals& totals_;
  const SessionManager& sessions_;
  boost::asio::steady_timer status_timer_;
  boost::asio::steady_timer probe_timer_;
  std::optional<Clock::time_point> probe_sent_;  // a probe is on its way
  bool ready_ = false;  // READY=1 was sent
  bool stopping_ = false;
  // Lets answers that arrive after this object is gone find out.
  std::shared_ptr<ServiceNotifier*> self_ = std::make_shared<ServiceNotifier*>(this);
};

}  // namespace ei
