#include "daemon/core/interpreter.h"

#include <malloc.h>

#include "daemon/core/shared_buffer.h"
#include "daemon/python/job_runner.h"
#include "daemon/python/sub_interpreter.h"

namespace ei {

using python::SubInterpreter;
using State = InterpreterSnapshot::State;
using Disposition = JobReply::Disposition;

Interpreter::Interpreter(int worker_id, InterpreterSnapshot::Role role,
                         std::shared_ptr<RunQueue> queue, InterpreterOptions options)
    : worker_id_(worker_id), queue_(std::move(queue)), options_(std::move(options)) {
  snapshot_.worker_id = worker_id;
  snapshot_.role = role;
}

Interpreter::~Interpreter() { Join(); }

void Interpreter::Start(Callbacks callbacks) {
  thread_ = std::thread(&Interpreter::Main, this, std::move(callbacks));
}

void Interpreter::Join() {
  if (thread_.joinable()) thread_.join();
}

void Interpreter::Abandon() {
  if (thread_.joinable()) thread_.detach();
  std::lock_guard lock(mu_);
  for (std::thread& t : interrupters_) {
    if (t.joinable()) t.detach();
  }
}

void Interpreter::MarkLeased(std::uint64_t lease_id) {
  std::lock_guard lock(mu_);
  snapshot_.role = InterpreterSnapshot::Role::kLease;
  snapshot_.lease_id = lease_id;
}

InterpreterSnapshot Interpreter::Snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

void Interpreter::SetState(State state) {
  std::lock_guard lock(mu_);
  snapshot_.state = state;
  if (state == State::kBusy) snapshot_.job_started = std::chrono::steady_clock::now();
  if (state == State::kIdle && snapshot_.job_started) {
    snapshot_.job_started.reset();
    ++snapshot_.jobs_done;
  }
}

void Interpreter::SetCurrent(std::shared_ptr<JobControl> control) {
  std::lock_guard lock(mu_);
  current_ = std::move(control);
}

// The interrupter waits for this interpreter's GIL, which a job in C code
// may hold for ever, so it gets a thread of its own. It checks, with the GIL
// held, that the job is still the one running: the worker only changes
// current_ while it holds that GIL, so the exception cannot land in the next
// job.
void Interpreter::Interrupt(const std::shared_ptr<JobControl>& control) {
  std::lock_guard lock(mu_);
  if (current_ != control || sub_ == nullptr) return;
  SubInterpreter* sub = sub_.get();
  _object* type = control->stop() == JobControl::Stop::kTimeout ? python::JobRunner::timeout_type()
                                                                 : cancelled_type_;
  interrupters_.emplace_back([this, sub, type, control] {
    sub->Interrupt(type, [this, &control] {
      std::lock_guard held(mu_);
      return current_ == control;
    });
    // Then a queue wait, which would see the exception only when it returns,
    // ends at once and raises it itself.
    std::lock_guard held(mu_);
    if (current_ == control) wakeup_.Fire(type);
  });
}

void Interpreter::JoinInterrupters() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(interrupters_);
  }
  for (std::thread& t : threads) t.join();
}

// The thread's whole life: the sub-interpreter and its thread state are made,
// used and ended here, and the GIL is held only while Python code runs.
void Interpreter::Main(Callbacks callbacks) {
  JobWakeup::SetCurrent(&wakeup_);
  Status status;
  std::unique_ptr<SubInterpreter> sub = SubInterpreter::Create(&status);
  if (sub == nullptr) {
    SetState(State::kStopping);
    callbacks.on_ready(*this, status);
    callbacks.on_exit(*this);
    return;
  }
  python::JobRunner runner;
  {
    SubInterpreter::Attached attached(*sub);
    status = runner.Load(options_.preload, options_.refused);
  }
  {
    std::lock_guard lock(mu_);
    snapshot_.interpreter_id = sub->id();
    sub_ = std::move(sub);
    cancelled_type_ = runner.cancelled_type();
  }
  // Creating an interpreter frees much of what it allocated; the daemon
  // keeps freed heap memory (MemoryTrimmer), so give that back now.
  ::malloc_trim(0);
  if (status.ok()) SetState(State::kIdle);
  callbacks.on_ready(*this, status);
  if (status.ok()) Serve(runner, callbacks.on_drop);
  SetState(State::kStopping);
  // A fresh interpreter takes this one's place before it ends, which may
  // wait for threads a job left running.
  if (recycled_ || threads_left_ > 0) callbacks.on_retire(*this);
  JoinInterrupters();
  {
    SubInterpreter::Attached attached(*sub_);
    runner.Unload();
  }
  {
    std::lock_guard lock(mu_);
    sub = std::move(sub_);
  }
  sub.reset();  // ends the interpreter
  callbacks.on_exit(*this);
}

