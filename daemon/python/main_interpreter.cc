#include "daemon/python/main_interpreter.h"

// Sizes of "#" formats are Py_ssize_t (3.12 requires saying so; 3.13 always does).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "daemon/python/error.h"
#include "daemon/python/job_runner.h"
#include "daemon/python/runtime.h"

namespace ei::python {

MainInterpreter::Attached::Attached() { Runtime::AttachMainThread(); }

MainInterpreter::Attached::~Attached() { Runtime::DetachMainThread(); }

Status MainInterpreter::InstallStopSignal(JobRunner& runner, int signal_number) {
  PyObject* done = PyObject_CallMethod(runner.bootstrap(), "install_stop_signal", "i",
                                       signal_number);
  if (done == nullptr) {
    return Status::Error(DescribeError("cannot install the stop signal handler", FetchError()));
  }
  Py_DECREF(done);
  return Status::Ok();
}

void MainInterpreter::RequestStop(JobRunner& runner, bool timeout,
                                  const std::function<bool()>& still_wanted) {
  PyGILState_STATE gil = PyGILState_Ensure();
  if (!still_wanted()) {
    PyGILState_Release(gil);
    return;
  }
  PyObject* type = timeout ? JobRunner::timeout_type() : runner.cancelled_type();
  PyObject* done = PyObject_CallMethod(runner.bootstrap(), "request_stop", "O", type);
  if (done == nullptr) PyErr_Clear();  // the job then runs to its grace period
  Py_XDECREF(done);
  PyGILState_Release(gil);
}

}  // namespace ei::python
