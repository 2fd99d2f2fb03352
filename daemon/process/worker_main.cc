// Threads of a worker process:
// - main: embeds CPython and runs each job in the main interpreter (holding
//   its GIL only while the job runs), so a job can install signal handlers,
//   fork, and load any extension module;
// - reader: reads the link: runs and definitions go to main, queue replies
//   to the job waiting for them, stop requests to the stopper. It never
//   takes the GIL, so a job waiting for a queue reply with its GIL held
//   cannot block it;
// - stopper: leaves the stop exception pending (it needs the GIL) and
//   signals the main thread, whose handler raises it in the job.
#include "daemon/process/worker_main.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/base/log.h"
#include "daemon/base/mapped_file.h"
#include "daemon/core/shared_buffer.h"
#include "daemon/process/job_messages.h"
#include "daemon/process/link.h"
#include "daemon/process/spawn.h"
#include "daemon/process/worker_queues.h"
#include "daemon/python/builtin_module.h"
#include "daemon/python/job_runner.h"
#include "daemon/python/main_interpreter.h"
#include "daemon/python/runtime.h"
#include "python/python_build_info.h"

namespace ei {
namespace {

using Json = nlohmann::json;

// The signal whose handler raises a stop in the running job.
constexpr int kStopSignal = SIGUSR1;

// Freed heap memory the worker keeps between jobs (ConfigureAllocator),
// and how long it waits idle before it gives all of it back.
constexpr int kKeepBytes = 64 << 20;
constexpr std::chrono::seconds kTrimAfterIdle{1};

// A run the main thread has to do: its request, payload and descriptor.
struct PendingRun {
  RunRequest request;
  std::vector<char> payload;
  UniqueFd fd;
};

// What the reader hands the main and stopper threads; runs and stops each
// wake their own thread only.
class Inbox {
 public:
  void Define(const std::string& digest, std::vector<char> blob) {
    std::lock_guard lock(mu_);
    definitions_[digest] = std::make_shared<const std::vector<char>>(std::move(blob));
  }
  void ForgetDefinitions() {
    std::lock_guard lock(mu_);
    definitions_.clear();
  }
  void PushRun(PendingRun run) {
    std::lock_guard lock(mu_);
    runs_.push_back(std::move(run));
    runs_changed_.notify_one();
  }
  void PushStop(std::uint64_t job, bool timeout) {
    std::lock_guard lock(mu_);
    stops_.push_back({job, timeout});
    stops_changed_.notify_one();
  }
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    runs_changed_.notify_all();
    stops_changed_.notify_all();
  }
  // Main thread: the next run, or nullopt once the link ended (or, with
  // `idle`, once `wait` passed without one: then *idle is true).
  std::optional<PendingRun> NextRun(std::chrono::milliseconds wait = {}, bool* idle = nullptr) {
    std::unique_lock lock(mu_);
    auto ready = [&] { return closed_ || !runs_.empty(); };
    if (idle == nullptr) {
      runs_changed_.wait(lock, ready);
    } else {
      *idle = !runs_changed_.wait_for(lock, wait, ready);
    }
    if (runs_.empty()) return std::nullopt;
    PendingRun run = std::move(runs_.front());
    runs_.pop_front();
    return run;
  }
  // Stopper thread: the next stop request, or nullopt once the link ended.
  std::optional<std::pair<std::uint64_t, bool>> NextStop() {
    std::unique_lock lock(mu_);
    stops_changed_.wait(lock, [&] { return closed_ || !stops_.empty(); });
    if (stops_.empty()) return std::nullopt;
    auto stop = stops_.front();
    stops_.pop_front();
    return stop;
  }
  // The definitions a run uses; a missing one is left out (the job then
  // fails to load, naming it).
  std::vector<Definition> DefinitionsFor(const std::vector<std::string>& uses) {
    std::lock_guard lock(mu_);
    std::vector<Definition> found;
    for (const std::string& digest : uses) {
      if (auto it = definitions_.find(digest); it != definitions_.end()) {
        found.emplace_back(it->first, it->second);
      }
    }
    return found;
  }

 private:
  std::mutex mu_;
  std::condition_variable runs_changed_;   // the main thread waits here
  std::condition_variable stops_changed_;  // the stopper thread here
  std::map<std::string, std::shared_ptr<const std::vector<char>>> definitions_;
  std::deque<PendingRun> runs_;
  std::deque<std::pair<std::uint64_t, bool>> stops_;
  bool closed_ = false;
};

struct Worker {
  explicit Worker(UniqueFd link_fd, std::uint64_t max_frame_bytes)
      : link(std::move(link_fd), max_frame_bytes), queues(link, current_job, stop_consumed) {}

