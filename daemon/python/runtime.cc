#include "daemon/python/runtime.h"

// Sizes of "#" formats are Py_ssize_t (3.12 requires saying so; 3.13 always does).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdlib>
#include <cstring>

#include "daemon/python/builtin_module.h"

namespace ei::python {
namespace {

// The main thread's state while the GIL is released between Initialize and
// Finalize. Only the main thread touches it.
PyThreadState* g_main_thread_state = nullptr;

// sys.path, read once by Initialize while it holds the GIL; read-only after.
std::vector<std::string> g_sys_path;

Status FromPyStatus(PyStatus status, const char* what) {
  std::string message = std::string("cannot initialise Python: ") + what;
  if (status.func != nullptr) message += std::string(" (") + status.func + ")";
  if (status.err_msg != nullptr) message += std::string(": ") + status.err_msg;
  return Status::Error(message);
}

Status SetString(PyConfig* config, wchar_t** field, const std::string& value, const char* what) {
  PyStatus status = PyConfig_SetBytesString(config, field, value.c_str());
  if (PyStatus_Exception(status)) return FromPyStatus(status, what);
  return Status::Ok();
}

// Copies the str entries of sys.path. The GIL must be held.
void ReadSysPath(std::vector<std::string>* out) {
  PyObject* path = PySys_GetObject("path");  // borrowed
  if (path == nullptr || !PyList_Check(path)) return;
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(path); ++i) {
    PyObject* entry = PyList_GET_ITEM(path, i);  // borrowed
    const char* text = PyUnicode_Check(entry) ? PyUnicode_AsUTF8(entry) : nullptr;
    if (text != nullptr) {
      out->emplace_back(text);
    } else {
      PyErr_Clear();  // a non-str or unencodable entry: not a directory to announce
    }
  }
}

}  // namespace

Status Runtime::Initialize(const RuntimeOptions& options) {
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  // The daemon's own signal handling (Asio) must see SIGINT/SIGTERM, and jobs
  // must not be able to install handlers that stop the daemon.
  config.install_signal_handlers = 0;
  config.parse_argv = 0;
  // The home comes from the build, so the daemon needs neither PYTHONHOME nor
  // a python on PATH. PYTHONPATH and friends are still honoured.
  Status s = SetString(&config, &config.home, options.home, "home");
  if (s.ok()) s = SetString(&config, &config.program_name, options.program_name, "program name");
  // --python-path entries go first, then $PYTHONPATH, as if they were in it.
  std::string search_path;
  for (const std::string& entry : options.extra_paths) search_path += entry + ":";
  if (const char* env = std::getenv("PYTHONPATH"); env != nullptr) search_path += env;
  if (s.ok() && !search_path.empty()) {
    s = SetString(&config, &config.pythonpath_env, search_path, "python path");
  }
  if (s.ok()) {
    RegisterBuiltinModule();
    PyStatus status = Py_InitializeFromConfig(&config);
    if (PyStatus_Exception(status)) s = FromPyStatus(status, "Py_InitializeFromConfig");
  }
  PyConfig_Clear(&config);
  if (!s.ok()) return s;
  ReadSysPath(&g_sys_path);
  g_main_thread_state = PyEval_SaveThread();
  return Status::Ok();
}

void Runtime::Finalize() {
  if (g_main_thread_state == nullptr) return;
  // CPython before 3.12.4 allocates the keyword tuples of C functions'
  // argument parsers in whichever interpreter calls them first, so one
  // `pickle.dumps(x, protocol=5)` in an own-obmalloc sub-interpreter makes
  // Py_FinalizeEx free that memory with the wrong allocator and abort
  // ("free(): invalid pointer"; CPython gh-119213). Every sub-interpreter has
  // ended by now and the main interpreter ran no user code, so there is
  // nothing left to flush: leave the runtime to process exit there.
  if (Py_Version < 0x030C04F0) {
    g_main_thread_state = nullptr;
    return;
  }
  PyEval_RestoreThread(g_main_thread_state);
  g_main_thread_state = nullptr;
  Py_FinalizeEx();
}

void Runtime::AttachMainThread() {
  PyEval_RestoreThread(g_main_thread_state);
}

void Runtime::DetachMainThread() { g_main_thread_state = PyEval_SaveThread(); }

std::string Runtime::Version() {
  const char* full = Py_GetVersion();  // "3.13.0 (main, ...)"
  return std::string(full, std::strcspn(full, " "));
}

long Runtime::HexVersion() { return Py_Version; }

const std::vector<std::string>& Runtime::SysPath() { return g_sys_path; }

}  // namespace ei::python
