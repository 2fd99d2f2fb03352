// A small result type for the C-API layer: errors leave it as plain data.
#pragma once

#include <string>
#include <utility>

namespace ei::python {

/// What a Python error was, captured once into plain strings.
struct PyErrorInfo {
  std::string type;       // "module.QualName" of the exception class
  std::string message;    // str(exception)
  std::string traceback;  // traceback.format_exception(...) joined
};

/// Ok, or a message that says what failed and why.
class Status {
 public:
  Status() = default;  // ok
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !failed_; }
  const std::string& message() const { return message_; }

 private:
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}

  bool failed_ = false;
  std::string message_;
};

}  // namespace ei::python
