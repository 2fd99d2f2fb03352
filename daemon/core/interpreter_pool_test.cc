// The pool against real own-GIL sub-interpreters: parallelism, leases, limits
// and shutdown with jobs in flight. Jobs come from a small module the test
// writes and puts on the interpreters' sys.path.
#include "daemon/core/interpreter_pool.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/python/runtime.h"
#include "python/python_build_info.h"

namespace ei {
namespace {

using Kind = JobOutcome::Kind;
using namespace std::chrono_literals;

constexpr char kJobsModule[] = R"PY(
import mmap, sys, time

_state = {}

def _flags(path):
    with open(path, "r+b") as f:
        return mmap.mmap(f.fileno(), 2)

def spin_holding_gil(path):
    # Never gives up its GIL: no blocking call, and a switch interval far
    # longer than the test. Only a job with a GIL of its own can release it.
    flags = _flags(path)
    sys.setswitchinterval(1000.0)
    flags[1] = 1
    deadline = time.time() + 60
    while flags[0] == 0:
        if time.time() > deadline:
            return False
    return True

def release_spinner(path):
    flags = _flags(path)
    while flags[1] == 0:
        time.sleep(0.001)
    flags[0] = 1
    return True

def remember(value):
    _state["value"] = value
    return True

def recall():
    return _state.get("value")

def loop_until_stopped():
    while True:
        pass

def sleep(seconds):
    time.sleep(seconds)
    return True

def chatter(lines):
    for i in range(lines):
        print("line", i)
    print("to stderr", file=sys.stderr)
    return True
)PY";

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

class PythonEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    std::ofstream(TempDir() + "/pool_jobs.py") << kJobsModule;
    Status s = python::Runtime::Initialize({EI_PYTHON_HOME, {TempDir()}, "pool_test"});
    ASSERT_TRUE(s.ok()) << s.message();
  }
  void TearDown() override { python::Runtime::Finalize(); }
};

const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new PythonEnvironment);

// A protocol-0 pickle of (pool_jobs.<fn>, (arg,), {}): readable, and no
// Python needed to make it.
std::vector<char> JobPickle(const std::string& fn, const std::string& arg_opcode) {
  const std::string text = "(cpool_jobs\n" + fn + "\n(" + arg_opcode + "t}t.";
  return {text.begin(), text.end()};
}
std::vector<char> StrJob(const std::string& fn, const std::string& arg) {
  return JobPickle(fn, "V" + arg + "\n");
}
std::vector<char> IntJob(const std::string& fn, int arg) {
  return JobPickle(fn, "I" + std::to_string(arg) + "\n");
}
std::vector<char> NoArgJob(const std::string& fn) { return JobPickle(fn, ""); }

const std::string kTruePickle("\x80\x05\x88.", 4);
std::string IntPickle(unsigned char small) { return std::string("\x80\x05K", 3) + char(small) + "."; }

// Collects replies from interpreter threads.
class Replies {
 public:
  Job MakeJob(std::vector<char> payload, std::shared_ptr<const std::atomic<bool>> abandoned = {},
              std::optional<JobControl::Clock::time_point> deadline = std::nullopt) {
    Job job;
    job.payload = std::move(payload);
    job.abandoned = std::move(abandoned);
    const int index = expected_++;
    job.control = std::make_shared<JobControl>(
        [this, index](JobReply reply) {
          std::lock_guard lock(mu_);
          got_.emplace_back(index, std::move(reply));
          cv_.notify_all();
        },
        deadline);
    return job;
  }