  WorkerLink link;
  Inbox inbox;
  python::JobRunner runner;
  std::atomic<std::uint64_t> current_job{0};    // the job the main thread runs (0: none)
  std::atomic<std::uint64_t> stop_consumed{0};  // a queue call raised this job's stop
  WorkerQueues queues;
  pthread_t main_thread = ::pthread_self();
  MappedFileCache argument_maps;  // main thread
  std::size_t pinned_bytes = 0;   // main thread: mappings jobs kept views of
};

void ReadLink(Worker& worker) {
  proto::Frame frame;
  UniqueFd fd;
  std::string why;
  while (worker.link.Receive(&frame, &fd, &why)) {
    const std::string type = frame.header.value("type", std::string());
    if (type == "run") {
      worker.inbox.PushRun({ReadRunHeader(frame.header), std::move(frame.payload), std::move(fd)});
    } else if (type == "define") {
      worker.inbox.Define(frame.header.value("digest", std::string()), std::move(frame.payload));
    } else if (type == "forget_definitions") {
      worker.inbox.ForgetDefinitions();
    } else if (type == "stop") {
      worker.inbox.PushStop(frame.header.value("id", std::uint64_t{0}),
                            frame.header.value("why", std::string()) == "timeout");
    } else if (type == "queue_reply") {
      worker.queues.Deliver(std::move(frame));
    }
    fd.reset();
  }
  // The daemon closed the link (or is gone): no more jobs.
  worker.queues.Close();
  worker.inbox.Close();
}

// Stops a job only while it is the one running, and only once: a queue
// call that already raised its stop (stop_consumed) leaves nothing to
// raise. Checked again with the GIL held, where both can change.
void StopJobs(Worker& worker) {
  while (auto stop = worker.inbox.NextStop()) {
    const auto [job, timeout] = *stop;
    auto still_wanted = [&] {
      return worker.current_job.load() == job && worker.stop_consumed.load() != job;
    };
    if (!still_wanted()) continue;
    python::MainInterpreter::RequestStop(worker.runner, timeout, still_wanted);
    if (worker.current_job.load() == job) ::pthread_kill(worker.main_thread, kStopSignal);
  }
}

// The worker's mapping of a run's argument file when it is one its client
// reuses (PROTOCOL.md, "Large data"), else nullptr (the job maps the file
// itself). Mapping and unmapping 512 KiB with its pages populated cost
// ~60 us per job, beside a numpy FFT of ~0.8 ms. A client's file may
// outlive its use here (the client dropped it, or went): the mappings, and
// with them the files' memory, are bounded (MappedFileCache), and let go
// when the worker idles. A mapping a job kept a view of stays for good
// (its views know nothing of it): past MappedFileCache::kMaxBytes of
// those, jobs map their files themselves again, whose mappings go with
// their last view (a lease that keeps each argument would otherwise grow
// without end).
std::shared_ptr<MappedFile> ArgumentMap(Worker& worker, const PendingRun& run) {
  struct stat st {};
  if (!run.request.region || !run.fd || worker.pinned_bytes >= MappedFileCache::kMaxBytes ||
      ::fstat(run.fd.get(), &st) != 0) {
    return nullptr;
  }
  return worker.argument_maps.Get(run.fd.get(), st.st_dev, st.st_ino,
                                  static_cast<std::size_t>(st.st_size));
}

// Runs one job in the main interpreter and sends its result.
void RunJob(Worker& worker, PendingRun& run, SharedBuffer& buffer) {
  const RunRequest& request = run.request;
  JobOutcome outcome;
  if (!buffer.Assign(run.payload)) {
    outcome.error = {"builtins.MemoryError", "the job is larger than the buffer limit", ""};
  } else {
    const std::size_t size = run.payload.size();
    std::vector<char>().swap(run.payload);
    const std::vector<Definition> definitions = worker.inbox.DefinitionsFor(request.uses);
    OutputSink output;
    if (request.output) {
      output = [&worker, id = request.id](std::string_view stream, std::string_view text) {
        worker.link.Send({{"type", "output"}, {"id", id}, {"stream", stream}, {"data", text}});
      };
    }
    python::MainInterpreter::Attached attached;
    // Set and cleared with the GIL held: the stopper checks it holding the
    // GIL too, so a stop lands in this job or not at all.
    worker.current_job.store(request.id);
    const std::shared_ptr<MappedFile> map = ArgumentMap(worker, run);
    outcome = worker.runner.Run(buffer.data(), buffer.capacity(), size, definitions, output,
                                {run.fd.get(), request.out_of_band, request.share_result, {},
                                 map ? map->data() : nullptr, map ? map->size() : 0});
    worker.current_job.store(0);
    // A job kept a view of it: it stays mapped for good, as in the daemon.
    if (map && outcome.out_of_band_map_kept) {
      map->Pin();
      worker.pinned_bytes += map->size();
    }
  }
  run.fd.reset();
  buffer.Reserve(outcome.needed_bytes);
  worker.link.Send(ResultHeader(request.id, outcome),
                   std::string_view(outcome.payload.data(), outcome.payload.size()),
                   outcome.result_fd.get());
}

// glibc's dynamic thresholds (its default) give a job's large temporaries
// back to the kernel as soon as they are freed: a numpy FFT of 64k samples
// allocates ~0.5 MiB buffers, faulted in (and zeroed) again by every job,
// ~120 page faults and a third of the worker's CPU per job beside the FFT
// itself. Fixed thresholds keep freed memory for the next job; the daemon
// does the same for itself (net/memory_trimmer.cc). What is kept goes
// back once the worker waits idle (RunJobs).
void ConfigureAllocator() {
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest dynamic value
  ::mallopt(M_TRIM_THRESHOLD, kKeepBytes);
}

// Main thread: runs jobs until the link ends, trimming the heap after a
// job once no other came within kTrimAfterIdle.
void RunJobs(Worker& worker, SharedBuffer& buffer) {
  while (true) {
    bool idle = false;
    std::optional<PendingRun> run = worker.inbox.NextRun(kTrimAfterIdle, &idle);
    if (idle) {
      worker.argument_maps.Clear();
      ::malloc_trim(0);
      run = worker.inbox.NextRun();
    }
    if (!run) return;
    RunJob(worker, *run, buffer);
  }
}

// Starts CPython and the bootstrap; "" or why it could not.
std::string StartPython(Worker& worker, const Json& spec) {
  Status status = python::Runtime::Initialize(
      {EI_PYTHON_HOME, spec.value("python_path", std::vector<std::string>{}),
       "extrainterpreters-worker"});
  if (!status.ok()) return status.message();
  python::SetQueueService(&worker.queues);
  python::MainInterpreter::Attached attached;
  status = worker.runner.Load(spec.value("preload", std::vector<std::string>{}));
  if (status.ok()) status = python::MainInterpreter::InstallStopSignal(worker.runner, kStopSignal);
  worker.queues.SetStopTypes(worker.runner.cancelled_type(), python::JobRunner::timeout_type());
  return status.ok() ? "" : status.message();
}

}  // namespace

