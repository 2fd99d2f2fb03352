#include "daemon/process/process_worker.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <utility>

#include "daemon/base/log.h"
#include "daemon/process/job_messages.h"
#include "daemon/process/queue_messages.h"

namespace ei {

namespace {

using Json = nlohmann::json;
using State = ProcessWorkerSnapshot::State;
using Disposition = JobReply::Disposition;

// Definitions a worker process keeps; past this many it forgets them all
// (the daemon sends them again as jobs need them).
constexpr std::size_t kMaxDefinitions = 8192;

// How long a process whose link closed may take to exit before SIGKILL.
constexpr std::chrono::milliseconds kExitGrace{2000};

// What a stopped call's wakeup is fired with: any non-null pointer means
// "stopped" to the queue service; which exception the job gets is the
// worker process's business (queue_messages.h).
char kStopMarker;

}  // namespace

ProcessWorker::ProcessWorker(int worker_id, Role role, std::shared_ptr<RunQueue> queue,
                             const ProcessWorkerOptions& options, python::QueueService* queues,
                             JobTotals* totals)
    : worker_id_(worker_id),
      queue_(std::move(queue)),
      options_(options),
      queues_(queues),
      totals_(totals) {
  snapshot_.worker_id = worker_id;
  snapshot_.role = role;
}

ProcessWorker::~ProcessWorker() { Join(); }

void ProcessWorker::Start(Callbacks callbacks) {
  thread_ = std::thread(&ProcessWorker::Main, this, std::move(callbacks));
}

void ProcessWorker::Join() {
  if (thread_.joinable()) thread_.join();
}

// Through a pidfd: once reaped, the pid could name another process.
void ProcessWorker::Kill() {
  std::lock_guard lock(mu_);
  if (pidfd_) ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
}

void ProcessWorker::MarkLeased(std::uint64_t lease_id) {
  std::lock_guard lock(mu_);
  snapshot_.role = Role::kLease;
  snapshot_.lease_id = lease_id;
}

ProcessWorkerSnapshot ProcessWorker::Snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

void ProcessWorker::SetState(State state) {
  std::lock_guard lock(mu_);
  snapshot_.state = state;
  if (state == State::kBusy) snapshot_.job_started = std::chrono::steady_clock::now();
  if (state == State::kIdle && snapshot_.job_started) {
    snapshot_.job_started.reset();
    ++snapshot_.jobs_done;
  }
}

void ProcessWorker::SetCurrent(std::shared_ptr<JobControl> control, std::uint64_t run_id) {
  std::lock_guard lock(mu_);
  current_ = std::move(control);
  current_run_ = run_id;
}

// The stop request goes first, then the wakeup: the link is a stream, so
// the worker reads the request before the "stopped" reply of a queue call
// the wakeup ends (worker_main.cc relies on that order).
void ProcessWorker::Interrupt(const std::shared_ptr<JobControl>& control) {
  std::lock_guard lock(mu_);
  if (current_ != control || link_ == nullptr) return;
  const bool timeout = control->stop() == JobControl::Stop::kTimeout;
  link_->Send({{"type", "stop"}, {"id", current_run_}, {"why", timeout ? "timeout" : "cancel"}});
  wakeup_.Fire(reinterpret_cast<_object*>(&kStopMarker));
}

void ProcessWorker::Main(Callbacks callbacks) {
  JobWakeup::SetCurrent(&wakeup_);
  const std::string why = Launch();
  if (!why.empty()) {
    SetState(State::kStopping);
    EndProcess();
    callbacks.on_ready(*this, Status::Error(why));
    callbacks.on_exit(*this);
    return;
  }
  SetState(State::kIdle);
  callbacks.on_ready(*this, Status::Ok());
  Serve(callbacks);
  SetState(State::kStopping);
  if (retired_ || ended_) callbacks.on_retire(*this);
  EndProcess();
  callbacks.on_exit(*this);
}

// Starts the process and waits for its "ready"; "" or why it failed.
std::string ProcessWorker::Launch() {
  SpawnedWorker spawned = SpawnWorker(options_.spec);
  if (spawned.pid < 0) return spawned.error;
  pid_ = spawned.pid;
  {
    std::lock_guard lock(mu_);
    pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, spawned.pid, 0)));
    snapshot_.pid = spawned.pid;
    link_ = std::make_unique<WorkerLink>(std::move(spawned.link), options_.spec.max_frame_bytes);
  }
  proto::Frame frame;
  UniqueFd fd;
  std::string why;
  if (!link_->Receive(&frame, &fd, &why)) {
    return "process worker " + std::to_string(worker_id_) + " (pid " +
           std::to_string(spawned.pid) + ") " + EndProcess() + " while starting";
  }
  if (frame.header.value("type", std::string()) != "ready") {
    return "process worker " + std::to_string(worker_id_) + " could not start: " +
           frame.header.value("message", std::string("it sent ") + frame.header.dump());
  }
  return "";
}