  // Waits for `count` replies; returns every job's reply by submission index
  // (a default JobReply where none came). Fails the test on a timeout.
  std::vector<JobReply> WaitAll(std::size_t count) {
    std::unique_lock lock(mu_);
    EXPECT_TRUE(cv_.wait_for(lock, 120s, [&] { return got_.size() >= count; }))
        << got_.size() << " of " << count << " replies";
    std::vector<JobReply> ordered(expected_);
    for (auto& [index, reply] : got_) ordered[index] = std::move(reply);
    return ordered;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<int, JobReply>> got_;
  int expected_ = 0;
};

std::string Payload(const JobReply& reply) {
  return std::string(reply.outcome.payload.begin(), reply.outcome.payload.end());
}

PoolOptions Options(int workers, int max_interpreters) {
  PoolOptions options;
  options.workers = workers;
  options.max_interpreters = max_interpreters;
  options.cancel_grace = 300ms;
  options.interpreter.buffer_size = 4096;
  options.interpreter.buffer_limit = 1 << 20;
  return options;
}

void StartAndWait(InterpreterPool& pool) {
  std::promise<Status> ready;
  pool.Start([&ready](const Status& s) { ready.set_value(s); });
  Status status = ready.get_future().get();
  ASSERT_TRUE(status.ok()) << status.message();
}

LeaseGrant LeaseAndWait(InterpreterPool& pool) {
  std::promise<LeaseGrant> granted;
  pool.Lease([&granted](LeaseGrant g) { granted.set_value(std::move(g)); });
  return granted.get_future().get();
}

TEST(InterpreterPool, RunsJobsInParallelOnInterpretersWithTheirOwnGil) {
  JobTotals totals;
  InterpreterPool pool(Options(2, 2), &totals);
  StartAndWait(pool);
  const std::string flags = TempDir() + "/gil_flags";
  std::ofstream(flags) << std::string(2, '\0');
  Replies replies;
  pool.Submit(replies.MakeJob(StrJob("spin_holding_gil", flags)));
  pool.Submit(replies.MakeJob(StrJob("release_spinner", flags)));
  std::vector<JobReply> got = replies.WaitAll(2);
  ASSERT_EQ(got[0].outcome.kind, Kind::kOk) << got[0].outcome.error.message;
  EXPECT_EQ(Payload(got[0]), kTruePickle) << "the spinner was never released: one GIL is shared";
  EXPECT_EQ(Payload(got[1]), kTruePickle);
  EXPECT_NE(got[0].interpreter_id, got[1].interpreter_id);
}

TEST(InterpreterPool, LeaseKeepsStateAndOrderOnOneInterpreter) {
  JobTotals totals;
  InterpreterPool pool(Options(1, 3), &totals);
  StartAndWait(pool);
  LeaseGrant lease = LeaseAndWait(pool);
  ASSERT_TRUE(lease.ok) << lease.message;
  Replies replies;
  for (int i = 1; i <= 20; ++i) {
    Job set = replies.MakeJob(IntJob("remember", i));
    ASSERT_EQ(pool.SubmitToLease(lease.lease_id, set), Scheduler::LeaseSubmit::kQueued);
    Job get = replies.MakeJob(NoArgJob("recall"));
    ASSERT_EQ(pool.SubmitToLease(lease.lease_id, get), Scheduler::LeaseSubmit::kQueued);
  }
  std::vector<JobReply> got = replies.WaitAll(40);
  for (int i = 1; i <= 20; ++i) {
    const JobReply& recalled = got[2 * i - 1];
    EXPECT_EQ(Payload(recalled), IntPickle(static_cast<unsigned char>(i))) << "job pair " << i;
    EXPECT_EQ(recalled.interpreter_id, lease.interpreter_id);
  }
  Job unknown = replies.MakeJob(NoArgJob("recall"));
  EXPECT_EQ(pool.SubmitToLease(lease.lease_id + 100, unknown),
            Scheduler::LeaseSubmit::kUnknown);
}

TEST(InterpreterPool, ReleaseEndsTheInterpreterAndAWarmOneTakesItsPlace) {
  JobTotals totals;
  InterpreterPool pool(Options(1, 3), &totals);
  StartAndWait(pool);
  LeaseGrant lease = LeaseAndWait(pool);
  ASSERT_TRUE(lease.ok) << lease.message;
  EXPECT_EQ(pool.Snapshot().active_leases, 1u);
  std::promise<void> released;
  ASSERT_TRUE(pool.Release(lease.lease_id, [&released] { released.set_value(); }));
  released.get_future().wait();
  EXPECT_FALSE(pool.Release(lease.lease_id, [] {}));
  PoolSnapshot snap = pool.Snapshot();
  EXPECT_EQ(snap.active_leases, 0u);
  for (const InterpreterSnapshot& it : snap.interpreters) {
    EXPECT_NE(it.interpreter_id, lease.interpreter_id) << "the leased interpreter still exists";
  }
  // State does not leak into the next lease: it is a fresh interpreter.
  LeaseGrant next = LeaseAndWait(pool);
  ASSERT_TRUE(next.ok) << next.message;
  EXPECT_NE(next.interpreter_id, lease.interpreter_id);
  Replies replies;
  Job recall = replies.MakeJob(NoArgJob("recall"));
  ASSERT_EQ(pool.SubmitToLease(next.lease_id, recall), Scheduler::LeaseSubmit::kQueued);
  EXPECT_EQ(Payload(replies.WaitAll(1)[0]), std::string("\x80\x05N.", 4));  // None
}

TEST(InterpreterPool, RefusesLeasesPastMaxInterpreters) {
  JobTotals totals;
  InterpreterPool pool(Options(1, 2), &totals);
  StartAndWait(pool);
  LeaseGrant first = LeaseAndWait(pool);
  ASSERT_TRUE(first.ok) << first.message;
  LeaseGrant second = LeaseAndWait(pool);
  EXPECT_FALSE(second.ok);
  EXPECT_EQ(second.error_code, "lease_limit");
  EXPECT_NE(second.message.find("2 of 2 interpreters are in use"), std::string::npos)
      << second.message;
}

TEST(InterpreterPool, ShutdownAnswersEveryJobInFlight) {
  JobTotals totals;
  InterpreterPool pool(Options(1, 1), &totals);
  StartAndWait(pool);
  const std::string flags = TempDir() + "/shutdown_flags";
  std::ofstream(flags) << std::string(2, '\0');
  Replies replies;
  // The first job blocks the only worker until released, so the rest queue.
  pool.Submit(replies.MakeJob(StrJob("release_spinner", flags)));
  for (int i = 0; i < 5; ++i) pool.Submit(replies.MakeJob(NoArgJob("recall")));
  while (pool.Snapshot().queue_depth != 5) std::this_thread::sleep_for(1ms);
  std::thread stopper([&pool] { pool.Shutdown(); });
  // Shutdown takes the queued jobs at once, then waits for the running one.
  while (pool.Snapshot().queue_depth != 0) std::this_thread::sleep_for(1ms);
  {
    std::fstream f(flags, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1);
    f.put('\1');
  }
  stopper.join();
  std::vector<JobReply> got = replies.WaitAll(6);
  EXPECT_EQ(got[0].disposition, JobReply::Disposition::kRan);
  EXPECT_EQ(Payload(got[0]), kTruePickle);
  for (int i = 1; i < 6; ++i) {
    EXPECT_EQ(got[i].disposition, JobReply::Disposition::kShuttingDown) << "job " << i;
  }
  Job late = replies.MakeJob(NoArgJob("recall"));
  pool.Submit(std::move(late));
  EXPECT_EQ(replies.WaitAll(7)[6].disposition, JobReply::Disposition::kShuttingDown);
  LeaseGrant lease = LeaseAndWait(pool);
  EXPECT_EQ(lease.error_code, "shutting_down");
}

TEST(InterpreterPool, DropsJobsOfClosedConnectionsAndSurvivesBadPayloads) {
  JobTotals totals;
  InterpreterPool pool(Options(1, 1), &totals);
  StartAndWait(pool);
  Replies replies;
  auto abandoned = std::make_shared<std::atomic<bool>>(true);
  Job dropped = replies.MakeJob(NoArgJob("recall"), abandoned);
  pool.Submit(std::move(dropped));
  const std::string garbage = "this is not a pickle";
  pool.Submit(replies.MakeJob({garbage.begin(), garbage.end()}));
  pool.Submit(replies.MakeJob(JobPickle("no_such_function", "")));
  pool.Submit(replies.MakeJob(IntJob("remember", 3)));
  // Replies arrive for the three live jobs only (index 0 was dropped).
  std::vector<JobReply> got = replies.WaitAll(3);
  EXPECT_EQ(got[1].outcome.kind, Kind::kLoadFailed);
  EXPECT_EQ(got[2].outcome.kind, Kind::kLoadFailed);
  EXPECT_NE(got[2].outcome.error.message.find("no_such_function"), std::string::npos)
      << got[2].outcome.error.message;
  EXPECT_EQ(got[3].outcome.kind, Kind::kOk) << "the worker is still usable";
  EXPECT_EQ(totals.dropped.load(), 1u);
}

using Disposition = JobReply::Disposition;

TEST(InterpreterPool, CancelStopsQueuedAndRunningJobsAndTheWorkerCarriesOn) {
  JobTotals totals;
  InterpreterPool pool(Options(1, 1), &totals);
  StartAndWait(pool);
  Replies replies;
  Job running = replies.MakeJob(NoArgJob("loop_until_stopped"));
  Job queued = replies.MakeJob(IntJob("remember", 9));
  auto running_control = running.control;
  auto queued_control = queued.control;
  pool.Submit(std::move(running));
  pool.Submit(std::move(queued));
  while (pool.Snapshot().interpreters[0].state != InterpreterSnapshot::State::kBusy) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(pool.Cancel(queued_control), JobControl::State::kQueued);
  EXPECT_EQ(pool.Cancel(running_control), JobControl::State::kRunning);
  std::vector<JobReply> got = replies.WaitAll(2);
  EXPECT_EQ(got[0].disposition, Disposition::kCancelled);
  EXPECT_FALSE(got[0].given_up) << "a pure-Python loop stops at once";
  EXPECT_EQ(got[0].outcome.error.type, "_extrainterpreters_worker.JobCancelled");
  EXPECT_EQ(got[1].disposition, Disposition::kCancelled);
  EXPECT_EQ(pool.Cancel(running_control), JobControl::State::kFinished);
  // The queued job never ran: the value it would have stored is not there.
  pool.Submit(replies.MakeJob(NoArgJob("recall")));
  EXPECT_EQ(Payload(replies.WaitAll(3)[2]), std::string("\x80\x05N.", 4));
}

TEST(InterpreterPool, TimeoutsStopRunningAndQueuedJobs) {
  JobTotals totals;
  InterpreterPool pool(Options(1, 1), &totals);
  StartAndWait(pool);
  Replies replies;
  const auto soon = JobControl::Clock::now() + 200ms;
  pool.Submit(replies.MakeJob(NoArgJob("loop_until_stopped"), {}, soon));
  pool.Submit(replies.MakeJob(NoArgJob("recall"), {}, soon));  // queued behind it
  std::vector<JobReply> got = replies.WaitAll(2);
  EXPECT_EQ(got[0].disposition, Disposition::kTimedOut);
  EXPECT_EQ(got[0].outcome.error.type, "builtins.TimeoutError");
  EXPECT_EQ(got[1].disposition, Disposition::kTimedOut);
  EXPECT_EQ(got[1].interpreter_id, -1) << "the queued job never started";
}

// Waits until `count` threads of this process sleep in the kernel
// (time.sleep): a job is inside the C call then, where a stop exception
// waits until the call returns. Not a guess at how long that takes.
void WaitForSleepingThreads(int count) {
  while (true) {
    int sleeping = 0;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream wchan(task.path() / "wchan");
      std::string where;
      if (std::getline(wchan, where) && where.find("nanosleep") != std::string::npos) {
        ++sleeping;
      }
    }
    if (sleeping >= count) return;
    std::this_thread::sleep_for(1ms);
  }
}

