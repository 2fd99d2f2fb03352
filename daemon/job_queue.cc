#include "daemon/job_queue.h"

#include "daemon/interpreter.h"

namespace ei {

bool JobControl::Answer(JobReply reply) {
  bool expected = false;
  if (!answered_.compare_exchange_strong(expected, true)) return false;
  on_done_(std::move(reply));
  return true;
}

bool JobControl::BeginRun(Interpreter* interpreter) {
  std::lock_guard lock(mu_);
  if (answered_.load()) return false;
  state_ = State::kRunning;
  interpreter_ = interpreter;
  return true;
}

void JobControl::Finish() {
  std::lock_guard lock(mu_);
  state_ = State::kFinished;
  interpreter_ = nullptr;
}

Interpreter* JobControl::interpreter() const {
  std::lock_guard lock(mu_);
  return interpreter_;
}

JobControl::State JobControl::RequestStop(Stop why) {
  State state;
  {
    std::lock_guard lock(mu_);
    state = state_;
    if (state == State::kFinished || answered_.load()) return State::kFinished;
    Stop none = Stop::kNone;
    stop_.compare_exchange_strong(none, why);
    // A queued job is claimed under mu_, so BeginRun can no longer start it.
    bool expected = false;
    if (state == State::kQueued && !answered_.compare_exchange_strong(expected, true)) {
      return State::kFinished;
    }
  }
  if (state == State::kQueued) {
    JobReply reply;
    reply.disposition = why == Stop::kCancel ? JobReply::Disposition::kCancelled
                                             : JobReply::Disposition::kTimedOut;
    on_done_(std::move(reply));
  }
  return state;
}

Interpreter* JobControl::GiveUp(JobReply reply,
                                const std::function<void(Interpreter*)>& retire) {
  Interpreter* interpreter = nullptr;
  {
    std::lock_guard lock(mu_);
    bool expected = false;
    if (state_ != State::kRunning || !answered_.compare_exchange_strong(expected, true)) {
      return nullptr;
    }
    interpreter = interpreter_;
    reply.interpreter_id = interpreter->Snapshot().interpreter_id;
    retire(interpreter);
  }
  on_done_(std::move(reply));
  return interpreter;
}

bool JobQueue::Push(Job& job) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    jobs_.push_back(std::move(job));
  }
  ready_.notify_one();
  return true;
}

std::optional<Job> JobQueue::Pop() {
  std::unique_lock lock(mu_);
  ready_.wait(lock, [this] { return closed_ || !jobs_.empty(); });
  if (jobs_.empty()) return std::nullopt;
  Job job = std::move(jobs_.front());
  jobs_.pop_front();
  return job;
}

void JobQueue::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  ready_.notify_all();
}

std::vector<Job> JobQueue::CloseAndTake() {
  std::vector<Job> taken;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    taken.assign(std::make_move_iterator(jobs_.begin()), std::make_move_iterator(jobs_.end()));
    jobs_.clear();
  }
  ready_.notify_all();
  return taken;
}

std::size_t JobQueue::size() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

}  // namespace ei
