// A sub-interpreter with its own GIL (PEP 684). It is created, used and ended
// on one OS thread, and keeps one thread state for its whole life.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "daemon/base/status.h"

struct _ts;      // PyThreadState
struct _is;      // PyInterpreterState
struct _object;  // PyObject

namespace ei::python {

class SubInterpreter {
 public:
  /// Creates an isolated sub-interpreter (own GIL, own allocator, strict
  /// extension checks, no fork, no exec) on the calling thread. Returns with
  /// no GIL held. The Runtime must be initialised; the calling thread must
  /// not hold any GIL. One at a time, retried (sub_interpreter.cc says why).
  static std::unique_ptr<SubInterpreter> Create(Status* status);

  /// Ends the interpreter. Must run on the thread that created it, with no
  /// GIL held.
  ~SubInterpreter();

  SubInterpreter(const SubInterpreter&) = delete;
  SubInterpreter& operator=(const SubInterpreter&) = delete;

  /// CPython's id for this interpreter.
  std::int64_t id() const { return id_; }

  /// Raises `exception_type` asynchronously in the Python code that the
  /// creating thread runs in this interpreter, if `still_wanted()` (called
  /// with this interpreter's GIL held) says so. Called from any other
  /// thread; blocks until it gets the GIL, which a job stuck in C code may
  /// never release. True if the exception was set.
  bool Interrupt(_object* exception_type, const std::function<bool()>& still_wanted);

  /// Drops an interrupt that was set but not yet raised. On the creating
  /// thread, inside an Attached scope.
  void ClearInterrupt();

  /// Holds this interpreter's GIL for its scope, on the creating thread.
  /// Nothing that can block for long should run inside one.
  class Attached {
   public:
    explicit Attached(SubInterpreter& interpreter);
    ~Attached();
    Attached(const Attached&) = delete;
    Attached& operator=(const Attached&) = delete;

   private:
    SubInterpreter& interpreter_;
  };

 private:
  static std::unique_ptr<SubInterpreter> TryCreate(Status* status);
  SubInterpreter(_ts* thread_state, std::int64_t id, unsigned long thread_ident)
      : thread_state_(thread_state), id_(id), thread_ident_(thread_ident) {}

  _ts* thread_state_;  // detached whenever no Attached scope is open
  std::int64_t id_;
  unsigned long thread_ident_;  // the creating thread, as CPython names it
};

}  // namespace ei::python
