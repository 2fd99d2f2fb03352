// The per-interpreter shared buffer: memory the daemon owns and the
// interpreter sees as a memoryview, without copying.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

namespace ei {

class SharedBuffer {
 public:
  /// Starts at `initial` bytes and may grow up to `limit` bytes.
  SharedBuffer(std::size_t initial, std::size_t limit);

  SharedBuffer(const SharedBuffer&) = delete;
  SharedBuffer& operator=(const SharedBuffer&) = delete;

  /// Copies `bytes` to the start of the buffer, growing it first if needed.
  /// False (and nothing copied) when `bytes` is larger than the limit.
  bool Assign(std::span<const char> bytes);

  /// Grows to at least `size` bytes (capped at the limit). Contents are not
  /// kept. No view of the buffer may be alive.
  void Reserve(std::size_t size);

  char* data() { return data_.get(); }
  std::size_t capacity() const { return capacity_; }
  std::size_t limit() const { return limit_; }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t capacity_;
  std::size_t limit_;
};

}  // namespace ei
