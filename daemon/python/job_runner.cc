#include "daemon/python/job_runner.h"

// Sizes of "#" formats are Py_ssize_t (3.12 requires saying so; 3.13 always does).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstring>

#include <unistd.h>

#include "daemon/python/error.h"
#include "daemon/python/function_loader_source.h"
#include "daemon/python/module_guard_source.h"
#include "daemon/python/shm_source.h"
#include "daemon/python/worker_bootstrap_source.h"

namespace ei::python {

// Lets the emit and reserve builtins reach the runner's current job.
struct EmitAccess {
  static const OutputSink* Sink(JobRunner* runner) { return runner->output_; }
  static const LendResultSpace* Lend(JobRunner* runner) { return runner->lend_; }
  static PyObject** LentView(JobRunner* runner) { return &runner->lent_view_; }
  static const OutOfBand* Job(JobRunner* runner) { return runner->out_of_band_; }
  static PyObject** MappedView(JobRunner* runner) { return &runner->mapped_view_; }
};

namespace {

constexpr char kShmName[] = "_extrainterpreters_shm";
constexpr char kLoaderName[] = "_extrainterpreters_loader";
constexpr char kBootstrapName[] = "_extrainterpreters_worker";
constexpr char kGuardName[] = "_extrainterpreters_guard";
constexpr char kCapsuleName[] = "extrainterpreters.JobRunner";

// emit(stream, text): hands a job's output to the daemon. Its `self` is a
// capsule holding the JobRunner.
PyObject* Emit(PyObject* self, PyObject* args) {
  const char* stream = nullptr;
  const char* text = nullptr;
  Py_ssize_t size = 0;
  if (!PyArg_ParseTuple(args, "ss#", &stream, &text, &size)) return nullptr;
  auto* runner = static_cast<JobRunner*>(PyCapsule_GetPointer(self, kCapsuleName));
  if (runner == nullptr) return nullptr;
  if (const OutputSink* sink = EmitAccess::Sink(runner); sink != nullptr && *sink) {
    (*sink)(stream, std::string_view(text, static_cast<std::size_t>(size)));
  }
  Py_RETURN_NONE;
}

PyMethodDef kEmitDef = {"emit", Emit, METH_VARARGS, "Sends a job's output to its client."};

// reserve(size) -> (writable memoryview, fd) or None: the connection's
// result region for _shm.share (PROTOCOL.md, "Large data"). Once per job.
PyObject* Reserve(PyObject* self, PyObject* args) {
  Py_ssize_t size = 0;
  if (!PyArg_ParseTuple(args, "n", &size)) return nullptr;
  auto* runner = static_cast<JobRunner*>(PyCapsule_GetPointer(self, kCapsuleName));
  if (runner == nullptr) return nullptr;
  const LendResultSpace* lend = EmitAccess::Lend(runner);
  PyObject** lent_view = EmitAccess::LentView(runner);
  int fd = -1;
  char* space = nullptr;
  if (size > 0 && lend != nullptr && *lend && *lent_view == nullptr) {
    space = (*lend)(static_cast<std::size_t>(size), &fd);
  }
  if (space == nullptr) Py_RETURN_NONE;
  *lent_view = PyMemoryView_FromMemory(space, size, PyBUF_WRITE);
  PyObject* result = *lent_view != nullptr ? Py_BuildValue("(Oi)", *lent_view, fd) : nullptr;
  if (result == nullptr) ::close(fd);
  return result;
}

PyMethodDef kReserveDef = {"reserve", Reserve, METH_VARARGS,
                           "Lends the connection's result region to this job."};

// mapped() -> read-only memoryview or None: the session's mapping of the
// job's argument file, for _shm.views. Once per job.
PyObject* Mapped(PyObject* self, PyObject*) {
  auto* runner = static_cast<JobRunner*>(PyCapsule_GetPointer(self, kCapsuleName));
  if (runner == nullptr) return nullptr;
  const OutOfBand* job = EmitAccess::Job(runner);
  PyObject** view = EmitAccess::MappedView(runner);
  if (job == nullptr || job->mapped == nullptr || *view != nullptr) Py_RETURN_NONE;
  *view = PyMemoryView_FromMemory(const_cast<char*>(job->mapped),
                                  static_cast<Py_ssize_t>(job->mapped_size), PyBUF_READ);
  Py_XINCREF(*view);
  return *view;
}

PyMethodDef kMappedDef = {"mapped", Mapped, METH_NOARGS,
                          "The session's mapping of this job's argument file."};

// True when nothing but `view` itself (one reference, held by the runner)
// uses the memory it shows: every memoryview made from it registers with
// its managed buffer, and anything that exports a buffer from one of them
// holds one.
bool Unused(PyObject* view) {
  auto* memory = reinterpret_cast<PyMemoryViewObject*>(view);
  return Py_REFCNT(view) == 1 && memory->exports == 0 && memory->mbuf->exports == 1;
}

// Compiles `source` and installs it as module `name`; a new reference.
PyObject* InstallModule(const char* name, const char* source, const char* filename) {
  PyObject* code = Py_CompileString(source, filename, Py_file_input);
  PyObject* module = code != nullptr ? PyImport_ExecCodeModule(name, code) : nullptr;
  Py_XDECREF(code);
  return module;
}

// {digest: bytes} for the job's definitions, or None; a new reference.
PyObject* DefinitionsDict(const std::vector<Definition>& definitions) {
  if (definitions.empty()) Py_RETURN_NONE;
  PyObject* dict = PyDict_New();
  for (const auto& [digest, blob] : definitions) {
    PyObject* bytes =
        PyBytes_FromStringAndSize(blob->data(), static_cast<Py_ssize_t>(blob->size()));
    if (bytes == nullptr || PyDict_SetItemString(dict, digest.c_str(), bytes) < 0) {
      Py_XDECREF(bytes);
      Py_DECREF(dict);
      return nullptr;
    }
    Py_DECREF(bytes);
  }
  return dict;
}

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

// A Python tuple of ints from sizes; a new reference.
PyObject* SizesTuple(const std::vector<std::size_t>& sizes) {
  PyObject* tuple = PyTuple_New(static_cast<Py_ssize_t>(sizes.size()));
  for (std::size_t i = 0; tuple != nullptr && i < sizes.size(); ++i) {
    PyTuple_SET_ITEM(tuple, static_cast<Py_ssize_t>(i), PyLong_FromSize_t(sizes[i]));
  }
  return tuple;
}

// Takes the result's memfd and buffer lengths, if the bootstrap made one.
bool ReadOutOfBand(int fd, PyObject* lengths, JobOutcome* outcome) {
  if (fd < 0) return true;
  outcome->result_fd.reset(fd);  // ours now, whatever else fails
  PyObject* items = PySequence_Fast(lengths, "result buffer lengths must be a sequence");
  if (items == nullptr) return false;
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(items); ++i) {
    const std::size_t n = PyLong_AsSize_t(PySequence_Fast_GET_ITEM(items, i));
    if (n == static_cast<std::size_t>(-1) && PyErr_Occurred()) {
      Py_DECREF(items);
      return false;
    }
    outcome->result_out_of_band.push_back(n);
  }
  Py_DECREF(items);
  return true;
}

// Reads run_job's (kind, error, written, spill, result_fd, lengths,
// threads_left) tuple.
bool ReadResult(PyObject* result, const char* buffer, std::size_t capacity, JobOutcome* outcome) {
  long kind = 0;
  Py_ssize_t written = 0;
  PyObject* error = nullptr;
  PyObject* spill = nullptr;
  int result_fd = -1;
  PyObject* lengths = nullptr;
  if (!PyArg_ParseTuple(result, "lOnOiOi", &kind, &error, &written, &spill, &result_fd, &lengths,
                        &outcome->threads_left)) {
    return false;
  }
  if (!ReadOutOfBand(result_fd, lengths, outcome)) return false;
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

// A Python list of str from `names`; a new reference.
PyObject* StringList(const std::vector<std::string>& names) {
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(names.size()));
  for (std::size_t i = 0; list != nullptr && i < names.size(); ++i) {
    PyObject* name = PyUnicode_FromStringAndSize(names[i].data(),
                                                 static_cast<Py_ssize_t>(names[i].size()));
    if (name == nullptr) Py_CLEAR(list);
    if (list != nullptr) PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), name);
  }
  return list;
}

}  // namespace