int RunProcessWorker(const char* spec_text) {
  const Json spec = Json::parse(spec_text, nullptr, /*allow_exceptions=*/false);
  if (!spec.is_object()) {
    log::Error("cannot start: the process worker spec is not a JSON object");
    return 2;
  }
  // Ends with the daemon, whatever happens to it; a daemon that ended
  // before this line is noticed by the parent check.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != spec.value("parent", 0L)) return 1;
  ::signal(SIGPIPE, SIG_IGN);
  ConfigureAllocator();
  Worker worker(UniqueFd(kWorkerLinkFd), spec.value("max_frame_bytes", std::uint64_t{256} << 20));
  if (std::string why = StartPython(worker, spec); !why.empty()) {
    worker.link.Send({{"type", "failed"}, {"id", 0}, {"message", why}});
    return 1;
  }
  worker.link.Send({{"type", "ready"},
                    {"id", 0},
                    {"pid", static_cast<long>(::getpid())},
                    {"python", python::Runtime::Version()}});
  std::thread reader(ReadLink, std::ref(worker));
  std::thread stopper(StopJobs, std::ref(worker));
  SharedBuffer buffer(spec.value("buffer_size", std::size_t{10} << 20),
                      spec.value("max_frame_bytes", std::size_t{256} << 20));
  RunJobs(worker, buffer);
  // The link ended. Threads a job left running would keep the process
  // alive, and finalizing would wait for them: exit now.
  reader.join();
  stopper.join();
  std::_Exit(0);
}

}  // namespace ei
