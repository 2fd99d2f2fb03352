// `_extrainterpreters`: a multi-phase, per-interpreter module (it supports
// an own GIL), so each sub-interpreter gets its own copy with its own
// QueueError. A put or get that has to wait releases the GIL for the call
// into the QueueService, which sleeps on a condition variable (nothing
// polls).
#include "daemon/python/builtin_module.h"

// Sizes of "#" formats are Py_ssize_t (3.12 requires saying so; 3.13 always does).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>
#include <optional>
#include <utility>
#include <vector>

#include "daemon/python/client_package_source.h"
#include "daemon/python/plain_pickle.h"

namespace ei::python {
namespace {

std::atomic<QueueService*> g_service{nullptr};

struct ModuleState {
  PyObject* queue_error;  // QueueError(code, message)
};

ModuleState* StateOf(PyObject* module) {
  return static_cast<ModuleState*>(PyModule_GetState(module));
}

QueueService* ServiceOrRaise() {
  QueueService* service = g_service.load();
  if (service == nullptr) {
    PyErr_SetString(PyExc_RuntimeError,
                    "the daemon's queues are not available in this interpreter");
  }
  return service;
}

// The stop exception a process lane worker's stop signal would raise
// (worker_bootstrap.py) is raised by the queue call that waited instead:
// dropped, so the signal's handler does not raise it a second time.
void DropPendingStopSignal() {
  PyObject* name = PyUnicode_FromString("_extrainterpreters_worker");
  PyObject* bootstrap = name != nullptr ? PyImport_GetModule(name) : nullptr;
  Py_XDECREF(name);
  if (bootstrap == nullptr) {
    PyErr_Clear();
    return;
  }
  PyObject* done = PyObject_CallMethod(bootstrap, "request_stop", "O", Py_None);
  if (done == nullptr) PyErr_Clear();
  Py_XDECREF(done);
  Py_DECREF(bootstrap);
}

// Sets the Python error for a failed call; returns nullptr.
PyObject* RaiseFor(PyObject* module, const QueueCallResult& result) {
  if (result.code == "stopped" && result.stop_type != nullptr) {
    // The interrupter also left the stop exception pending in this thread;
    // it is raised here instead, once, at the call that waited.
    PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), nullptr);
    DropPendingStopSignal();
    PyErr_SetString(result.stop_type, result.why.c_str());
    return nullptr;
  }
  PyObject* args = Py_BuildValue("(s#s#)", result.code.data(),
                                 static_cast<Py_ssize_t>(result.code.size()), result.why.data(),
                                 static_cast<Py_ssize_t>(result.why.size()));
  if (args != nullptr) {
    PyErr_SetObject(StateOf(module)->queue_error, args);
    Py_DECREF(args);
  }
  return nullptr;
}

// "timeout": None or a number of seconds >= 0.
bool ReadTimeout(PyObject* value, std::optional<double>* timeout) {
  if (value == Py_None) return true;
  const double seconds = PyFloat_AsDouble(value);
  if (seconds == -1.0 && PyErr_Occurred()) return false;
  if (!(seconds >= 0) || seconds > 1e9) {
    PyErr_SetString(PyExc_ValueError, "timeout must be None or a number of seconds from 0 to 1e9");
    return false;
  }
  *timeout = seconds;
  return true;
}

// queue_create(name: str | None, maxsize: int) -> int
PyObject* QueueCreate(PyObject* module, PyObject* args) {
  PyObject* name = nullptr;
  Py_ssize_t maxsize = 0;
  if (!PyArg_ParseTuple(args, "On:queue_create", &name, &maxsize)) return nullptr;
  std::optional<std::string> wanted;
  if (name != Py_None) {
    const char* text = PyUnicode_AsUTF8(name);
    if (text == nullptr) return nullptr;
    wanted = text;
  }
  if (maxsize < 0) {
    PyErr_SetString(PyExc_ValueError, "maxsize must be >= 0");
    return nullptr;
  }
  QueueService* service = ServiceOrRaise();
  if (service == nullptr) return nullptr;
  const QueueCallResult result = service->Create(wanted, static_cast<std::size_t>(maxsize));
  if (!result.code.empty()) return RaiseFor(module, result);
  return PyLong_FromUnsignedLongLong(result.queue);
}

