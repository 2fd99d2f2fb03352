#include "daemon/base/mapped_file.h"

#include <sys/mman.h>

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

}  // namespace ei
