// What a job's pickle refers to, read from its opcodes without unpickling
// it (the I/O thread never runs Python): the modules its globals come from,
// and which function it calls.
#pragma once

#include <set>
#include <span>
#include <string>

namespace ei {

struct PickleRefs {
  /// Top-level names of the modules the pickle's globals come from, and of
  /// modules it imports by name (importlib.import_module("x"),
  /// __import__("x")), as by-value functions refer to modules they use.
  std::set<std::string> modules;
  /// The called function, for remembering its lane: "module.qualname" of
  /// the first global that is not pickling machinery, or "value:<digest>"
  /// of a function shipped by value; "" when neither was seen.
  std::string function_key;
  /// False when the bytes ended inside an opcode or held an unknown one:
  /// what was read until then is still reported.
  bool complete = true;
};

/// Reads a pickle (any protocol). Linear in its size; large byte strings
/// are skipped by their length.
PickleRefs ScanPickle(std::span<const char> pickle);

}  // namespace ei
