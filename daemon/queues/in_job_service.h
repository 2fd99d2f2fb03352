// The daemon's queues for code running in jobs: python::QueueService over
// the QueueStore that sessions use, so a job's put answers a client's get
// and the other way round.
#pragma once

#include "daemon/python/builtin_module.h"
#include "daemon/queues/queue_store.h"

namespace ei {

class JobWakeup;

/// Called on interpreter threads. A blocked Put or Get waits on the
/// current worker's JobWakeup (a local one off workers), so it ends when
/// the store answers it, when its timeout passes, or when the job is told
/// to stop, whichever comes first.
class InJobQueueService : public python::QueueService {
 public:
  explicit InJobQueueService(QueueStore& store) : store_(store) {}

  python::QueueCallResult Create(const std::optional<std::string>& name,
                                 std::size_t maxsize) override;
  python::QueueCallResult Open(const std::string& name) override;
  python::QueueCallResult Put(std::uint64_t queue, std::vector<char> item, bool block,
                              std::optional<double> timeout) override;
  python::QueueCallResult Get(std::uint64_t queue, bool block,
                              std::optional<double> timeout) override;
  python::QueueCallResult Info(std::uint64_t queue) override;
  python::QueueCallResult Delete(std::uint64_t queue) override;

 private:
  struct Answer;
  struct Pending;
  python::QueueCallResult Await(const std::shared_ptr<Answer>& answer, JobWakeup& wakeup,
                                QueueStore::WaiterId waiter, std::uint64_t queue,
                                std::optional<double> timeout, const char* timeout_code,
                                const char* timeout_state);

  QueueStore& store_;
};

}  // namespace ei
