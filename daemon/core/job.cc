#include "daemon/core/job.h"

#include "daemon/core/worker.h"

namespace ei {

namespace {

// What CPython (and PyO3) say when an extension module cannot load in a
// sub-interpreter; the interpreter lane's own guard (worker_bootstrap.py)
// says the first.
constexpr const char* kRefusalPhrases[] = {
    "does not support loading in subinterpreters",
    "does not support a per-interpreter GIL",
    "do not yet support subinterpreters",
};

bool MentionsRefusal(const std::string& text) {
  for (const char* phrase : kRefusalPhrases) {
    if (text.find(phrase) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::optional<Refusal> RefusalOf(const JobOutcome& outcome) {
  const PyErrorInfo& error = outcome.error;
  const bool import_error = error.type == "builtins.ImportError" ||
                            error.type == "builtins.ModuleNotFoundError";
  // The traceback holds the exceptions it was chained from: a package that
  // wraps the refusal in an ImportError of its own still counts.
  if (!import_error || !(MentionsRefusal(error.message) || MentionsRefusal(error.traceback))) {
    return std::nullopt;
  }
  if (outcome.kind == JobOutcome::Kind::kLoadFailed) return Refusal::kLoad;
  if (outcome.kind == JobOutcome::Kind::kRaised) return Refusal::kRun;
  return std::nullopt;
}

bool JobControl::Answer(JobReply reply) {
  bool expected = false;
  if (!answered_.compare_exchange_strong(expected, true)) return false;
  on_done_(std::move(reply));
  return true;
}

bool JobControl::BeginRun(Worker* worker) {
  std::lock_guard lock(mu_);
  if (answered_.load()) return false;
  state_ = State::kRunning;
  worker_ = worker;
  return true;
}

void JobControl::Finish() {
  std::lock_guard lock(mu_);
  state_ = State::kFinished;
  worker_ = nullptr;
}

Worker* JobControl::worker() const {
  std::lock_guard lock(mu_);
  return worker_;
}

bool JobControl::Requeue() {
  std::lock_guard lock(mu_);
  if (answered_.load() || stop_.load() != Stop::kNone) return false;
  state_ = State::kQueued;
  worker_ = nullptr;
  return true;
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

Worker* JobControl::GiveUp(JobReply reply, const std::function<void(Worker*)>& retire) {
  Worker* worker = nullptr;
  {
    std::lock_guard lock(mu_);
    bool expected = false;
    if (state_ != State::kRunning || !answered_.compare_exchange_strong(expected, true)) {
      return nullptr;
    }
    worker = worker_;
    worker->NoteWhere(reply);
    retire(worker);
  }
  on_done_(std::move(reply));
  return worker;
}

std::vector<char> NoOpJobPayload() {
  static const char kPickle[] =
      "\x80\x05\x95\x19\x00\x00\x00\x00\x00\x00\x00\x8c\x08" "builtins\x94\x8c\x03int\x94\x93\x94)}"
      "\x94\x87\x94.";
  return std::vector<char>(kPickle, kPickle + sizeof kPickle - 1);
}

}  // namespace ei
