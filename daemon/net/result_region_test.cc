#include "daemon/net/result_region.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include "daemon/base/mapped_file.h"

namespace ei {
namespace {

constexpr std::size_t kMiB = 1 << 20;

// Reads back what a descriptor of the region holds, as the client would.
std::string ReadBack(int fd, std::size_t size) {
  std::string out(size, '\0');
  EXPECT_EQ(::pread(fd, out.data(), size, 0), static_cast<ssize_t>(size));
  return out;
}

TEST(ResultRegion, LendsToOneJobAtATimeUntilTheClientFreesIt) {
  ResultRegion region(8 * kMiB);
  int fd = -1;
  char* space = region.Lend(kMiB, &fd);
  ASSERT_NE(space, nullptr);
  std::memcpy(space, "result", 6);
  int other = -1;
  EXPECT_EQ(region.Lend(kMiB, &other), nullptr) << "lent twice at once";
  region.GiveToClient();
  EXPECT_EQ(ReadBack(fd, 6), "result");
  EXPECT_EQ(region.Lend(kMiB, &other), nullptr) << "lent while the client has it";
  region.FreeFromClient();
  char* again = region.Lend(kMiB, &other);
  EXPECT_EQ(again, space) << "the same warm mapping is reused";
  ::close(fd);
  ::close(other);
}

TEST(ResultRegion, AStrayFreeDoesNotFreeItUnderAJob) {
  ResultRegion region(8 * kMiB);
  int fd = -1;
  ASSERT_NE(region.Lend(kMiB, &fd), nullptr);
  region.FreeFromClient();  // the client does not have it: ignored
  int other = -1;
  EXPECT_EQ(region.Lend(kMiB, &other), nullptr);
  region.TakeBack();  // the job did not send it after all
  EXPECT_NE(region.Lend(kMiB, &other), nullptr);
  ::close(fd);
  ::close(other);
}

TEST(ResultRegion, GrowsWithinItsLimitAndNoFurther) {
  ResultRegion region(4 * kMiB);
  int fd = -1;
  ASSERT_NE(region.Lend(kMiB, &fd), nullptr);
  region.TakeBack();
  ::close(fd);
  ASSERT_NE(region.Lend(3 * kMiB, &fd), nullptr);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_GE(static_cast<std::size_t>(st.st_size), 3 * kMiB);
  region.TakeBack();
  ::close(fd);
  EXPECT_EQ(region.Lend(5 * kMiB, &fd), nullptr) << "past the limit";
}

TEST(ResultRegion, NeverLentAfterItsConnectionClosed) {
  ResultRegion region(4 * kMiB);
  region.Close();
  int fd = -1;
  EXPECT_EQ(region.Lend(kMiB, &fd), nullptr);
}

TEST(MappedFile, CoversTheSameFileUpToItsSizeUntilPinned) {
  const int fd = ::memfd_create("mapped-file-test", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 2 * kMiB), 0);
  ASSERT_EQ(::pwrite(fd, "args", 4, 0), 4);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  std::shared_ptr<MappedFile> mapped = MappedFile::Map(fd, st.st_dev, st.st_ino, 2 * kMiB);
  ASSERT_NE(mapped, nullptr);
  EXPECT_EQ(std::string(mapped->data(), 4), "args");
  EXPECT_TRUE(mapped->Covers(st.st_dev, st.st_ino, 2 * kMiB));
  EXPECT_FALSE(mapped->Covers(st.st_dev, st.st_ino, 3 * kMiB)) << "the file grew";
  EXPECT_FALSE(mapped->Covers(st.st_dev, st.st_ino + 1, kMiB)) << "another file";
  mapped->Pin();
  EXPECT_FALSE(mapped->Covers(st.st_dev, st.st_ino, kMiB)) << "pinned: never reused";
  ::close(fd);
}

}  // namespace
}  // namespace ei
