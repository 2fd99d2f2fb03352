// The opcodes are pickle's (Lib/pickletools.py documents each); only the
// ones a single plain value needs are written or read here.
#include "daemon/python/plain_pickle.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>
#include <cstring>

namespace ei::python {
namespace {

constexpr char kProto = '\x80';
constexpr char kFrame = '\x95';
constexpr char kStop = '.';
constexpr char kMemoize = '\x94';
constexpr char kNone = 'N';
constexpr char kTrue = '\x88';
constexpr char kFalse = '\x89';
constexpr char kBinInt1 = 'K';    // 1-byte unsigned
constexpr char kBinInt2 = 'M';    // 2-byte unsigned, little-endian
constexpr char kBinInt = 'J';     // 4-byte signed, little-endian
constexpr char kLong1 = '\x8a';   // length byte, then two's complement, little-endian
constexpr char kBinFloat = 'G';   // 8-byte IEEE 754, big-endian
constexpr char kShortBinBytes = 'C';
constexpr char kBinBytes = 'B';
constexpr char kBinBytes8 = '\x8e';
constexpr char kShortBinUnicode = '\x8c';
constexpr char kBinUnicode = 'X';
constexpr char kBinUnicode8 = '\x8d';
constexpr char kEmptyTuple = ')';
constexpr char kMark = '(';
constexpr char kTuple = 't';  // the items since the mark
constexpr char kTuple1 = '\x85';
constexpr char kTuple2 = '\x86';
constexpr char kTuple3 = '\x87';

// The opcodes that make a tuple of 0 to 3 items off the stack.
constexpr char kTupleOf[] = {kEmptyTuple, kTuple1, kTuple2, kTuple3};

// How many items a tuple opcode takes (-1: those since the mark).
int TupleArity(char op) {
  for (int n = 0; n < 4; ++n) {
    if (op == kTupleOf[n]) return n;
  }
  return -1;
}

// A tuple is plain when it holds at most this many plain scalars.
constexpr Py_ssize_t kMaxTupleItems = 16;

void PutLittle(std::vector<char>* out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

std::uint64_t GetLittle(const char* p, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return value;
}

void PutInt(std::vector<char>* out, long long value) {
  if (value >= 0 && value <= 0xff) {
    out->push_back(kBinInt1);
    PutLittle(out, static_cast<std::uint64_t>(value), 1);
  } else if (value >= 0 && value <= 0xffff) {
    out->push_back(kBinInt2);
    PutLittle(out, static_cast<std::uint64_t>(value), 2);
  } else if (value >= INT32_MIN && value <= INT32_MAX) {
    out->push_back(kBinInt);
    PutLittle(out, static_cast<std::uint32_t>(static_cast<std::int32_t>(value)), 4);
  } else {
    // The fewest bytes whose top bit still carries the sign.
    const auto bits = static_cast<std::uint64_t>(value);
    int bytes = 8;
    while (bytes > 1) {
      const auto top = static_cast<unsigned char>(bits >> (8 * (bytes - 1)));
      const bool next_negative = ((bits >> (8 * (bytes - 1) - 1)) & 1) != 0;
      if (!((top == 0x00 && !next_negative) || (top == 0xff && next_negative))) break;
      --bytes;
    }
    out->push_back(kLong1);
    out->push_back(static_cast<char>(bytes));
    PutLittle(out, bits, bytes);
  }
}

// `short_op` below 256 bytes, `op4` below 2^32, `op8` beyond.
void PutSized(std::vector<char>* out, const char* data, std::size_t size, char short_op,
              char op4, char op8) {
  if (size < 256) {
    out->push_back(short_op);
    PutLittle(out, size, 1);
  } else if (size <= 0xffffffffu) {
    out->push_back(op4);
    PutLittle(out, size, 4);
  } else {
    out->push_back(op8);
    PutLittle(out, size, 8);
  }
  out->insert(out->end(), data, data + size);
}

bool PutScalar(PyObject* item, std::vector<char>* out);

// A tuple of plain scalars, as pickle writes one (without its memo).
bool PutTuple(PyObject* tuple, std::vector<char>* out) {
  const Py_ssize_t size = PyTuple_GET_SIZE(tuple);
  if (size > kMaxTupleItems) return false;
  if (size > 3) out->push_back(kMark);
  for (Py_ssize_t i = 0; i < size; ++i) {
    if (!PutScalar(PyTuple_GET_ITEM(tuple, i), out)) return false;
  }
  out->push_back(size <= 3 ? kTupleOf[size] : kTuple);
  return true;
}

bool PutScalar(PyObject* item, std::vector<char>* out) {
  if (item == Py_None) {
    out->push_back(kNone);
  } else if (PyBool_Check(item)) {  // bool has no subclasses
    out->push_back(item == Py_True ? kTrue : kFalse);
  } else if (PyLong_CheckExact(item)) {
    int overflow = 0;
    const long long value = PyLong_AsLongLongAndOverflow(item, &overflow);
    if (overflow != 0) return false;  // pickle writes the big ones
    PutInt(out, value);
  } else if (PyFloat_CheckExact(item)) {
    char packed[8];
    if (PyFloat_Pack8(PyFloat_AS_DOUBLE(item), packed, 0) != 0) {
      PyErr_Clear();
      return false;
    }
    out->push_back(kBinFloat);
    out->insert(out->end(), packed, packed + 8);
  } else if (PyBytes_CheckExact(item)) {
    PutSized(out, PyBytes_AS_STRING(item), static_cast<std::size_t>(PyBytes_GET_SIZE(item)),
             kShortBinBytes, kBinBytes, kBinBytes8);
  } else if (PyUnicode_CheckExact(item)) {
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(item, &size);
    if (utf8 == nullptr) {  // a lone surrogate: pickle's surrogatepass handles it
      PyErr_Clear();
      return false;
    }
    PutSized(out, utf8, static_cast<std::size_t>(size), kShortBinUnicode, kBinUnicode,
             kBinUnicode8);
  } else {
    return false;
  }
  return true;
}

// Reads one length-prefixed run of `width` length bytes at `*p`.
bool TakeSized(const char** p, const char* end, int width, const char** data, std::size_t* size) {
  if (end - *p < width) return false;
  const std::uint64_t length = GetLittle(*p, width);
  *p += width;
  if (length > static_cast<std::uint64_t>(end - *p)) return false;
  *data = *p;
  *size = static_cast<std::size_t>(length);
  *p += length;
  return true;
}

// The value at `*p` (advanced past it), nullptr (no error) if it is not
// one of the plain opcodes or runs past `end`.
PyObject* TakeValue(const char** p, const char* end) {
  if (*p >= end) return nullptr;
  const char op = *(*p)++;
  const std::ptrdiff_t left = end - *p;
  const char* data = nullptr;
  std::size_t size = 0;
  switch (op) {
    case kNone: return Py_NewRef(Py_None);
    case kTrue: return Py_NewRef(Py_True);
    case kFalse: return Py_NewRef(Py_False);
    case kBinInt1:
    case kBinInt2: {
      const int width = op == kBinInt1 ? 1 : 2;
      if (left < width) return nullptr;
      const std::uint64_t value = GetLittle(*p, width);
      *p += width;
      return PyLong_FromUnsignedLongLong(value);
    }
    case kBinInt: {
      if (left < 4) return nullptr;
      const auto value = static_cast<std::int32_t>(static_cast<std::uint32_t>(GetLittle(*p, 4)));
      *p += 4;
      return PyLong_FromLong(value);
    }
    case kLong1: {
      if (left < 1) return nullptr;
      const int width = static_cast<unsigned char>(**p);
      if (width > 8 || left - 1 < width) return nullptr;  // pickle reads the longer ones
      ++*p;
      std::uint64_t bits = GetLittle(*p, width);
      if (width > 0 && width < 8 && ((bits >> (8 * width - 1)) & 1) != 0) {
        bits |= ~std::uint64_t{0} << (8 * width);  // sign-extend
      }
      *p += width;
      return PyLong_FromLongLong(static_cast<long long>(bits));
    }
    case kBinFloat: {
      if (left < 8) return nullptr;
      const double value = PyFloat_Unpack8(*p, 0);
      if (value == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();  // not on IEEE 754 machines; pickle.loads would say why
        return nullptr;
      }
      *p += 8;
      return PyFloat_FromDouble(value);
    }
    case kShortBinBytes:
    case kBinBytes:
    case kBinBytes8: {
      const int width = op == kShortBinBytes ? 1 : op == kBinBytes ? 4 : 8;
      if (!TakeSized(p, end, width, &data, &size)) return nullptr;
      return PyBytes_FromStringAndSize(data, static_cast<Py_ssize_t>(size));
    }
    case kShortBinUnicode:
    case kBinUnicode:
    case kBinUnicode8: {
      const int width = op == kShortBinUnicode ? 1 : op == kBinUnicode ? 4 : 8;
      if (!TakeSized(p, end, width, &data, &size)) return nullptr;
      PyObject* text =
          PyUnicode_DecodeUTF8(data, static_cast<Py_ssize_t>(size), "surrogatepass");
      if (text == nullptr) PyErr_Clear();  // pickle.loads raises its own error
      return text;
    }
    default: return nullptr;
  }
}

// What LoadPlain has read: owned references, dropped unless released.
struct Stack {
  static constexpr int kCapacity = 2 * kMaxTupleItems;
  PyObject* items[kCapacity];
  int size = 0;
  int mark = -1;  // where the open mark is, or -1

  Stack() = default;
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;
  ~Stack() {
    while (size > 0) Py_DECREF(items[--size]);
  }

  bool Push(PyObject* value) {
    if (size >= kCapacity) {
      Py_DECREF(value);
      return false;
    }
    items[size++] = value;
    return true;
  }

  // The top `count` values become one tuple, in their order; the tuple
  // needs a slot of its own when `count` is 0.
  bool MakeTuple(int count) {
    if (count > size || count > kMaxTupleItems || (mark >= 0 && size - count < mark) ||
        size - count >= kCapacity) {
      return false;
    }
    PyObject* tuple = PyTuple_New(count);
    if (tuple == nullptr) return false;
    for (int i = 0; i < count; ++i) PyTuple_SET_ITEM(tuple, i, items[size - count + i]);
    size -= count;
    items[size++] = tuple;
    return true;
  }

  PyObject* Release() {
    size = 0;
    return items[0];
  }
};

}  // namespace

bool DumpPlain(PyObject* item, std::vector<char>* out) {
  const std::size_t start = out->size();
  out->push_back(kProto);
  out->push_back(5);
  const bool put = PyTuple_CheckExact(item) ? PutTuple(item, out) : PutScalar(item, out);
  if (!put) {
    out->resize(start);
    return false;
  }
  out->push_back(kStop);
  return true;
}

PyObject* LoadPlain(const char* data, std::size_t size) {
  const char* p = data;
  const char* end = data + size;
  if (size < 3 || p[0] != kProto || p[1] < 2 || p[1] > 5) return nullptr;
  p += 2;
  if (*p == kFrame) {  // pickle.dumps frames all of a small pickle in one
    if (end - p < 9 || GetLittle(p + 1, 8) != static_cast<std::uint64_t>(end - p - 9)) {
      return nullptr;
    }
    p += 9;
  }
  // The values read so far; a tuple opcode takes its items off the top.
  // Any opcode but the few below (a memo lookup, a list, a global) ends
  // the reading, and pickle.loads reads the pickle instead.
  Stack stack;
  while (p < end) {
    const char op = *p;
    if (op == kStop) {
      if (p + 1 != end || stack.size != 1 || stack.mark >= 0) return nullptr;
      return stack.Release();
    }
    if (op == kMemoize) {  // nothing here refers back to a memo
      // pickle refuses to memoize nothing, or a mark
      if (stack.size == 0 || stack.size <= stack.mark) return nullptr;
      ++p;
    } else if (op == kEmptyTuple || op == kTuple1 || op == kTuple2 || op == kTuple3 ||
               op == kTuple) {
      ++p;
      int count = TupleArity(op);
      if (count < 0) {
        if (stack.mark < 0) return nullptr;
        count = stack.size - stack.mark;
        stack.mark = -1;
      }
      if (!stack.MakeTuple(count)) return nullptr;
    } else if (op == kMark) {
      ++p;
      if (stack.mark >= 0) return nullptr;  // one level of marks is all a plain item needs
      stack.mark = stack.size;
    } else {
      PyObject* value = TakeValue(&p, end);
      if (value == nullptr || !stack.Push(value)) return nullptr;
    }
  }
  return nullptr;
}

}  // namespace ei::python