// The next job, or nullopt when the queue closed or the lane let this idle
// pool worker end (then it is neither retired nor replaced).
std::optional<Job> ProcessWorker::NextJob(bool pool, const Callbacks& callbacks) {
  if (!pool || options_.idle_exit.count() == 0 || !callbacks.on_idle) return queue_->Pop();
  while (true) {
    bool idle = false;
    std::optional<Job> job = queue_->PopWithin(options_.idle_exit, &idle);
    if (!idle) return job;
    if (callbacks.on_idle(*this)) return std::nullopt;
  }
}

void ProcessWorker::Serve(const Callbacks& callbacks) {
  const bool pool = Snapshot().role == Role::kPool;
  const bool recycles = options_.max_jobs > 0 && pool;
  std::uint64_t ran = 0;
  while (!retired_ && !ended_) {
    std::optional<Job> job = NextJob(pool, callbacks);
    if (!job) break;
    if (job->is_abandoned()) {
      callbacks.on_drop();
      continue;
    }
    if (!job->control->BeginRun(this)) continue;  // answered while queued
    SetState(State::kBusy);
    JobReply reply = RunOne(*job);
    job->control->Finish();
    SetState(State::kIdle);
    const int threads = reply.outcome.threads_left;
    job->control->Answer(std::move(reply));
    // Threads a job left running would go on beside later jobs: the
    // process is replaced instead (only a lease keeps its state on purpose).
    if (threads > 0 && Snapshot().role == Role::kPool) MarkRetired();
    if (recycles && ++ran >= options_.max_jobs) MarkRetired();
  }
}

JobReply ProcessWorker::RunOne(Job& job) {
  JobReply reply;
  reply.process_worker = worker_id_;
  reply.pid = pid_.load();
  const std::uint64_t run_id = next_run_++;
  SendDefinitions(job.definitions);
  RunRequest run;
  run.id = run_id;
  for (const Definition& definition : job.definitions) run.uses.push_back(definition.first);
  run.output = static_cast<bool>(job.on_output);
  run.out_of_band = job.out_of_band_lengths;
  run.has_fd = static_cast<bool>(job.out_of_band_fd);
  run.share_result = job.share_result;
  run.region = job.out_of_band_map != nullptr;  // the session maps it: a reused file
  wakeup_.Arm(job.connection);
  const bool sent = link_->Send(RunHeader(run),
                                std::string_view(job.payload.data(), job.payload.size()),
                                job.out_of_band_fd.get());
  // A stop that came before the run frame went out found no current job:
  // it is sent now, after the run frame.
  SetCurrent(job.control, run_id);
  if (job.control->stop() != JobControl::Stop::kNone) Interrupt(job.control);
  const bool answered = sent && Relay(job, run_id, &reply.outcome);
  SetCurrent(nullptr, 0);
  if (!answered) {
    reply.disposition = Disposition::kWorkerCrashed;
    reply.crash = EndProcess();
    if (!retired_) {
      ++totals_->worker_crashes;
      log::Warning("process worker crashed: worker " + std::to_string(worker_id_) + " (pid " +
                   std::to_string(reply.pid) + ") " + reply.crash +
                   " while running a job; a fresh worker takes its place");
    }
  }
  if (const auto stop = job.control->stop();
      stop != JobControl::Stop::kNone && reply.outcome.kind != JobOutcome::Kind::kOk) {
    reply.disposition =
        stop == JobControl::Stop::kCancel ? Disposition::kCancelled : Disposition::kTimedOut;
    reply.given_up = retired_;
  }
  return reply;
}

