#include "daemon/interpreter.h"

#include "daemon/python/job_runner.h"
#include "daemon/python/sub_interpreter.h"
#include "daemon/shared_buffer.h"

namespace ei {

using python::JobOutcome;
using python::SubInterpreter;
using State = InterpreterSnapshot::State;

Interpreter::Interpreter(int worker_id, InterpreterSnapshot::Role role,
                         std::shared_ptr<JobQueue> queue, InterpreterOptions options)
    : worker_id_(worker_id), queue_(std::move(queue)), options_(std::move(options)) {
  snapshot_.worker_id = worker_id;
  snapshot_.role = role;
}

Interpreter::~Interpreter() { Join(); }

void Interpreter::Start(ReadyCallback on_ready, ExitCallback on_exit, JobCallback on_job) {
  thread_ = std::thread(&Interpreter::Main, this, std::move(on_ready), std::move(on_exit),
                        std::move(on_job));
}

void Interpreter::Join() {
  if (thread_.joinable()) thread_.join();
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

// The thread's whole life: the sub-interpreter and its thread state are made,
// used and ended here, and the GIL is held only while Python code runs.
void Interpreter::Main(ReadyCallback on_ready, ExitCallback on_exit, JobCallback on_job) {
  python::Status status;
  std::unique_ptr<SubInterpreter> sub = SubInterpreter::Create(&status);
  if (sub == nullptr) {
    SetState(State::kStopping);
    on_ready(*this, status);
    on_exit(*this);
    return;
  }
  python::JobRunner runner;
  {
    SubInterpreter::Attached attached(*sub);
    status = runner.Load(options_.preload);
  }
  {
    std::lock_guard lock(mu_);
    snapshot_.interpreter_id = sub->id();
  }
  if (status.ok()) SetState(State::kIdle);
  on_ready(*this, status);
  SharedBuffer buffer(options_.buffer_size, options_.buffer_limit);
  while (status.ok()) {
    std::optional<Job> job = queue_->Pop();
    if (!job) break;
    if (job->is_abandoned()) {
      on_job(JobEnd::kDropped);
      continue;
    }
    SetState(State::kBusy);
    JobReply reply;
    reply.interpreter_id = sub->id();
    const std::size_t size = job->payload.size();
    if (!buffer.Assign(job->payload)) {
      reply.outcome.error = {"builtins.MemoryError", "the job is larger than the buffer limit", ""};
    } else {
      std::vector<char>().swap(job->payload);  // the buffer has it now
      SubInterpreter::Attached attached(*sub);
      reply.outcome = runner.Run(buffer.data(), buffer.capacity(), size);
    }
    buffer.Reserve(reply.outcome.needed_bytes);
    SetState(State::kIdle);
    on_job(reply.outcome.kind == JobOutcome::Kind::kOk ? JobEnd::kCompleted : JobEnd::kFailed);
    job->on_done(std::move(reply));
  }
  SetState(State::kStopping);
  {
    SubInterpreter::Attached attached(*sub);
    runner.Unload();
  }
  sub.reset();
  on_exit(*this);
}

}  // namespace ei