Status JobRunner::Load(const std::vector<std::string>& preload,
                       const std::optional<std::vector<std::string>>& refused) {
  PyObject* shm = InstallModule(kShmName, kShmSource, "<extrainterpreters shared memory>");
  PyObject* loader = shm != nullptr ? InstallModule(kLoaderName, kFunctionLoaderSource,
                                                    "<extrainterpreters function loader>")
                                    : nullptr;
  Py_XDECREF(shm);
  PyObject* module = loader != nullptr ? InstallModule(kBootstrapName, kWorkerBootstrapSource,
                                                       "<extrainterpreters worker bootstrap>")
                                       : nullptr;
  Py_XDECREF(loader);
  if (module != nullptr) {
    run_job_ = PyObject_GetAttrString(module, "run_job");
    cancelled_type_ = run_job_ != nullptr ? PyObject_GetAttrString(module, "JobCancelled") : nullptr;
  }
  bootstrap_ = module;  // kept: the process lane calls its stop functions
  PyObject* capsule = cancelled_type_ != nullptr ? PyCapsule_New(this, kCapsuleName, nullptr) : nullptr;
  if (capsule != nullptr) emit_ = PyCFunction_New(&kEmitDef, capsule);
  PyObject* reserve = emit_ != nullptr ? PyCFunction_New(&kReserveDef, capsule) : nullptr;
  PyObject* mapped = reserve != nullptr ? PyCFunction_New(&kMappedDef, capsule) : nullptr;
  Py_XDECREF(capsule);
  PyObject* shm_module = mapped != nullptr ? PyImport_ImportModule(kShmName) : nullptr;
  if (shm_module != nullptr && PyObject_SetAttrString(shm_module, "reserve", reserve) == 0 &&
      PyObject_SetAttrString(shm_module, "mapped", mapped) == 0) {
    settle_ = PyObject_GetAttrString(shm_module, "settle_received");
  }
  Py_XDECREF(shm_module);
  Py_XDECREF(mapped);
  Py_XDECREF(reserve);
  if (settle_ == nullptr) Py_CLEAR(emit_);
  if (emit_ == nullptr) {
    return Status::Error(DescribeError("cannot load the worker bootstrap", FetchError()));
  }
  if (refused) {
    PyObject* guard =
        InstallModule(kGuardName, kModuleGuardSource, "<extrainterpreters module guard>");
    PyObject* names = guard != nullptr ? StringList(*refused) : nullptr;
    PyObject* done = names != nullptr
                         ? PyObject_CallMethod(guard, "refuse_modules", "O", names)
                         : nullptr;
    Py_XDECREF(names);
    Py_XDECREF(guard);
    if (done == nullptr) {
      return Status::Error(DescribeError("cannot install the process-module guard", FetchError()));
    }
    Py_DECREF(done);
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

JobOutcome JobRunner::Run(char* buffer, std::size_t capacity, std::size_t size,
                          const std::vector<Definition>& definitions, const OutputSink& output,
                          const OutOfBand& out_of_band) {
  PyObject* view = PyMemoryView_FromMemory(buffer, static_cast<Py_ssize_t>(capacity), PyBUF_WRITE);
  if (view == nullptr) return Internal("cannot make a memoryview of the shared buffer");
  PyObject* defs = DefinitionsDict(definitions);
  if (defs == nullptr) {
    Py_DECREF(view);
    return Internal("cannot pass the job's definitions");
  }
  PyObject* lengths = SizesTuple(out_of_band.lengths);
  if (lengths == nullptr) {
    Py_DECREF(defs);
    Py_DECREF(view);
    return Internal("cannot pass the job's buffer lengths");
  }
  output_ = &output;
  lend_ = &out_of_band.lend;
  out_of_band_ = &out_of_band;
  PyObject* result =
      PyObject_CallFunction(run_job_, "OnOOiOO", view, static_cast<Py_ssize_t>(size), defs,
                            output ? emit_ : Py_None, out_of_band.fd, lengths,
                            out_of_band.share_result ? Py_True : Py_False);
  output_ = nullptr;
  lend_ = nullptr;
  out_of_band_ = nullptr;
  Py_DECREF(lengths);
  Py_DECREF(defs);
  Py_DECREF(view);
  JobOutcome outcome;
  const bool read = result != nullptr && ReadResult(result, buffer, capacity, &outcome);
  Py_XDECREF(result);
  if (!read) {
    outcome = Internal(result == nullptr ? "the worker bootstrap failed"
                                         : "the worker bootstrap returned a malformed outcome");
  }
  SettleOutOfBand(out_of_band, &outcome);
  return outcome;
}

// After a job: whether the client may reuse its arguments' file, and
// whether the lent result space is free of views.
void JobRunner::SettleOutOfBand(const OutOfBand& out_of_band, JobOutcome* outcome) {
  if (out_of_band.fd >= 0) {
    PyObject* done = PyObject_CallNoArgs(settle_);
    outcome->out_of_band_done = done == Py_True;
    if (done == nullptr) PyErr_Clear();
    Py_XDECREF(done);
  }
  if (mapped_view_ != nullptr) {
    if (Unused(mapped_view_)) {
      PyObject* released = PyObject_CallMethod(mapped_view_, "release", nullptr);
      if (released == nullptr) PyErr_Clear();
      Py_XDECREF(released);
    } else {
      outcome->out_of_band_done = false;
      outcome->out_of_band_map_kept = true;
    }
    Py_CLEAR(mapped_view_);
  }
  if (lent_view_ != nullptr) {
    outcome->result_lent = true;
    PyObject* released = PyObject_CallMethod(lent_view_, "release", nullptr);
    if (released == nullptr) {
      PyErr_Clear();  // something still exports it
      outcome->result_space_pinned = true;
    }
    Py_XDECREF(released);
    Py_CLEAR(lent_view_);
  }
}

PyObject* JobRunner::timeout_type() { return PyExc_TimeoutError; }

void JobRunner::Unload() {
  Py_CLEAR(bootstrap_);
  Py_CLEAR(run_job_);
  Py_CLEAR(cancelled_type_);
  Py_CLEAR(emit_);
  Py_CLEAR(settle_);
  Py_CLEAR(lent_view_);
  Py_CLEAR(mapped_view_);
}

}  // namespace ei::python