// The by-value functions the job uses that the process has not seen yet.
void ProcessWorker::SendDefinitions(const std::vector<Definition>& definitions) {
  for (const auto& [digest, blob] : definitions) {
    if (defined_.contains(digest)) continue;
    if (defined_.size() >= kMaxDefinitions) {
      link_->Send({{"type", "forget_definitions"}, {"id", 0}});
      defined_.clear();
    }
    link_->Send({{"type", "define"}, {"id", 0}, {"digest", digest}},
                std::string_view(blob->data(), blob->size()));
    defined_.insert(digest);
  }
}

// Reads the link until the job's result: its output goes to its client,
// its queue calls to the daemon's queues. False when the process died.
bool ProcessWorker::Relay(Job& job, std::uint64_t run_id, JobOutcome* outcome) {
  proto::Frame frame;
  UniqueFd fd;
  std::string why;
  while (link_->Receive(&frame, &fd, &why)) {
    const std::string type = frame.header.value("type", std::string());
    if (type == "output" && job.on_output) {
      job.on_output(frame.header.value("stream", std::string("stdout")),
                    frame.header.value("data", std::string()));
    } else if (type == "queue") {
      ServeQueueCall(frame, job);
    } else if (type == "result" && frame.header.value("id", std::uint64_t{0}) == run_id) {
      *outcome = ReadResult(frame.header, std::move(frame.payload), std::move(fd));
      return true;
    }
    fd.reset();
  }
  return false;
}

// A queue call of the running job: made here, on this thread, through the
// daemon's in-job queue service (a blocking one waits on wakeup_).
void ProcessWorker::ServeQueueCall(const proto::Frame& frame, const Job& job) {
  const std::uint64_t call_id = frame.header.value("id", std::uint64_t{0});
  std::optional<QueueCall> call = ReadQueueCall(frame.header, frame.payload);
  python::QueueCallResult result;
  if (!call) {
    result.code = "bad_request";
    result.why = "the worker sent a malformed queue call: " + frame.header.dump();
  } else {
    result = MakeQueueCall(*queues_, std::move(*call));
  }
  const bool timed_out = job.control->stop() == JobControl::Stop::kTimeout;
  link_->Send(QueueReplyHeader(call_id, result, timed_out),
              std::string_view(result.item.data(), result.item.size()));
}

// Closes the link and reaps the process (SIGKILL if it does not exit in
// time); says how it ended ("died with SIGSEGV"). Idempotent.
std::string ProcessWorker::EndProcess() {
  const pid_t pid = pid_.load();
  if (pid <= 0) return "was not started";
  if (link_ != nullptr) link_->Shutdown();
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + kExitGrace;
  pid_t reaped = 0;
  while ((reaped = ::waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (reaped == 0) {
    ::kill(pid, SIGKILL);  // not reaped yet: the pid is still this process's
    reaped = ::waitpid(pid, &status, 0);
  }
  {
    std::lock_guard lock(mu_);
    pidfd_.reset();
  }
  pid_ = -1;
  ended_ = true;
  return reaped == pid ? DescribeExit(status) : "could not be waited for";
}

}  // namespace ei