// queue_open(name: str) -> (queue, maxsize)
PyObject* QueueOpen(PyObject* module, PyObject* args) {
  const char* name = nullptr;
  if (!PyArg_ParseTuple(args, "s:queue_open", &name)) return nullptr;
  QueueService* service = ServiceOrRaise();
  if (service == nullptr) return nullptr;
  const QueueCallResult result = service->Open(name);
  if (!result.code.empty()) return RaiseFor(module, result);
  return Py_BuildValue("(Kn)", static_cast<unsigned long long>(result.queue),
                       static_cast<Py_ssize_t>(result.maxsize));
}

// Whether a put or get refused with `code` should wait instead.
bool ShouldWait(const QueueCallResult& tried, const char* code, bool block,
                const std::optional<double>& timeout) {
  return tried.code == code && block && !(timeout && *timeout == 0);
}

// The arguments every put and get starts with: the queue's id, then, at
// `block_at`, block and timeout. False with the error set if one is wrong.
struct CallArgs {
  std::uint64_t queue = 0;
  bool block = true;
  std::optional<double> timeout;
};

bool ReadCallArgs(const char* name, PyObject* const* args, Py_ssize_t nargs, Py_ssize_t expected,
                  Py_ssize_t block_at, CallArgs* call) {
  if (nargs != expected) {
    PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, expected, nargs);
    return false;
  }
  call->queue = PyLong_AsUnsignedLongLong(args[0]);
  if (call->queue == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return false;
  const int block = PyObject_IsTrue(args[block_at]);
  if (block < 0) return false;
  call->block = block != 0;
  return ReadTimeout(args[block_at + 1], &call->timeout);
}

// Put and get first try without waiting, with the GIL held: the store holds
// its mutex only briefly and nothing that holds it ever waits for a GIL, so
// this is safe, and it spares the common case a release and re-acquire of
// the GIL. Only a call that must wait releases the GIL for its wait.
// The item's copy for the store; false with MemoryError set if there is no
// memory for it (no C++ exception may cross into CPython).
bool CopyItem(const char* data, std::size_t size, std::vector<char>* item) {
  try {
    item->assign(data, data + size);
    return true;
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
    return false;
  }
}

PyObject* PutItem(PyObject* module, const CallArgs& call, const char* data, std::size_t size) {
  QueueService* service = ServiceOrRaise();
  std::vector<char> item;
  if (service == nullptr || !CopyItem(data, size, &item)) return nullptr;
  QueueCallResult result = service->Put(call.queue, std::move(item), false, call.timeout);
  if (ShouldWait(result, "queue_full", call.block, call.timeout)) {
    std::vector<char> copy;
    if (!CopyItem(data, size, &copy)) return nullptr;
    Py_BEGIN_ALLOW_THREADS
    result = service->Put(call.queue, std::move(copy), true, call.timeout);
    Py_END_ALLOW_THREADS
  }
  if (!result.code.empty()) return RaiseFor(module, result);
  Py_RETURN_NONE;
}

// The oldest item's pickle into `result`; false with the error set if the
// get failed.
bool GetItem(PyObject* module, const CallArgs& call, QueueCallResult* result) {
  QueueService* service = ServiceOrRaise();
  if (service == nullptr) return false;
  *result = service->Get(call.queue, false, call.timeout);
  if (ShouldWait(*result, "queue_empty", call.block, call.timeout)) {
    Py_BEGIN_ALLOW_THREADS
    *result = service->Get(call.queue, true, call.timeout);
    Py_END_ALLOW_THREADS
  }
  if (result->code.empty()) return true;
  RaiseFor(module, *result);
  return false;
}

