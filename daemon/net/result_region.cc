#include "daemon/net/result_region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

namespace ei {

ResultRegion::~ResultRegion() {
  std::lock_guard lock(mu_);
  ReleaseLocked();
}

void ResultRegion::ReleaseLocked() {
  if (state_ == State::kPinned) return;
  if (map_ != nullptr) ::munmap(map_, size_);
  map_ = nullptr;
  size_ = 0;
  fd_.reset();
}

void ResultRegion::Close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  if (state_ != State::kLent) ReleaseLocked();
}

char* ResultRegion::Lend(std::size_t size, int* fd) {
  std::lock_guard lock(mu_);
  if (state_ != State::kFree || closed_ || size > limit_) return nullptr;
  if (size > size_ && !GrowLocked(size)) return nullptr;
  const int copy = ::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return nullptr;
  *fd = copy;
  state_ = State::kLent;
  return map_;
}

void ResultRegion::GiveToClient() {
  std::lock_guard lock(mu_);
  if (state_ == State::kLent) state_ = State::kWithClient;
  if (closed_) ReleaseLocked();  // the client's descriptor keeps the file
}

void ResultRegion::TakeBack() {
  std::lock_guard lock(mu_);
  if (state_ == State::kLent) state_ = State::kFree;
  if (closed_) ReleaseLocked();
}

void ResultRegion::Pin() {
  std::lock_guard lock(mu_);
  state_ = State::kPinned;
}

void ResultRegion::FreeFromClient() {
  std::lock_guard lock(mu_);
  if (state_ == State::kWithClient) state_ = State::kFree;
}

// No job and no client uses the contents here, so they need not survive.
// The new pages are faulted in now (MAP_POPULATE), once.
bool ResultRegion::GrowLocked(std::size_t size) {
  const std::size_t grown = std::min(limit_, std::max(size, 2 * size_));
  if (!fd_) {
    fd_.reset(::memfd_create("extrainterpreters-results", MFD_CLOEXEC));
    if (!fd_) return false;
  }
  if (map_ != nullptr) {
    ::munmap(map_, size_);
    map_ = nullptr;
    size_ = 0;
  }
  if (::ftruncate(fd_.get(), static_cast<off_t>(grown)) != 0) return false;
  void* map = ::mmap(nullptr, grown, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                     fd_.get(), 0);
  if (map == MAP_FAILED) return false;
  map_ = static_cast<char*>(map);
  size_ = grown;
  return true;
}

}  // namespace ei
