#include "daemon/base/mapped_file.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "daemon/base/unique_fd.h"

namespace ei {
namespace {

struct File {
  explicit File(std::size_t size) : fd(::memfd_create("mapped-file-test", MFD_CLOEXEC)) {
    EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(size)), 0);
    struct stat st {};
    EXPECT_EQ(::fstat(fd.get(), &st), 0);
    device = st.st_dev;
    inode = st.st_ino;
  }
  std::shared_ptr<MappedFile> From(MappedFileCache& cache, std::size_t size) const {
    return cache.Get(fd.get(), device, inode, size);
  }
  UniqueFd fd;
  dev_t device;
  ino_t inode;
};

TEST(MappedFileCache, MapsEachFileOnce) {
  MappedFileCache cache;
  const File a(4096), b(4096);
  const auto first_a = a.From(cache, 4096);
  const auto first_b = b.From(cache, 4096);
  ASSERT_NE(first_a, nullptr);
  ASSERT_NE(first_b, nullptr);
  EXPECT_NE(first_a, first_b);
  EXPECT_EQ(a.From(cache, 4096), first_a);
  EXPECT_EQ(b.From(cache, 100), first_b);
}

TEST(MappedFileCache, MapsAGrownOrPinnedFileAgain) {
  MappedFileCache cache;
  File a(4096);
  const auto small = a.From(cache, 4096);
  ASSERT_EQ(::ftruncate(a.fd.get(), 8192), 0);
  const auto grown = a.From(cache, 8192);
  ASSERT_NE(grown, nullptr);
  EXPECT_NE(grown, small);
  EXPECT_EQ(grown->size(), 8192u);
  grown->Pin();
  EXPECT_NE(a.From(cache, 8192), grown);
}

TEST(MappedFileCache, ForgetsTheLeastRecentlyUsedPastItsLimit) {
  MappedFileCache cache;
  std::vector<std::unique_ptr<File>> files;
  std::vector<std::shared_ptr<MappedFile>> maps;
  for (std::size_t i = 0; i <= MappedFileCache::kMaxFiles; ++i) {
    files.push_back(std::make_unique<File>(4096));
    if (i == MappedFileCache::kMaxFiles) files[0]->From(cache, 4096);  // used again: kept
    maps.push_back(files.back()->From(cache, 4096));
  }
  EXPECT_EQ(files[0]->From(cache, 4096), maps[0]);
  EXPECT_NE(files[1]->From(cache, 4096), maps[1]);  // forgotten: mapped again
}

TEST(MappedFileCache, KeepsLimitedBytesBesidesTheLastUsed) {
  MappedFileCache cache;
  const File a(4096), b(4096), big(MappedFileCache::kMaxBytes - 4096);
  const auto map_a = a.From(cache, 4096);
  const auto map_b = b.From(cache, 4096);
  ASSERT_NE(big.From(cache, MappedFileCache::kMaxBytes - 4096), nullptr);
  EXPECT_EQ(cache.bytes(), MappedFileCache::kMaxBytes);  // the oldest went
  EXPECT_EQ(b.From(cache, 4096), map_b);
  EXPECT_NE(a.From(cache, 4096), map_a);  // forgotten: mapped again
  EXPECT_EQ(cache.bytes(), 8192u);  // and the big one made room for it
}

}  // namespace
}  // namespace ei
