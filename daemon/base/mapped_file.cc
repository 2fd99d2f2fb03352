#include "daemon/base/mapped_file.h"

#include <sys/mman.h>

#include <algorithm>

namespace ei {

std::shared_ptr<MappedFile> MappedFile::Map(int fd, dev_t device, ino_t inode,
                                            std::size_t size) {
  if (size == 0) return nullptr;
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (map == MAP_FAILED) return nullptr;
  return std::shared_ptr<MappedFile>(
      new MappedFile(static_cast<const char*>(map), device, inode, size));
}

MappedFile::~MappedFile() {
  if (!pinned_.load()) ::munmap(const_cast<char*>(map_), size_);
}

std::shared_ptr<MappedFile> MappedFileCache::Get(int fd, dev_t device, ino_t inode,
                                                 std::size_t size) {
  auto same = std::find_if(files_.begin(), files_.end(), [&](const auto& file) {
    return file->device() == device && file->inode() == inode;
  });
  std::shared_ptr<MappedFile> found;
  if (same != files_.end()) {
    found = std::move(*same);
    files_.erase(same);
  }
  if (found == nullptr || !found->Covers(device, inode, size)) {
    found = MappedFile::Map(fd, device, inode, size);
    if (found == nullptr) return nullptr;
  }
  files_.push_back(found);
  std::size_t total = bytes();
  while (files_.size() > kMaxFiles || (files_.size() > 1 && total > kMaxBytes)) {
    total -= files_.front()->size();
    files_.erase(files_.begin());
  }
  return found;
}

std::size_t MappedFileCache::bytes() const {
  std::size_t total = 0;
  for (const auto& file : files_) total += file->size();
  return total;
}

}  // namespace ei
