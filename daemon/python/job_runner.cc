#include "daemon/python/job_runner.h"

#include <Python.h>

#include <cstring>

#include "daemon/python/error.h"
#include "daemon/python/worker_bootstrap_source.h"

namespace ei::python {
namespace {

constexpr char kModuleName[] = "_extrainterpreters_worker";

// Bootstrap kinds (worker_bootstrap.py) to outcome kinds.
JobOutcome::Kind KindFromCode(long code) {
  switch (code) {
    case 0: return JobOutcome::Kind::kOk;
    case 1: return JobOutcome::Kind::kRaised;
    case 2: return JobOutcome::Kind::kLoadFailed;
    case 3: return JobOutcome::Kind::kResultNotPicklable;
    default: return JobOutcome::Kind::kInternal;
  }
}

std::string Utf8Item(PyObject* tuple, Py_ssize_t i) {
  const char* text = PyUnicode_AsUTF8(PyTuple_GET_ITEM(tuple, i));
  if (text == nullptr) {
    PyErr_Clear();
    return "";
  }
  return text;
}

JobOutcome Internal(const std::string& what) {
  JobOutcome outcome;
  outcome.error = FetchError();
  outcome.error.message = DescribeError(what, outcome.error);
  return outcome;
}

// Reads run_job's (kind, error, written, spill) tuple into `outcome`.
bool ReadResult(PyObject* result, const char* buffer, std::size_t capacity, JobOutcome* outcome) {
  long kind = 0;
  Py_ssize_t written = 0;
  PyObject* error = nullptr;
  PyObject* spill = nullptr;
  if (!PyArg_ParseTuple(result, "lOnO", &kind, &error, &written, &spill)) return false;
  // Jobs run in this interpreter and can rebind the bootstrap's globals, so
  // `written` is checked before it sizes a copy out of the buffer.
  if (written < 0 || static_cast<std::size_t>(written) > capacity) {
    PyErr_Format(PyExc_ValueError,
                 "the worker bootstrap reported %zd bytes written into a %zu-byte buffer", written,
                 capacity);
    return false;
  }
  outcome->kind = KindFromCode(kind);
  if (PyTuple_Check(error) && PyTuple_GET_SIZE(error) == 3) {
    outcome->error = {Utf8Item(error, 0), Utf8Item(error, 1), Utf8Item(error, 2)};
  }
  Py_buffer extra{};
  if (spill != Py_None && PyObject_GetBuffer(spill, &extra, PyBUF_SIMPLE) < 0) return false;
  outcome->payload.resize(static_cast<std::size_t>(written + extra.len));
  std::memcpy(outcome->payload.data(), buffer, static_cast<std::size_t>(written));
  if (extra.len > 0) {
    std::memcpy(outcome->payload.data() + written, extra.buf, static_cast<std::size_t>(extra.len));
  }
  outcome->needed_bytes = outcome->payload.size();
  if (spill != Py_None) PyBuffer_Release(&extra);
  return true;
}

}  // namespace

Status JobRunner::Load(const std::vector<std::string>& preload) {
  PyObject* code = Py_CompileString(kWorkerBootstrapSource, "<extrainterpreters worker bootstrap>",
                                    Py_file_input);
  PyObject* module = code != nullptr ? PyImport_ExecCodeModule(kModuleName, code) : nullptr;
  Py_XDECREF(code);
  if (module != nullptr) run_job_ = PyObject_GetAttrString(module, "run_job");
  Py_XDECREF(module);
  if (run_job_ == nullptr) {
    return Status::Error(DescribeError("cannot load the worker bootstrap", FetchError()));
  }
  for (const std::string& name : preload) {
    PyObject* imported = PyImport_ImportModule(name.c_str());
    if (imported == nullptr) {
      return Status::Error(DescribeError("cannot preload module " + name, FetchError()));
    }
    Py_DECREF(imported);
  }
  return Status::Ok();
}

JobOutcome JobRunner::Run(char* buffer, std::size_t capacity, std::size_t size) {
  PyObject* view = PyMemoryView_FromMemory(buffer, static_cast<Py_ssize_t>(capacity), PyBUF_WRITE);
  if (view == nullptr) return Internal("cannot make a memoryview of the shared buffer");
  PyObject* result = PyObject_CallFunction(run_job_, "On", view, static_cast<Py_ssize_t>(size));
  Py_DECREF(view);
  if (result == nullptr) return Internal("the worker bootstrap failed");
  JobOutcome outcome;
  const bool read = ReadResult(result, buffer, capacity, &outcome);
  Py_DECREF(result);
  if (!read) return Internal("the worker bootstrap returned a malformed outcome");
  return outcome;
}

void JobRunner::Unload() {
  Py_CLEAR(run_job_);
}

}  // namespace ei::python
