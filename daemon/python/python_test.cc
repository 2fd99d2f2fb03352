// The C-API layer against the real CPython: own-GIL sub-interpreters created
// and ended on their threads, jobs run through the bootstrap.
#include <gtest/gtest.h>

// Sizes of "#" formats are Py_ssize_t (3.12 requires saying so; 3.13 always does).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "daemon/python/job_runner.h"
#include "daemon/python/runtime.h"
#include "daemon/python/sub_interpreter.h"
#include "python/python_build_info.h"

namespace ei::python {
namespace {

class PythonEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    Status s = Runtime::Initialize({EI_PYTHON_HOME, {}, "python_test"});
    ASSERT_TRUE(s.ok()) << s.message();
  }
  void TearDown() override { Runtime::Finalize(); }
};

const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new PythonEnvironment);

// Pickles `expr` (a Python expression building the (fn, args, kwargs) triple)
// inside `interpreter` and runs it as a job there.
JobOutcome RunExpression(SubInterpreter& interpreter, JobRunner& runner, const std::string& expr,
                         std::vector<char>* buffer) {
  SubInterpreter::Attached attached(interpreter);
  PyObject* globals = PyDict_New();
  PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
  std::string code = "import pickle, operator, os, sys\njob = pickle.dumps(" + expr + ", 5)\n";
  PyObject* ran = PyRun_String(code.c_str(), Py_file_input, globals, globals);
  EXPECT_NE(ran, nullptr) << expr;
  if (ran == nullptr) PyErr_Print();
  Py_XDECREF(ran);
  PyObject* job = PyDict_GetItemString(globals, "job");
  std::size_t size = static_cast<std::size_t>(PyBytes_GET_SIZE(job));
  if (buffer->size() < size) buffer->resize(size);
  std::memcpy(buffer->data(), PyBytes_AS_STRING(job), size);
  Py_DECREF(globals);
  return runner.Run(buffer->data(), buffer->size(), size, {}, {});
}

struct Case {
  const char* expr;
  JobOutcome::Kind kind;
  const char* error_type;
  const char* error_part;
};

TEST(SubInterpreter, RunsEveryKindOfJobOutcome) {
  Status status;
  auto interpreter = SubInterpreter::Create(&status);
  ASSERT_NE(interpreter, nullptr) << status.message();
  EXPECT_GT(interpreter->id(), 0);
  JobRunner runner;
  {
    SubInterpreter::Attached attached(*interpreter);
    Status loaded = runner.Load({"json"});
    ASSERT_TRUE(loaded.ok()) << loaded.message();
  }
  const std::vector<Case> cases = {
      {"(operator.add, (2, 3), {})", JobOutcome::Kind::kOk, "", ""},
      {"(operator.truediv, (1, 0), {})", JobOutcome::Kind::kRaised, "builtins.ZeroDivisionError",
       "division by zero"},
      {"(sys.exit, (3,), {})", JobOutcome::Kind::kRaised, "builtins.SystemExit", "3"},
      {"(os.getpid, 1, {})", JobOutcome::Kind::kLoadFailed, "builtins.TypeError", "tuple"},
      {"(42, (), {})", JobOutcome::Kind::kLoadFailed, "builtins.TypeError", "not callable"},
      {"(__import__('threading').Lock, (), {})", JobOutcome::Kind::kResultNotPicklable,
       "builtins.TypeError", "lock"},
  };
  std::vector<char> buffer(64);
  for (const Case& c : cases) {
    JobOutcome outcome = RunExpression(*interpreter, runner, c.expr, &buffer);
    EXPECT_EQ(outcome.kind, c.kind) << c.expr << ": " << outcome.error.message;
    EXPECT_EQ(outcome.error.type, c.error_type) << c.expr;
    EXPECT_NE(outcome.error.message.find(c.error_part), std::string::npos)
        << c.expr << ": " << outcome.error.message;
  }
  // A result larger than the buffer spills, and says how big it wanted to be.
  JobOutcome big = RunExpression(*interpreter, runner, "(bytes, (100000,), {})", &buffer);
  EXPECT_EQ(big.kind, JobOutcome::Kind::kOk);
  EXPECT_GT(big.payload.size(), 100000u);
  EXPECT_EQ(big.needed_bytes, big.payload.size());
  {
    SubInterpreter::Attached attached(*interpreter);
    runner.Unload();
  }
}

TEST(SubInterpreter, EachThreadGetsItsOwnInterpreterAndGil) {
  constexpr int kThreads = 3;
  std::vector<std::int64_t> ids(kThreads, -1);
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      Status status;
      auto interpreter = SubInterpreter::Create(&status);
      ASSERT_NE(interpreter, nullptr) << status.message();
      ids[i] = interpreter->id();
      SubInterpreter::Attached attached(*interpreter);
      // Every thread holds its own GIL at once: they all get in together.
      int now = ++inside;
      int seen = max_inside.load();
      while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
      }
      while (max_inside.load() < kThreads) std::this_thread::yield();
      --inside;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(max_inside.load(), kThreads);
  EXPECT_NE(ids[0], ids[1]);
  EXPECT_NE(ids[1], ids[2]);
  EXPECT_NE(ids[0], ids[2]);
}

}  // namespace
}  // namespace ei::python
