#include "daemon/core/shared_buffer.h"

#include <algorithm>
#include <cstring>

namespace ei {

// new char[] leaves pages untouched, so an idle worker's buffer costs
// address space, not resident memory.
SharedBuffer::SharedBuffer(std::size_t initial, std::size_t limit)
    : data_(new char[std::min(initial, limit)]),
      capacity_(std::min(initial, limit)),
      limit_(limit) {}

bool SharedBuffer::Assign(std::span<const char> bytes) {
  if (bytes.size() > limit_) return false;
  Reserve(bytes.size());
  std::memcpy(data_.get(), bytes.data(), bytes.size());
  return true;
}

void SharedBuffer::Reserve(std::size_t size) {
  if (size <= capacity_) return;
  // Grow geometrically so a run of growing payloads reallocates rarely.
  const std::size_t grown = std::min(limit_, std::max(size, capacity_ * 2));
  data_.reset(new char[grown]);
  capacity_ = grown;
}

}  // namespace ei