void Interpreter::Serve(python::JobRunner& runner, const DropCallback& on_drop) {
  SharedBuffer buffer(options_.buffer_size, options_.buffer_limit);
  const bool recycles = options_.max_jobs > 0 && Snapshot().role == InterpreterSnapshot::Role::kPool;
  std::uint64_t ran = 0;
  while (!retired_ && !leaving_) {
    std::optional<Job> job = queue_->Pop();
    if (!job) break;
    if (job->is_abandoned()) {
      on_drop();
      continue;
    }
    if (!job->control->BeginRun(this)) continue;  // answered while queued
    SetState(State::kBusy);
    JobReply reply = RunOne(*job, runner, buffer);
    const std::optional<Refusal> refusal = HandBackAs(*job, reply);
    if (!refusal) job->control->Finish();
    SetState(State::kIdle);
    JoinInterrupters();
    if (refusal) {
      // Another lane runs it; the function is copied out of the job first,
      // since the call moves the job.
      auto hand_back = job->hand_back;
      hand_back(std::move(*job), *refusal);
      continue;
    }
    const int threads = reply.outcome.threads_left;
    job->control->Answer(std::move(reply));
    if (threads > 0 && Snapshot().role == InterpreterSnapshot::Role::kPool) {
      // Its threads would run on beside later jobs, and make ending the
      // interpreter wait for them: the interpreter is given up instead.
      threads_left_ = threads;
      MarkRetired();
      break;
    }
    if (recycles && ++ran >= options_.max_jobs) {
      recycled_ = true;
      break;
    }
  }
}

// A sub-interpreter refused the job and the router may take it back: it is
// queued again (unless it was answered or told to stop meanwhile), and
// the refusal says which.
std::optional<Refusal> Interpreter::HandBackAs(Job& job, const JobReply& reply) {
  if (!job.hand_back || reply.disposition != JobReply::Disposition::kRan) return std::nullopt;
  const std::optional<Refusal> refusal = RefusalOf(reply.outcome);
  if (!refusal || (*refusal == Refusal::kRun && !job.rerun)) return std::nullopt;
  if (!job.control->Requeue()) return std::nullopt;
  return refusal;
}

JobReply Interpreter::RunOne(Job& job, python::JobRunner& runner, SharedBuffer& buffer) {
  JobReply reply;
  reply.interpreter_id = sub_->id();
  const std::size_t size = job.payload.size();
  if (!buffer.Assign(job.payload)) {
    reply.outcome.error = {"builtins.MemoryError", "the job is larger than the buffer limit", ""};
    return reply;
  }
  // The buffer has it now; a job the router may take back keeps its own.
  const bool may_hand_back = static_cast<bool>(job.hand_back);
  if (!may_hand_back) std::vector<char>().swap(job.payload);
  {
    SubInterpreter::Attached attached(*sub_);
    wakeup_.Arm(job.connection);
    SetCurrent(job.control);
    reply.outcome = runner.Run(buffer.data(), buffer.capacity(), size, job.definitions,
                               job.on_output, {job.out_of_band_fd.get(), job.out_of_band_lengths, job.share_result,
                                job.lend_result,
                                job.out_of_band_map ? job.out_of_band_map->data() : nullptr,
                                job.out_of_band_map ? job.out_of_band_map->size() : 0});
    sub_->ClearInterrupt();  // an interrupt that came too late for the job
    SetCurrent(nullptr);
  }
  if (job.out_of_band_map && reply.outcome.out_of_band_map_kept) job.out_of_band_map->Pin();
  if (!may_hand_back) {
    job.out_of_band_fd.reset();  // the job's own mapping, if any, keeps the memory
    job.out_of_band_map.reset();  // the session's, until it closes
  }
  buffer.Reserve(reply.outcome.needed_bytes);
  // A stopped job that did not return a value was stopped, whatever the
  // stop exception became on its way out (it may even have hit the
  // bootstrap while it pickled the result).
  if (const auto stop = job.control->stop();
      stop != JobControl::Stop::kNone && reply.outcome.kind != JobOutcome::Kind::kOk) {
    reply.disposition =
        stop == JobControl::Stop::kCancel ? Disposition::kCancelled : Disposition::kTimedOut;
  }
  return reply;
}

}  // namespace ei