TEST(InterpreterPool, AJobThatDoesNotStopIsGivenUpAndItsInterpreterReplaced) {
  JobTotals totals;
  InterpreterPool pool(Options(1, 3), &totals);
  StartAndWait(pool);
  const std::int64_t first = pool.Snapshot().interpreters[0].interpreter_id;
  Replies replies;
  // Inside time.sleep the stop exception waits until the call returns.
  Job stuck = replies.MakeJob(JobPickle("sleep", "I30\n"));
  auto control = stuck.control;
  pool.Submit(std::move(stuck));
  WaitForSleepingThreads(1);
  EXPECT_EQ(pool.Cancel(control), JobControl::State::kRunning);
  JobReply reply = std::move(replies.WaitAll(1)[0]);
  EXPECT_EQ(reply.disposition, Disposition::kCancelled);
  EXPECT_TRUE(reply.given_up);
  EXPECT_EQ(reply.interpreter_id, first);
  EXPECT_EQ(totals.retired_stuck.load(), 1u) << "counted before the answer";
  // Full capacity at once: a fresh pool interpreter serves the next job.
  pool.Submit(replies.MakeJob(IntJob("remember", 1)));
  JobReply next = std::move(replies.WaitAll(2)[1]);
  EXPECT_EQ(next.outcome.kind, Kind::kOk);
  EXPECT_NE(next.interpreter_id, first);
  // A leased interpreter that is given up ends its lease.
  LeaseGrant lease = LeaseAndWait(pool);
  ASSERT_TRUE(lease.ok) << lease.message;
  Job leased_stuck = replies.MakeJob(JobPickle("sleep", "I30\n"));
  auto leased_control = leased_stuck.control;
  ASSERT_EQ(pool.SubmitToLease(lease.lease_id, leased_stuck), Scheduler::LeaseSubmit::kQueued);
  Job behind = replies.MakeJob(NoArgJob("recall"));
  ASSERT_EQ(pool.SubmitToLease(lease.lease_id, behind), Scheduler::LeaseSubmit::kQueued);
  WaitForSleepingThreads(2);  // the first stuck job still sleeps
  pool.Cancel(leased_control);
  std::vector<JobReply> got = replies.WaitAll(4);
  EXPECT_TRUE(got[2].given_up);
  EXPECT_EQ(got[3].disposition, Disposition::kLeaseLost);
  Job after = replies.MakeJob(NoArgJob("recall"));
  EXPECT_EQ(pool.SubmitToLease(lease.lease_id, after), Scheduler::LeaseSubmit::kLost);
  // Shutdown lets the two stuck threads go instead of waiting 30 s for them.
  EXPECT_EQ(pool.Shutdown(), 2);
}

