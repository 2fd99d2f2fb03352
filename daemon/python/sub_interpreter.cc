#include "daemon/python/sub_interpreter.h"

// Sizes of "#" formats are Py_ssize_t (3.12 requires saying so; 3.13 always does).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cassert>
#include <mutex>
#include <string>

namespace ei::python {
namespace {

PyThreadState* CurrentOrNull() {
#if PY_VERSION_HEX >= 0x030D0000
  return PyThreadState_GetUnchecked();
#else
  return _PyThreadState_UncheckedGet();
#endif
}

// The one place that turns our preset into a PyInterpreterConfig: the
// "isolated" configuration, as CPython's own interpreters module uses.
PyInterpreterConfig IsolatedConfig() {
  PyInterpreterConfig config = {};
  config.use_main_obmalloc = 0;
  config.allow_fork = 0;
  config.allow_exec = 0;
  config.allow_threads = 1;
  config.allow_daemon_threads = 0;
  config.check_multi_interp_extensions = 1;
  config.gil = PyInterpreterConfig_OWN_GIL;
  return config;
}

// A job that called threading.current_thread() (logging does) made this
// thread a _DummyThread of the interpreter, whose thread-local guard would
// unregister it only while the interpreter ends, when threading's globals
// are gone (an "Exception ignored" traceback on stderr each time). Dropping
// the guard first lets it unregister the thread cleanly.
constexpr char kForgetDummyThread[] = R"(
import sys
threading = sys.modules.get("threading")
info = getattr(threading, "_thread_local_info", None)
if info is not None and hasattr(info, "_track_dummy_thread_ref"):
    del info._track_dummy_thread_ref
del sys, threading, info
)";

}  // namespace

// CPython creates interpreters unreliably when two threads do it at once:
// 3.12 corrupts memory (parts of interpreter start-up, such as builtins,
// codecs and static types, are not yet isolated; pybind11's
// subinterpreter.h serialises too), and 3.13 now and then fails with
// "Failed to import encodings module" (CPython gh-128381, gh-131485). So
// interpreters are made one at a time, the lock taken before the main GIL
// so no thread waits for it while holding that GIL, and a failed attempt
// is retried: a pool that cannot start a worker is worse than a slow start.
std::unique_ptr<SubInterpreter> SubInterpreter::Create(Status* status) {
  constexpr int kAttempts = 3;
  static std::mutex one_at_a_time;
  std::lock_guard<std::mutex> creating(one_at_a_time);
  for (int attempt = 1;; ++attempt) {
    std::unique_ptr<SubInterpreter> made = TryCreate(status);
    if (made != nullptr || attempt == kAttempts) {
      if (made == nullptr) {
        *status = Status::Error(status->message() + " (" + std::to_string(kAttempts) +
                                " attempts)");
      }
      return made;
    }
  }
}

std::unique_ptr<SubInterpreter> SubInterpreter::TryCreate(Status* status) {
  assert(CurrentOrNull() == nullptr);
  // Creating an interpreter needs an attached thread state of the main
  // interpreter on this thread; it is dropped again once the new one exists.
  PyThreadState* main_state = PyThreadState_New(PyInterpreterState_Main());
  PyEval_RestoreThread(main_state);

  const PyInterpreterConfig config = IsolatedConfig();
  PyThreadState* sub_state = nullptr;
  PyStatus created = Py_NewInterpreterFromConfig(&sub_state, &config);

  std::int64_t id = -1;
  if (PyStatus_Exception(created)) {
    *status = Status::Error(std::string("Py_NewInterpreterFromConfig failed: ") +
                            (created.err_msg != nullptr ? created.err_msg : "unknown error"));
    // On failure the main thread state is current again.
  } else {
    id = PyInterpreterState_GetID(PyThreadState_GetInterpreter(sub_state));
    // The new interpreter is current and holds its own GIL; switch back to
    // the main one to delete the helper state.
    PyThreadState_Swap(main_state);
  }
  PyThreadState_Clear(main_state);
  PyThreadState_DeleteCurrent();
  if (sub_state == nullptr || id < 0) return nullptr;
  *status = Status::Ok();
  return std::unique_ptr<SubInterpreter>(
      new SubInterpreter(sub_state, id, PyThread_get_thread_ident()));
}

SubInterpreter::~SubInterpreter() {
  PyEval_RestoreThread(thread_state_);
  PyObject* globals = PyDict_New();
  PyObject* done = globals != nullptr
                       ? PyRun_String(kForgetDummyThread, Py_file_input, globals, globals)
                       : nullptr;
  if (done == nullptr) PyErr_Clear();  // ending anyway; nothing to report
  Py_XDECREF(done);
  Py_XDECREF(globals);
  Py_EndInterpreter(thread_state_);  // leaves no current thread state
}

// A second thread state of this interpreter, on the calling thread, lets
// us take its GIL and raise in the worker's thread state; it is deleted
// again at once. (The thread state must belong to the same interpreter:
// PyThreadState_SetAsyncExc looks the target up in the current one.)
bool SubInterpreter::Interrupt(PyObject* exception_type,
                               const std::function<bool()>& still_wanted) {
  PyInterpreterState* interp = PyThreadState_GetInterpreter(thread_state_);
  PyThreadState* visitor = PyThreadState_New(interp);
  PyEval_RestoreThread(visitor);
  bool raised = false;
  if (still_wanted()) raised = PyThreadState_SetAsyncExc(thread_ident_, exception_type) == 1;
  PyThreadState_Clear(visitor);
  PyThreadState_DeleteCurrent();
  return raised;
}

void SubInterpreter::ClearInterrupt() { PyThreadState_SetAsyncExc(thread_ident_, nullptr); }

SubInterpreter::Attached::Attached(SubInterpreter& interpreter) : interpreter_(interpreter) {
  PyEval_RestoreThread(interpreter_.thread_state_);
}

SubInterpreter::Attached::~Attached() {
  [[maybe_unused]] PyThreadState* released = PyEval_SaveThread();
  assert(released == interpreter_.thread_state_);
}

}  // namespace ei::python
