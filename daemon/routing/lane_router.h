// Which lane runs a job, the Scheduler that the network layer submits to.
//
//   run, lane "interpreter" ----------------------> interpreter lane
//   run, lane "process" --------------------------> process lane
//   run, lane "auto" (the default):
//     its pickle names a --process-modules module -> process lane   (module)
//     its function needed the process lane before -> process lane   (remembered)
//     otherwise -------------------------------------> interpreter lane, which
//       hands it back when a sub-interpreter refuses it:
//         unpickling it imported a refusing module -> process lane  (load)
//         it raised that ImportError itself -------> process lane,  (run)
//           run again from the start, unless rerun is off
//
// A job handed back is remembered by its function (module.qualname, or
// the digest of a function shipped by value), so later calls go straight
// to the process lane.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "daemon/core/interpreter_pool.h"
#include "daemon/core/job.h"
#include "daemon/core/job_totals.h"
#include "daemon/core/scheduler.h"
#include "daemon/process/process_lane.h"

namespace ei {

struct RouterOptions {
  /// Top-level modules whose jobs run in the process lane (--process-modules).
  std::vector<std::string> process_modules;
  /// Whether a job that raised the sub-interpreter refusal runs again in
  /// the process lane (--process-rerun); a job can also turn it off.
  bool rerun = true;
};

class LaneRouter : public Scheduler {
 public:
  /// Both lanes and `totals` outlive the router.
  LaneRouter(InterpreterPool& interpreters, ProcessLane& processes, RouterOptions options,
             JobTotals* totals);

  void Submit(Job job) override;
  void Lease(Lane lane, std::function<void(LeaseGrant)> done) override;
  LeaseSubmit SubmitToLease(std::uint64_t lease_id, Job& job) override;
  JobControl::State Cancel(const std::shared_ptr<JobControl>& control) override;
  bool Release(std::uint64_t lease_id, std::function<void()> done) override;
  PoolSnapshot Snapshot() const override;
  std::size_t QueueDepth() const override;

 private:
  Lane Choose(Job& job, std::string* key);
  bool NamesProcessModule(const Job& job, std::string* key);
  void HandBack(Job job, Refusal refusal, const std::string& key);
  void Remember(const std::string& key);
  bool Remembers(const std::string& key) const;

  InterpreterPool& interpreters_;
  ProcessLane& processes_;
  const std::unordered_set<std::string> process_modules_;
  const bool rerun_;
  JobTotals* const totals_;

  mutable std::mutex mu_;
  // Functions that needed the process lane, oldest first (bounded).
  std::unordered_set<std::string> remembered_;  // guarded by mu_
  std::deque<std::string> remembered_order_;    // guarded by mu_
  // Whether a by-value definition's pickle names a process module, by
  // digest (bounded). I/O thread only.
  std::unordered_map<std::string, bool> definition_uses_module_;
};

}  // namespace ei
