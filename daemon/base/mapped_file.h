// A read-only mapping of a client's reused argument file (PROTOCOL.md,
// "Large data"), kept by its session from one job to the next.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

namespace ei {

/// Mapping a 64 MiB file (with its pages populated) and unmapping it again
/// costs about 2 ms per job; the client writes its arguments into the same
/// file each time, so its session maps it once. Unmapped when the last
/// holder (the session, a running job) lets go, unless pinned.
class MappedFile {
 public:
  /// Maps `size` bytes of `fd` read-only, pages populated; nullptr if that
  /// fails (the job then maps the file itself).
  static std::shared_ptr<MappedFile> Map(int fd, dev_t device, ino_t inode, std::size_t size);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  /// Whether this maps at least `size` bytes of that file.
  bool Covers(dev_t device, ino_t inode, std::size_t size) const {
    return device == device_ && inode == inode_ && size <= size_ && !pinned_.load();
  }

  /// A job kept a view of the mapping: it stays mapped until the daemon exits.
  void Pin() { pinned_.store(true); }

  const char* data() const { return map_; }
  dev_t device() const { return device_; }
  ino_t inode() const { return inode_; }
  std::size_t size() const { return size_; }

 private:
  MappedFile(const char* map, dev_t device, ino_t inode, std::size_t size)
      : map_(map), device_(device), inode_(inode), size_(size) {}

  const char* const map_;
  const dev_t device_;
  const ino_t inode_;
  const std::size_t size_;
  std::atomic<bool> pinned_{false};
};

/// The mappings of one connection's reused argument files: a client may
/// keep several (one per job in flight), each mapped once. A mapping keeps
/// its file's memory even after the client dropped the file, so at most
/// kMaxFiles are kept, and beyond the last used, kMaxBytes together.
/// Not thread-safe (one thread: a session's I/O thread, a worker process's
/// main thread).
class MappedFileCache {
 public:
  static constexpr std::size_t kMaxFiles = 64;
  static constexpr std::size_t kMaxBytes = std::size_t{64} << 20;

  /// The mapping of `size` bytes of `fd` (that file): the kept one when it
  /// covers them, else a new one, kept instead of that file's old one (and
  /// of the least recently used past the limits); nullptr if mapping fails.
  std::shared_ptr<MappedFile> Get(int fd, dev_t device, ino_t inode, std::size_t size);

  /// Unmapped now, or when the jobs that hold them end.
  void Clear() { files_.clear(); }

  /// Bytes mapped, together.
  std::size_t bytes() const;

 private:
  std::vector<std::shared_ptr<MappedFile>> files_;  // least recently used first
};

}  // namespace ei