TEST(InterpreterPool, RecyclesPoolInterpretersAfterMaxJobs) {
  JobTotals totals;
  PoolOptions options = Options(1, 1);
  options.interpreter.max_jobs = 2;
  InterpreterPool pool(options, &totals);
  StartAndWait(pool);
  Replies replies;
  for (int i = 0; i < 6; ++i) {
    pool.Submit(replies.MakeJob(IntJob("remember", i)));
    replies.WaitAll(i + 1);
  }
  std::vector<JobReply> got = replies.WaitAll(6);
  EXPECT_EQ(got[0].interpreter_id, got[1].interpreter_id);
  EXPECT_NE(got[1].interpreter_id, got[2].interpreter_id);
  EXPECT_EQ(got[2].interpreter_id, got[3].interpreter_id);
  EXPECT_NE(got[3].interpreter_id, got[4].interpreter_id);
  // The interpreter that ran jobs 5 and 6 retires right after answering.
  for (int i = 0; i < 10000 && totals.retired_recycled.load() < 3; ++i) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(totals.retired_recycled.load(), 3u);
}

TEST(InterpreterPool, JobOutputReachesItsSinkInOrder) {
  JobTotals totals;
  InterpreterPool pool(Options(1, 1), &totals);
  StartAndWait(pool);
  Replies replies;
  std::mutex mu;
  std::vector<std::string> pieces;
  Job job = replies.MakeJob(IntJob("chatter", 3));
  job.on_output = [&](std::string_view stream, std::string_view text) {
    std::lock_guard lock(mu);
    pieces.push_back(std::string(stream) + ":" + std::string(text));
  };
  pool.Submit(std::move(job));
  replies.WaitAll(1);
  std::lock_guard lock(mu);
  EXPECT_EQ(pieces, (std::vector<std::string>{"stdout:line 0\n", "stdout:line 1\n",
                                               "stdout:line 2\n", "stderr:to stderr\n"}));
}

