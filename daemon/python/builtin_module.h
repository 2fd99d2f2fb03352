// `_extrainterpreters`, the module the daemon builds into every interpreter:
// the daemon's queues for code running in a job (no socket), and the client
// package's sources, so `import extrainterpreters` works inside a job.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct _object;

namespace ei::python {

/// What one queue call made by a job came to.
struct QueueCallResult {
  /// "" when it worked; else a PROTOCOL.md error code ("queue_empty",
  /// "queue_full", "unknown_queue", "queue_gone", "item_too_large",
  /// "queue_limit", "queue_exists", "bad_request"), or "stopped": the job
  /// was cancelled or timed out while it waited.
  std::string code;
  std::string why;
  _object* stop_type = nullptr;  // when "stopped": the exception the job gets
  std::vector<char> item;        // a get's pickled item
  std::uint64_t queue = 0;       // create, open, info
  std::size_t maxsize = 0;       // open, info
  std::optional<std::string> name;                           // info
  std::size_t size = 0, bytes = 0, getters = 0, putters = 0;  // info
};

/// The daemon's queues as jobs see them. Implemented outside this package
/// (daemon/queues/in_job_service.h); called on interpreter threads.
class QueueService {
 public:
  virtual ~QueueService() = default;
  virtual QueueCallResult Create(const std::optional<std::string>& name, std::size_t maxsize) = 0;
  virtual QueueCallResult Open(const std::string& name) = 0;
  /// Put and Get may wait when `block`: they are then called without the
  /// GIL; without `block`, with it.
  virtual QueueCallResult Put(std::uint64_t queue, std::vector<char> item, bool block,
                              std::optional<double> timeout) = 0;
  virtual QueueCallResult Get(std::uint64_t queue, bool block, std::optional<double> timeout) = 0;
  virtual QueueCallResult Info(std::uint64_t queue) = 0;
  virtual QueueCallResult Delete(std::uint64_t queue) = 0;
};

/// Adds `_extrainterpreters` to the built-in modules. Call once, before
/// Python is initialised.
void RegisterBuiltinModule();

/// The service the module's queue functions use; set before the first
/// interpreter starts, and left alone while interpreters run. Without one,
/// they raise RuntimeError.
void SetQueueService(QueueService* service);

}  // namespace ei::python
