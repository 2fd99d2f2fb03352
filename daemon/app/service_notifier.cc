#include "daemon/app/service_notifier.h"

#include <time.h>

#include <boost/asio/post.hpp>

#include "daemon/base/log.h"

namespace ei {

namespace asio = boost::asio;
using State = InterpreterSnapshot::State;

ServiceNotifier::ServiceNotifier(asio::io_context& io, systemd::Notifier notifier,
                                 Scheduler& pool, const JobTotals& totals,
                                 const SessionManager& sessions)
    : io_(io),
      notifier_(std::move(notifier)),
      pool_(pool),
      totals_(totals),
      sessions_(sessions),
      status_timer_(io),
      probe_timer_(io) {}

void ServiceNotifier::Send(const std::string& state) {
  if (std::string why = notifier_.Send(state); !why.empty()) log::Warning("notify failed: " + why);
}

std::string ServiceNotifier::Summary() const {
  const PoolSnapshot snap = pool_.Snapshot();
  int pool = 0;
  int busy = 0;
  for (const InterpreterSnapshot& it : snap.interpreters) {
    if (it.role != InterpreterSnapshot::Role::kPool) continue;
    ++pool;
    busy += it.state == State::kBusy;
  }
  const std::uint64_t done = totals_.completed.load() + totals_.failed.load();
  return std::string(stopping_ ? "stopping" : snap.ready ? "ready" : "starting") + ": " +
         std::to_string(pool) + " pool interpreters (" + std::to_string(busy) + " busy), " +
         std::to_string(snap.active_leases) + " leases, " + std::to_string(done) +
         " jobs done, " + std::to_string(sessions_.size()) + " clients, queue " +
         std::to_string(snap.queue_depth);
}

void ServiceNotifier::Ready() {
  ready_ = true;
  Send("READY=1\n" + systemd::StatusField(Summary()));
  if (!notifier_.enabled()) return;
  ScheduleStatus();
  if (notifier_.watchdog_interval().count() > 0) {
    log::Info("watchdog: pinging every " +
              std::to_string(notifier_.watchdog_interval().count() / 1000) +
              " ms while the I/O loop and the pool answer a health probe");
    Probe();
  }
}

// Before READY=1, a reload is part of starting: systemd hears nothing.
void ServiceNotifier::Reloading() {
  if (!ready_) return;
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const long long usec = now.tv_sec * 1000000LL + now.tv_nsec / 1000;
  Send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\nSTATUS=reloading");
}

void ServiceNotifier::Reloaded() {
  if (ready_) Send("READY=1\n" + systemd::StatusField(Summary()));
}

void ServiceNotifier::Stopping(const std::string& why) {
  stopping_ = true;
  status_timer_.cancel();
  probe_timer_.cancel();
  Send("STOPPING=1\n" + systemd::StatusField("stopping: " + why));
}

void ServiceNotifier::ScheduleStatus() {
  status_timer_.expires_after(kStatusInterval);
  status_timer_.async_wait([this](const boost::system::error_code& error) {
    if (error || stopping_) return;
    Send(systemd::StatusField(Summary()));
    ScheduleStatus();
  });
}

void ServiceNotifier::ScheduleProbe() {
  probe_timer_.expires_after(notifier_.watchdog_interval());
  probe_timer_.async_wait([this](const boost::system::error_code& error) {
    if (!error && !stopping_) Probe();
  });
}

bool ServiceNotifier::PoolFullyBusy() const {
  const PoolSnapshot snap = pool_.Snapshot();
  bool any = false;
  for (const InterpreterSnapshot& it : snap.interpreters) {
    if (it.role != InterpreterSnapshot::Role::kPool) continue;
    if (it.state != State::kBusy) return false;
    any = true;
  }
  return any;
}

// The health check. This runs on the I/O thread, so running at all proves
// the loop turns; a no-op job sent through the real pool queue proves an
// interpreter takes jobs and answers. WATCHDOG=1 goes out when the probe
// comes back (posted to this loop). A probe still unanswered one interval
// later is fine only while every pool interpreter is busy with real work
// (long jobs are legitimate); otherwise the pool is wedged, no ping is sent,
// and systemd restarts the daemon after WatchdogSec.
void ServiceNotifier::Probe() {
  if (probe_sent_) {
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
        Clock::now() - *probe_sent_);
    if (PoolFullyBusy()) {
      Send("WATCHDOG=1");
    } else {
      log::Warning("watchdog: the health probe is unanswered after " +
                   std::to_string(waited.count()) +
                   " ms while a pool interpreter is not busy; not pinging");
    }
    ScheduleProbe();
    return;
  }
  const Clock::time_point sent = Clock::now();
  probe_sent_ = sent;
  Job probe;
  probe.payload = NoOpJobPayload();
  probe.control = std::make_shared<JobControl>(
      [&io = io_, weak = std::weak_ptr<ServiceNotifier*>(self_), sent](JobReply reply) {
        const bool ok = reply.disposition == JobReply::Disposition::kRan &&
                        reply.outcome.kind == JobOutcome::Kind::kOk;
        std::string why = ok ? "" : reply.outcome.error.message;
        asio::post(io, [weak, sent, ok, why] {
          if (auto self = weak.lock()) (*self)->OnProbeAnswered(sent, ok, why);
        });
      },
      std::nullopt);
  pool_.Submit(std::move(probe));
  ScheduleProbe();
}

void ServiceNotifier::OnProbeAnswered(Clock::time_point sent, bool ok, const std::string& why) {
  if (probe_sent_ != sent) return;
  probe_sent_.reset();
  if (stopping_) return;
  if (!ok) {
    log::Error("watchdog: the health probe failed in the pool: " + why + "; not pinging");
    return;
  }
  Send("WATCHDOG=1");
}

}  // namespace ei
