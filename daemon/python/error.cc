#include "daemon/python/error.h"

// Sizes of "#" formats are Py_ssize_t (3.12 requires saying so; 3.13 always does).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ei::python {
namespace {

// str(obj) as UTF-8, or `fallback` (with any new error cleared).
std::string Str(PyObject* obj, const char* fallback) {
  PyObject* text = obj != nullptr ? PyObject_Str(obj) : nullptr;
  const char* utf8 = text != nullptr ? PyUnicode_AsUTF8(text) : nullptr;
  std::string out = utf8 != nullptr ? utf8 : fallback;
  Py_XDECREF(text);
  PyErr_Clear();
  return out;
}

std::string TypeName(PyObject* exc) {
  PyObject* type = reinterpret_cast<PyObject*>(Py_TYPE(exc));
  PyObject* module = PyObject_GetAttrString(type, "__module__");
  PyObject* qualname = PyObject_GetAttrString(type, "__qualname__");
  std::string name = Str(module, "?") + "." + Str(qualname, Py_TYPE(exc)->tp_name);
  Py_XDECREF(module);
  Py_XDECREF(qualname);
  PyErr_Clear();
  return name;
}

std::string FormatTraceback(PyObject* exc) {
  PyObject* traceback = PyImport_ImportModule("traceback");
  PyObject* lines = traceback != nullptr
                        ? PyObject_CallMethod(traceback, "format_exception", "O", exc)
                        : nullptr;
  PyObject* empty = PyUnicode_FromString("");
  PyObject* joined = lines != nullptr && empty != nullptr ? PyUnicode_Join(empty, lines) : nullptr;
  std::string out = joined != nullptr ? Str(joined, "") : "";
  Py_XDECREF(joined);
  Py_XDECREF(empty);
  Py_XDECREF(lines);
  Py_XDECREF(traceback);
  PyErr_Clear();
  return out;
}

}  // namespace

PyErrorInfo FetchError() {
  PyObject* exc = PyErr_GetRaisedException();
  if (exc == nullptr) return {"builtins.SystemError", "no exception was set", ""};
  PyErrorInfo info{TypeName(exc), Str(exc, "<exception str() failed>"), FormatTraceback(exc)};
  Py_DECREF(exc);
  return info;
}

std::string DescribeError(const std::string& what, const PyErrorInfo& error) {
  return what + ": " + error.type + ": " + error.message;
}

}  // namespace ei::python