// queue_put(queue: int, item: bytes, block: bool, timeout: float | None):
// `item` is the pickled item.
PyObject* QueuePut(PyObject* module, PyObject* const* args, Py_ssize_t nargs) {
  CallArgs call;
  if (!ReadCallArgs("queue_put", args, nargs, 4, 2, &call)) return nullptr;
  Py_buffer item{};
  if (PyObject_GetBuffer(args[1], &item, PyBUF_SIMPLE) != 0) return nullptr;
  PyObject* done = PutItem(module, call, static_cast<const char*>(item.buf),
                           static_cast<std::size_t>(item.len));
  PyBuffer_Release(&item);
  return done;
}

// queue_put_plain(queue: int, item, block: bool, timeout: float | None) -> bool:
// puts `item` itself, pickled here, if it is one plain value (plain_pickle.h),
// and returns True; returns False, having put nothing, for any other item.
PyObject* QueuePutPlain(PyObject* module, PyObject* const* args, Py_ssize_t nargs) {
  CallArgs call;
  if (!ReadCallArgs("queue_put_plain", args, nargs, 4, 2, &call)) return nullptr;
  std::vector<char> pickled;
  try {
    if (!DumpPlain(args[1], &pickled)) Py_RETURN_FALSE;
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  }
  PyObject* done = PutItem(module, call, pickled.data(), pickled.size());
  if (done == nullptr) return nullptr;
  Py_DECREF(done);
  Py_RETURN_TRUE;
}

// queue_get(queue: int, block: bool, timeout: float | None) -> bytes, the
// pickled item.
PyObject* QueueGet(PyObject* module, PyObject* const* args, Py_ssize_t nargs) {
  CallArgs call;
  if (!ReadCallArgs("queue_get", args, nargs, 3, 1, &call)) return nullptr;
  QueueCallResult result;
  if (!GetItem(module, call, &result)) return nullptr;
  return PyBytes_FromStringAndSize(result.item.data(), static_cast<Py_ssize_t>(result.item.size()));
}

// queue_get_plain(queue: int, block: bool, timeout: float | None): the item
// itself when it is one plain value, unpickled here; else its pickle as a
// bytearray (which no plain value is), for the caller to unpickle.
PyObject* QueueGetPlain(PyObject* module, PyObject* const* args, Py_ssize_t nargs) {
  CallArgs call;
  if (!ReadCallArgs("queue_get_plain", args, nargs, 3, 1, &call)) return nullptr;
  QueueCallResult result;
  if (!GetItem(module, call, &result)) return nullptr;
  PyObject* value = LoadPlain(result.item.data(), result.item.size());
  if (value != nullptr || PyErr_Occurred()) return value;
  return PyByteArray_FromStringAndSize(result.item.data(),
                                       static_cast<Py_ssize_t>(result.item.size()));
}

// queue_info(queue: int) -> dict, as the queue_info reply's fields
PyObject* QueueInfo(PyObject* module, PyObject* args) {
  unsigned long long queue = 0;
  if (!PyArg_ParseTuple(args, "K:queue_info", &queue)) return nullptr;
  QueueService* service = ServiceOrRaise();
  if (service == nullptr) return nullptr;
  const QueueCallResult r = service->Info(queue);
  if (!r.code.empty()) return RaiseFor(module, r);
  PyObject* name = r.name ? PyUnicode_FromStringAndSize(r.name->data(),
                                                        static_cast<Py_ssize_t>(r.name->size()))
                          : Py_NewRef(Py_None);
  if (name == nullptr) return nullptr;
  return Py_BuildValue("{sKsNsnsnsnsnsnsn}", "queue", static_cast<unsigned long long>(r.queue),
                       "name", name, "size", static_cast<Py_ssize_t>(r.size), "bytes",
                       static_cast<Py_ssize_t>(r.bytes), "maxsize",
                       static_cast<Py_ssize_t>(r.maxsize), "waiters",
                       static_cast<Py_ssize_t>(r.getters + r.putters), "getters",
                       static_cast<Py_ssize_t>(r.getters), "putters",
                       static_cast<Py_ssize_t>(r.putters));
}