int PoolInterpreters(const InterpreterPool& pool, InterpreterSnapshot::State state) {
  int count = 0;
  for (const InterpreterSnapshot& it : pool.Snapshot().interpreters) {
    count += it.role == InterpreterSnapshot::Role::kPool && it.state == state;
  }
  return count;
}

void WaitForIdlePool(const InterpreterPool& pool, int count) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (PoolInterpreters(pool, InterpreterSnapshot::State::kIdle) != count ||
         pool.Snapshot().interpreters.size() > static_cast<std::size_t>(count) + 1) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the pool never settled at " << count;
    std::this_thread::sleep_for(5ms);
  }
}

TEST(InterpreterPool, NoOpJobRunsAndReturnsZero) {
  JobTotals totals;
  InterpreterPool pool(Options(1, 1), &totals);
  StartAndWait(pool);
  Replies replies;
  pool.Submit(replies.MakeJob(NoOpJobPayload()));
  std::vector<JobReply> got = replies.WaitAll(1);
  ASSERT_EQ(got[0].outcome.kind, Kind::kOk) << got[0].outcome.error.message;
  EXPECT_EQ(Payload(got[0]), IntPickle(0));
}

TEST(InterpreterPool, ResizeGrowsAndShrinksWithoutDroppingAJob) {
  JobTotals totals;
  InterpreterPool pool(Options(1, 4), &totals);
  StartAndWait(pool);
  EXPECT_NE(pool.Resize(0), "");
  EXPECT_NE(pool.Resize(5), "") << "past max_interpreters";
  ASSERT_EQ(pool.Resize(3), "");
  WaitForIdlePool(pool, 3);
  // Shrink while every interpreter is busy and more jobs wait: the leave
  // jobs queue behind them, so every job still runs to its end.
  Replies replies;
  for (int i = 0; i < 9; ++i) pool.Submit(replies.MakeJob(JobPickle("sleep", "F0.1\n")));
  while (PoolInterpreters(pool, InterpreterSnapshot::State::kBusy) != 3) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(pool.Resize(1), "");
  std::vector<JobReply> got = replies.WaitAll(9);
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(got[i].disposition, JobReply::Disposition::kRan) << "job " << i;
    EXPECT_EQ(Payload(got[i]), kTruePickle) << "job " << i;
  }
  WaitForIdlePool(pool, 1);
  // A grow right after a shrink cancels the leave jobs still queued.
  ASSERT_EQ(pool.Resize(2), "");
  ASSERT_EQ(pool.Resize(1), "");
  ASSERT_EQ(pool.Resize(2), "");
  WaitForIdlePool(pool, 2);
  pool.Submit(replies.MakeJob(NoArgJob("recall")));
  EXPECT_EQ(replies.WaitAll(10)[9].disposition, JobReply::Disposition::kRan);
  EXPECT_EQ(pool.Shutdown(), 0);
}

}  // namespace
}  // namespace ei
