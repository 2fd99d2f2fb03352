#include "daemon/routing/pickle_scan.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <unordered_map>

namespace ei {
namespace {

// How an opcode's argument is laid out (pickletools' argument descriptors).
enum class Arg : std::uint8_t {
  kUnknown, kNone, kU1, kU2, kU4, kU8, kLen1, kLen4, kLen8, kLine, kTwoLines
};

// What an opcode leaves on top of the stack, as far as this reader cares.
enum class Effect : std::uint8_t {
  kPushOther,   // pushes (or replaces the top with) a value that is not a string
  kPushString,  // pushes its argument, a string
  kPop,         // leaves an unknown value on top
  kNone,        // leaves the stack alone (memo, framing, protocol)
  kGet,         // pushes a memo entry
  kPut,         // stores the top in the memo
  kGlobal,      // GLOBAL: module and name in its argument
  kStackGlobal, // STACK_GLOBAL: module and name from the stack
  kPersistent,  // PERSID / BINPERSID
};

struct Op {
  Arg arg = Arg::kUnknown;
  Effect effect = Effect::kPushOther;
};

constexpr std::array<Op, 256> MakeTable() {
  std::array<Op, 256> t{};
  auto set = [&](char code, Arg arg, Effect effect) {
    t[static_cast<unsigned char>(code)] = {arg, effect};
  };
  using A = Arg;
  using E = Effect;
  // Protocol 0 and 1.
  set('(', A::kNone, E::kPushOther);     // MARK
  set('.', A::kNone, E::kNone);          // STOP
  set('0', A::kNone, E::kPop);           // POP
  set('1', A::kNone, E::kPop);           // POP_MARK
  set('2', A::kNone, E::kNone);          // DUP
  set('F', A::kLine, E::kPushOther);     // FLOAT
  set('I', A::kLine, E::kPushOther);     // INT
  set('J', A::kU4, E::kPushOther);       // BININT
  set('K', A::kU1, E::kPushOther);       // BININT1
  set('L', A::kLine, E::kPushOther);     // LONG
  set('M', A::kU2, E::kPushOther);       // BININT2
  set('N', A::kNone, E::kPushOther);     // NONE
  set('P', A::kLine, E::kPersistent);    // PERSID
  set('Q', A::kNone, E::kPersistent);    // BINPERSID
  set('R', A::kNone, E::kPushOther);     // REDUCE
  set('S', A::kLine, E::kPushString);    // STRING
  set('T', A::kLen4, E::kPushString);    // BINSTRING
  set('U', A::kLen1, E::kPushString);    // SHORT_BINSTRING
  set('V', A::kLine, E::kPushString);    // UNICODE
  set('X', A::kLen4, E::kPushString);    // BINUNICODE
  set('a', A::kNone, E::kPop);           // APPEND
  set('b', A::kNone, E::kPop);           // BUILD
  set('c', A::kTwoLines, E::kGlobal);    // GLOBAL
  set('d', A::kNone, E::kPushOther);     // DICT
  set('}', A::kNone, E::kPushOther);     // EMPTY_DICT
  set('e', A::kNone, E::kPop);           // APPENDS
  set('g', A::kLine, E::kGet);           // GET
  set('h', A::kU1, E::kGet);             // BINGET
  set('i', A::kTwoLines, E::kGlobal);    // INST
  set('j', A::kU4, E::kGet);             // LONG_BINGET
  set('l', A::kNone, E::kPushOther);     // LIST
  set(']', A::kNone, E::kPushOther);     // EMPTY_LIST
  set('o', A::kNone, E::kPushOther);     // OBJ
  set('p', A::kLine, E::kPut);           // PUT
  set('q', A::kU1, E::kPut);             // BINPUT
  set('r', A::kU4, E::kPut);             // LONG_BINPUT
  set('s', A::kNone, E::kPop);           // SETITEM
  set('t', A::kNone, E::kPushOther);     // TUPLE
  set(')', A::kNone, E::kPushOther);     // EMPTY_TUPLE
  set('u', A::kNone, E::kPop);           // SETITEMS
  set('G', A::kU8, E::kPushOther);       // BINFLOAT
  // Protocol 2.
  set('\x80', A::kU1, E::kNone);         // PROTO
  set('\x81', A::kNone, E::kPushOther);  // NEWOBJ
  set('\x82', A::kU1, E::kPushOther);    // EXT1
  set('\x83', A::kU2, E::kPushOther);    // EXT2
  set('\x84', A::kU4, E::kPushOther);    // EXT4
  set('\x85', A::kNone, E::kPushOther);  // TUPLE1
  set('\x86', A::kNone, E::kPushOther);  // TUPLE2
  set('\x87', A::kNone, E::kPushOther);  // TUPLE3
  set('\x88', A::kNone, E::kPushOther);  // NEWTRUE
  set('\x89', A::kNone, E::kPushOther);  // NEWFALSE
  set('\x8a', A::kLen1, E::kPushOther);  // LONG1
  set('\x8b', A::kLen4, E::kPushOther);  // LONG4
  // Protocol 3.
  set('B', A::kLen4, E::kPushOther);     // BINBYTES
  set('C', A::kLen1, E::kPushOther);     // SHORT_BINBYTES
  // Protocol 4.
  set('\x8c', A::kLen1, E::kPushString); // SHORT_BINUNICODE
  set('\x8d', A::kLen8, E::kPushString); // BINUNICODE8
  set('\x8e', A::kLen8, E::kPushOther);  // BINBYTES8
  set('\x8f', A::kNone, E::kPushOther);  // EMPTY_SET
  set('\x90', A::kNone, E::kPop);        // ADDITEMS
  set('\x91', A::kNone, E::kPushOther);  // FROZENSET
  set('\x92', A::kNone, E::kPushOther);  // NEWOBJ_EX
  set('\x93', A::kNone, E::kStackGlobal);// STACK_GLOBAL
  set('\x94', A::kNone, E::kPut);        // MEMOIZE
  set('\x95', A::kU8, E::kNone);         // FRAME (its contents follow inline)
  // Protocol 5.
  set('\x96', A::kLen8, E::kPushOther);  // BYTEARRAY8
  set('\x97', A::kNone, E::kPushOther);  // NEXT_BUFFER
  set('\x98', A::kNone, E::kNone);       // READONLY_BUFFER
  return t;
}

constexpr std::array<Op, 256> kOps = MakeTable();

// Globals that are pickling machinery rather than the job's function.
bool IsMachinery(const std::string& module) {
  return module == "builtins" || module == "copyreg" || module == "importlib" ||
         module == "functools" || module == "_codecs" || module == "_extrainterpreters_loader" ||
         module == "__builtin__";
}

bool IsDigest(const std::string& text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string TopLevel(const std::string& module) { return module.substr(0, module.find('.')); }

// A value as this reader sees it: a string, or something else.
using Value = std::optional<std::string>;

class Scanner {
 public:
  explicit Scanner(std::span<const char> data) : data_(data) {}

  PickleRefs Run() {
    while (pos_ < data_.size()) {
      const auto code = static_cast<unsigned char>(data_[pos_++]);
      const Op op = kOps[code];
      std::string_view arg;
      if (!ReadArg(op.arg, &arg)) {
        refs_.complete = false;
        break;
      }
      Apply(op.effect, arg, code);
      if (code == '.') break;  // STOP
    }
    return std::move(refs_);
  }

 private:
  bool Take(std::size_t n, std::string_view* out) {
    if (data_.size() - pos_ < n) return false;
    *out = std::string_view(data_.data() + pos_, n);
    pos_ += n;
    return true;
  }

  std::uint64_t Little(std::string_view bytes) {
    std::uint64_t value = 0;
    for (std::size_t i = bytes.size(); i-- > 0;) {
      value = (value << 8) | static_cast<unsigned char>(bytes[i]);
    }
    return value;
  }

  bool ReadLine(std::string_view* out) {
    const void* nl = std::memchr(data_.data() + pos_, '\n', data_.size() - pos_);
    if (nl == nullptr) return false;
    const std::size_t end = static_cast<const char*>(nl) - data_.data();
    *out = std::string_view(data_.data() + pos_, end - pos_);
    pos_ = end + 1;
    return true;
  }

  bool ReadArg(Arg arg, std::string_view* out) {
    std::string_view size;
    switch (arg) {
      case Arg::kUnknown: return false;
      case Arg::kNone: return true;
      case Arg::kU1: return Take(1, out);
      case Arg::kU2: return Take(2, out);
      case Arg::kU4: return Take(4, out);
      case Arg::kU8: return Take(8, out);
      case Arg::kLen1: return Take(1, &size) && Take(Little(size), out);
      case Arg::kLen4: return Take(4, &size) && Take(Little(size), out);
      case Arg::kLen8: return Take(8, &size) && Take(Little(size), out);
      case Arg::kLine: return ReadLine(out);
      case Arg::kTwoLines: {
        std::string_view module, name;
        if (!ReadLine(&module) || !ReadLine(&name)) return false;
        *out = std::string_view(module.data(), name.data() + name.size() - module.data());
        return true;
      }
    }
    return false;
  }

  void Push(Value value) {
    if (value && expect_module_) {
      refs_.modules.insert(TopLevel(*value));
      expect_module_ = false;
    }
    if (value && IsDigest(*value)) last_digest_ = *value;
    below_ = std::move(top_);
    top_ = std::move(value);
  }

  void Apply(Effect effect, std::string_view arg, unsigned char code) {
    switch (effect) {
      case Effect::kPushOther: Push(std::nullopt); break;
      case Effect::kPushString: Push(std::string(arg)); break;
      case Effect::kPop: top_ = below_ = std::nullopt; break;
      case Effect::kNone: break;
      case Effect::kPut: memo_[code == 0x94 ? memo_size_++ : MemoIndex(arg, code)] = top_; break;
      case Effect::kGet: {
        auto it = memo_.find(MemoIndex(arg, code));
        Push(it != memo_.end() ? it->second : std::nullopt);
        break;
      }
      case Effect::kGlobal: {
        const std::string both(arg);
        const auto newline = both.find('\n');
        Global(both.substr(0, newline), both.substr(newline + 1));
        break;
      }
      case Effect::kStackGlobal:
        if (below_ && top_) {
          Global(*below_, *top_);
        } else {
          Push(std::nullopt);
        }
        break;
      case Effect::kPersistent:
        if (refs_.function_key.empty() && !last_digest_.empty()) {
          refs_.function_key = "value:" + last_digest_;
        }
        Push(std::nullopt);
        break;
    }
  }

  std::uint64_t MemoIndex(std::string_view arg, unsigned char code) {
    if (code == 'g' || code == 'p') return std::strtoull(std::string(arg).c_str(), nullptr, 10);
    return Little(arg);
  }

  void Global(const std::string& module, const std::string& name) {
    refs_.modules.insert(TopLevel(module));
    const bool imports = (module == "importlib" && name == "import_module") ||
                         ((module == "builtins" || module == "__builtin__") && name == "__import__");
    if (refs_.function_key.empty() && !IsMachinery(module)) {
      refs_.function_key = module + "." + name;
    }
    Push(std::nullopt);
    expect_module_ = imports;  // the next string is the module it imports
  }

  std::span<const char> data_;
  std::size_t pos_ = 0;
  PickleRefs refs_;
  Value top_, below_;
  std::unordered_map<std::uint64_t, Value> memo_;
  std::uint64_t memo_size_ = 0;
  std::string last_digest_;
  bool expect_module_ = false;
};

}  // namespace

PickleRefs ScanPickle(std::span<const char> pickle) { return Scanner(pickle).Run(); }

}  // namespace ei