// queue_delete(queue: int)
PyObject* QueueDelete(PyObject* module, PyObject* args) {
  unsigned long long queue = 0;
  if (!PyArg_ParseTuple(args, "K:queue_delete", &queue)) return nullptr;
  QueueService* service = ServiceOrRaise();
  if (service == nullptr) return nullptr;
  const QueueCallResult result = service->Delete(queue);
  if (!result.code.empty()) return RaiseFor(module, result);
  Py_RETURN_NONE;
}

// package_source(name: str) -> (source, is_package) or None
PyObject* PackageSource(PyObject*, PyObject* args) {
  const char* name = nullptr;
  if (!PyArg_ParseTuple(args, "s:package_source", &name)) return nullptr;
  for (const EmbeddedModule& module : kClientPackage) {
    if (std::strcmp(module.name, name) == 0) {
      return Py_BuildValue("(sO)", module.source, module.package ? Py_True : Py_False);
    }
  }
  Py_RETURN_NONE;
}

// A METH_FASTCALL function as PyMethodDef takes it.
PyCFunction Fast(PyObject* (*function)(PyObject*, PyObject* const*, Py_ssize_t)) {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(function));
}

PyMethodDef kMethods[] = {
    {"queue_create", QueueCreate, METH_VARARGS, "queue_create(name, maxsize) -> queue id"},
    {"queue_open", QueueOpen, METH_VARARGS, "queue_open(name) -> (queue id, maxsize)"},
    {"queue_put", Fast(QueuePut),
     METH_FASTCALL, "queue_put(queue, pickled item, block, timeout)"},
    {"queue_put_plain", Fast(QueuePutPlain),
     METH_FASTCALL,
     "queue_put_plain(queue, item, block, timeout) -> True, or False (nothing put) when the "
     "item is not None, a bool, an int of 64 bits, a float, bytes, str or a short tuple of "
     "them"},
    {"queue_get", Fast(QueueGet),
     METH_FASTCALL, "queue_get(queue, block, timeout) -> pickled item"},
    {"queue_get_plain", Fast(QueueGetPlain),
     METH_FASTCALL,
     "queue_get_plain(queue, block, timeout) -> the item if it is a plain value, else "
     "the pickled item as a bytearray"},
    {"queue_info", QueueInfo, METH_VARARGS, "queue_info(queue) -> dict"},
    {"queue_delete", QueueDelete, METH_VARARGS, "queue_delete(queue)"},
    {"package_source", PackageSource, METH_VARARGS,
     "package_source(name) -> (source, is_package) or None, for the embedded client package"},
    {nullptr, nullptr, 0, nullptr},
};

int Exec(PyObject* module) {
  ModuleState* state = StateOf(module);
  state->queue_error = PyErr_NewExceptionWithDoc(
      "_extrainterpreters.QueueError", "A queue call failed: args are (code, message).",
      nullptr, nullptr);
  if (state->queue_error == nullptr) return -1;
  return PyModule_AddObjectRef(module, "QueueError", state->queue_error);
}

int Traverse(PyObject* module, visitproc visit, void* arg) {
  Py_VISIT(StateOf(module)->queue_error);
  return 0;
}

int Clear(PyObject* module) {
  Py_CLEAR(StateOf(module)->queue_error);
  return 0;
}

void Free(void* module) { Clear(static_cast<PyObject*>(module)); }

PyModuleDef_Slot kSlots[] = {
    {Py_mod_exec, reinterpret_cast<void*>(Exec)},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {0, nullptr},
};

PyModuleDef kModule = {
    PyModuleDef_HEAD_INIT,
    "_extrainterpreters",
    "The daemon's queues and client package, for code running in a job.",
    sizeof(ModuleState),
    kMethods,
    kSlots,
    Traverse,
    Clear,
    Free,
};

PyObject* Init() { return PyModuleDef_Init(&kModule); }

}  // namespace

void RegisterBuiltinModule() { PyImport_AppendInittab("_extrainterpreters", &Init); }

void SetQueueService(QueueService* service) { g_service.store(service); }

}  // namespace ei::python
